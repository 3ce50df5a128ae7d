"""What a replica's workers do while they serve: every worker indexes the commits any of them fetched;
the one that leads (the first to take the follow lock, another within a second or so when it dies)
fetches the primary's new commits as they come, and the files the ledger references (fill.py), so
they are here should the primary go away."""

from __future__ import annotations

import anyio

from ..datadir import Registry
from .fill import Filler
from .follow import LEAD_EVERY, Follower


async def run_replica(registry: Registry, follower: Follower) -> None:
    """For the worker's life (the web app's lifespan runs it)."""
    async def catch_up() -> None:
        seen = registry.ledger.head()
        registry.catch_up_history(background=True)
        while True:  # (the history index is derived: it follows whatever any worker fetched)
            await anyio.sleep(0.2)
            head = registry.ledger.head()
            if head != seen:
                registry.catch_up_history(background=True)
                seen = head

    async with anyio.create_task_group() as tg:
        tg.start_soon(catch_up)
        while not follower.lead():
            await anyio.sleep(LEAD_EVERY)
        tg.start_soon(Filler(registry, follower).run)
        await follower.follow()  # (returns only once stopped: the files held are still kept whole)
