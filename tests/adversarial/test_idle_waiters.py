"""Idle `?wait=<head>` long polls on the checkpoint cost one look at the head per worker every
POLL_EVERY seconds, however many wait; one commit wakes them all, each answered with the new head.
(tests/benchmarks/bench_waiters.py measures the CPU of 1,000 of them on a served registry.)"""

from __future__ import annotations

import threading

import anyio
import httpx
import pytest

from registry import identity, operations
from registry.ledger import Ledger
from registry.trust import checkpoints as checkpoint
from registry.web.app import create_asgi
from registry.web.ledger_http import LONG_POLL, POLL_EVERY
from tests.support.world import WS

WAITERS = 200


class Lifespan:
    """An ASGI app's lifespan on this event loop: started on entry (its background tasks then run
    here, as in a server's worker), shut down on exit."""

    def __init__(self, app) -> None:
        self.app, self.sent, self.events = app, None, None

    async def __aenter__(self):
        self.sent, self.events = anyio.create_memory_object_stream(10), anyio.create_memory_object_stream(10)
        self.tasks = anyio.create_task_group()
        await self.tasks.__aenter__()
        self.tasks.start_soon(self.app, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                              self.sent[1].receive, self.events[0].send)
        await self.sent[0].send({"type": "lifespan.startup"})
        assert (await self.events[1].receive())["type"] == "lifespan.startup.complete"
        return self

    async def __aexit__(self, *exc):
        await self.sent[0].send({"type": "lifespan.shutdown"})
        await self.events[1].receive()
        return await self.tasks.__aexit__(*exc)


@pytest.fixture
def looks(monkeypatch) -> list[int]:
    """How many times anything in this process has looked at a ledger's head, from now on."""
    count, lock, real = [0], threading.Lock(), Ledger.head

    def counted(self):
        with lock:
            count[0] += 1
        return real(self)

    monkeypatch.setattr(Ledger, "head", counted)
    return count


async def test_idle_waiters_share_one_look_at_the_head_and_one_commit_wakes_them_all(world, looks):
    reg = world.reg
    app = create_asgi(reg.settings, reg)
    before = reg.ledger.head()
    async with Lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                                timeout=LONG_POLL * 2) as client:
        answers: list[httpx.Response] = []

        async def wait() -> None:
            answers.append(await client.get(f"/_/ledger/checkpoint?wait={before}"))

        async with anyio.create_task_group() as waiting:
            for _ in range(WAITERS):
                waiting.start_soon(wait)
            await anyio.sleep(0.5)  # (every waiter has come in and looked once)
            looks[0] = 0
            idle = 40 * POLL_EVERY
            await anyio.sleep(idle)
            quiet = looks[0]
            assert not answers
            # one worker's watch looks once per POLL_EVERY, whoever waits (were each waiter to look, 200 times that)
            assert quiet <= 2 * idle / POLL_EVERY, quiet
            await anyio.to_thread.run_sync(operations.create_project, reg, identity.operator(), "cli", WS, "WOKEN",
                                           "Woken")
            with anyio.fail_after(LONG_POLL / 2):  # (woken by the commit, long before their polls would end)
                while len(answers) < WAITERS:
                    await anyio.sleep(0.05)
    head = reg.ledger.head()
    assert head != before
    assert all(a.status_code == 200 and checkpoint.parse(a.text)[0].head == head for a in answers)
    assert len(answers) == WAITERS
