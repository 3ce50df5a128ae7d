"""Calls this registry's processes make to another server (a replica to its primary, a witness to
the registry it watches): each step bounded in time, and a failure said in words.

`describe` names the error: the exception's class and what it means (`str()` of some httpx errors
is empty). `client` makes every asynchronous HTTP client they use: its transport says each of its
own failures as an httpx error (`TransportFault`), so that one ``except httpx.HTTPError`` is whole.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator

import httpx

log = logging.getLogger("registry.outbound")


class TransportFault(httpx.NetworkError):
    """The HTTP client's own machinery failed with an error that isn't httpx's. Seen: the pool's
    check of an idle connection whose other end had just gone away failed in anyio with
    ``AttributeError: 'NoneType' object has no attribute 'getpeername'`` (its socket read as None,
    as uvloop gives a closed connection's) instead of dropping the connection."""

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
    TransportFault: "the connection broke inside the HTTP client",
    httpx.TimeoutException: "no progress for {s:g} s",
    httpx.NetworkError: "the connection failed",
    TimeoutError: "no answer within {s:g} s",
}


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
    every 5 s meanwhile). A silent primary is said sooner than this: `watched` (replica/primary.py) checks on it."""
    return max(30, math.ceil(2 * seconds))


def client(timeout: httpx.Timeout, **options) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (``options`` as for it) whose failures are all httpx's: each of its
    transports (its own, or ``transport``; one for each proxy the environment names, as httpx mounts
    them when it is given no transport) behind a `_Guarded` one."""
    made = httpx.AsyncClient(timeout=timeout, **options)
    made._transport = _Guarded(made._transport)  # (httpx's own attributes: 0.28 makes them in __init__)
    made._mounts = {pattern: None if t is None else _Guarded(t) for pattern, t in made._mounts.items()}
    return made


class _Guarded(httpx.AsyncBaseTransport):
    """A transport that raises only httpx's errors, or the request body's own: any other exception
    out of the one it wraps, while it sends or while the answer is read, becomes a `TransportFault`
    (from it). A caller that catches ``httpx.HTTPError`` then says "the connection failed" and
    retires its connections instead of answering 500 on a race inside the client."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = _Body(request.stream)
        request.stream = body
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            if isinstance(exc, httpx.HTTPError) or exc is body.raised:
                raise
            raise _fault(exc, request) from exc
        if not response.is_stream_consumed:  # (a response made whole, as a test's transport may, is read)
            response.stream = _Answer(response.stream, request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _fault(exc: Exception, request: httpx.Request) -> TransportFault:
    log.warning("the HTTP client failed inside, on %s %s: said as the connection failing", request.method,
                request.url.copy_with(userinfo=b"", query=None), exc_info=exc)  # (a bug of ours would look the same)
    detail = str(exc).strip()
    return TransportFault(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__, request=request)


class _Body(httpx.AsyncByteStream):
    """The request's body, remembering an error of its own (the caller's: a client that hung up)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.raised: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._inner:
                yield part
        except Exception as exc:
            self.raised = exc
            raise

    async def aclose(self) -> None:
        if hasattr(self._inner, "aclose"):
            await self._inner.aclose()


class _Answer(httpx.AsyncByteStream):
    def __init__(self, inner, request: httpx.Request) -> None:
        self._inner, self._request = inner, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._inner:
                yield part
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise _fault(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise _fault(exc, self._request) from exc
