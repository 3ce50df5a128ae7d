"""Calls this registry's processes make to another server (a replica to its primary, a witness to
the registry it watches): each step bounded in time, and a failure said in words.

`describe` names the error: the exception's class and what it means (`str()` of some httpx errors
is empty).
"""

from __future__ import annotations

import math

import httpx

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
