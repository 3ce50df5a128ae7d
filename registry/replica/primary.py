"""Talking to the primary in bounded time, and saying why it failed.

A replica never waits on a silent primary for longer than `REGISTRY_FOLLOW_TIMEOUT_SECONDS` (its
`seconds` here): to connect, to send it more of a request, to read more of an answer. Waiting for an
answer to a request already sent is the one wait that may last longer, as long as the primary is
seen to be alive: a cheap request on a fresh connection (its checkpoint) is made every ``seconds / 2``
of silence meanwhile, and the wait ends as soon as one of them goes unanswered for ``seconds / 2``.
A stopped (SIGSTOP) primary accepts connections in its kernel and then says nothing: only that
second request tells it from one that is busy with a big upload.

How a failed call is said, and each step's bound, are outbound.py's (a witness talks to a registry
the same way).
"""

from __future__ import annotations

import anyio
import httpx

from .. import outbound
from ..outbound import describe, timeouts

ANSWER_CAP = 300.0  # seconds an answer may take while the primary is seen alive (its own locks end sooner)


class Silent(Exception):
    """The primary stopped answering: it failed a check that it is alive (the message says how)."""


async def check(primary: str, seconds: float) -> str | None:
    """None if the primary answers a cheap request (its checkpoint) within ``seconds``, on a fresh
    connection; else why not."""
    try:
        with anyio.fail_after(seconds):
            async with outbound.client(timeouts(seconds)) as http:
                await http.get(f"{primary}/_/ledger/checkpoint")  # (any answer at all: it is alive)
        return None
    except (httpx.HTTPError, TimeoutError) as exc:
        return describe(exc, seconds)


async def watched(primary: str, seconds: float, step, *, started: anyio.Event | None = None):
    """``await step()``, unless the primary goes silent meanwhile: then `Silent`, within about
    ``seconds`` of it. ``started``: when the silence counts from (a request's body sent); default now.
    The step's own errors pass through; past ANSWER_CAP it is a `Silent` too."""
    why: str | None = None
    done, result, error = False, None, None
    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            nonlocal why
            if started is not None:
                await started.wait()
            since = anyio.current_time()
            with anyio.move_on_after(ANSWER_CAP):
                while True:
                    await anyio.sleep(seconds / 2)
                    failed = await check(primary, seconds / 2)
                    if failed:
                        why = (f"nothing for {anyio.current_time() - since:.0f} s, and a check on a new connection "
                               f"failed: {failed}")
                        break
            why = why or f"no answer within {ANSWER_CAP:g} s, though it answers other requests"
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            result, done = await step(), True
        except Exception as exc:  # (raised as itself below, not in a task group's ExceptionGroup)
            error, done = exc, True
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    if not done:  # (the watch cancelled the step)
        raise Silent(why)
    return result
