"""Talking to the primary in bounded time, and saying why it failed.

A replica never waits on a silent primary for longer than `REGISTRY_FOLLOW_TIMEOUT_SECONDS` (its
`seconds` here): to connect, to send it more of a request, to read more of an answer. Waiting for an
answer to a request already sent is the one wait that may last longer, as long as the primary is
seen to be alive: a cheap request on a fresh connection (its checkpoint) is made every ``seconds / 2``
of silence meanwhile, and the wait ends as soon as one of them goes unanswered for ``seconds / 2``.
A stopped (SIGSTOP) primary accepts connections in its kernel and then says nothing: only that
second request tells it from one that is busy with a big upload.

`describe` names the error: the exception's class and what it means (`str()` of some httpx errors
is empty).
"""

from __future__ import annotations

import math

import anyio
import httpx

ANSWER_CAP = 300.0  # seconds an answer may take while the primary is seen alive (its own locks end sooner)

_MEANING = {
    httpx.ConnectTimeout: "no connection within {s:g} s",
    httpx.ConnectError: "it could not be connected to",
    httpx.ReadTimeout: "it sent nothing for {s:g} s",
    httpx.WriteTimeout: "it took none of the request for {s:g} s",
    httpx.PoolTimeout: "every connection to it stayed busy for {s:g} s",
    httpx.RemoteProtocolError: "it closed the connection without a whole answer",
    httpx.ReadError: "the connection broke while its answer was read",
    httpx.WriteError: "the connection broke while the request was sent",
    httpx.CloseError: "the connection failed as it was closed",
    httpx.LocalProtocolError: "this replica's request broke HTTP's rules",
    httpx.ProtocolError: "the exchange broke HTTP's rules",
    httpx.ProxyError: "the proxy on the way failed",
    httpx.UnsupportedProtocol: "its URL is not http:// or https://",
    httpx.TimeoutException: "no progress for {s:g} s",
    httpx.NetworkError: "the connection failed",
    TimeoutError: "no answer within {s:g} s",
}


class Silent(Exception):
    """The primary stopped answering: it failed a check that it is alive (the message says how)."""


def timeouts(seconds: float, read: float | None = None) -> httpx.Timeout:
    """Each step bounded: connect, each write, each read (``read`` when longer), a free connection."""
    return httpx.Timeout(connect=seconds, read=read or seconds, write=seconds, pool=seconds)


def describe(exc: BaseException, seconds: float) -> str:
    """``exc`` in words, never empty: its class, what that means, and its own text if it has any."""
    meaning = next((m for cls in type(exc).__mro__ if (m := _MEANING.get(cls))), "the request failed")
    meaning = meaning.format(s=seconds)
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {meaning}" + (f" ({detail})" if detail and detail != "timed out" else "")


def low_speed_seconds(seconds: float) -> int:
    """For git (curl): how long a fetch may stay below a byte a second before it is abandoned. Longer
    than ``seconds``: the primary prepares a pack before it sends it (saying only a 5-byte keepalive
    every 5 s meanwhile). A silent primary is said sooner than this: `watched` checks on it."""
    return max(30, math.ceil(2 * seconds))


async def check(primary: str, seconds: float) -> str | None:
    """None if the primary answers a cheap request (its checkpoint) within ``seconds``, on a fresh
    connection; else why not."""
    try:
        with anyio.fail_after(seconds):
            async with httpx.AsyncClient(timeout=timeouts(seconds)) as client:
                await client.get(f"{primary}/_/ledger/checkpoint")  # (any answer at all: it is alive)
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
