"""A replica's writes: every request that may change something (any method but GET and HEAD) goes to
the primary as it came, body streamed both ways (a 500 MB upload passes in 64 KiB pieces), with the
caller's own credentials. The primary names the commit the write made (`X-Registry-Commit`; or its
head, `X-Registry-Head`, when it made none); the answer is held until this replica's ledger has it,
so whoever writes through a replica reads their write from it next.
"""

from __future__ import annotations

import logging

import httpx

from ..errors import RegistryError
from ..replica import Follower, Stopped
from .context import refusal

log = logging.getLogger("registry.web")
COMMIT_HEADER, HEAD_HEADER = "x-registry-commit", "x-registry-head"
# not passed on, either way (RFC 9110 7.6.1), and what httpx sets itself
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host"}


class Forwarder:
    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.primary = follower.primary
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # (made on the worker's event loop, at its first write)
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(300, connect=5), follow_redirects=False,
                                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, scope, receive, send) -> None:
        stopped = self.follower.stopped()
        if stopped:
            return await refusal(RegistryError(
                f"This read replica no longer follows its primary ({stopped}), so it takes no writes: send them to the "
                f"primary at {self.primary} itself.", status=503)).send(send)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP and k.lower() != b"x-forwarded-host"]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        if host:
            headers.append((b"x-forwarded-host", host))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        gone = False

        async def body():
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone = True
                    raise RegistryError("The client hung up before its request body ended.", status=400)
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    return

        http = self._http()
        request = http.build_request(scope["method"], self.primary + target.decode("latin-1"), headers=headers,
                                     content=body())
        try:
            response = await http.send(request, stream=True)
        except RegistryError as exc:  # (the client hung up, or its body arrived too slowly: a 408)
            if gone:
                return
            return await refusal(exc).send(send)
        except httpx.HTTPError as exc:
            if gone:
                return
            log.warning("forwarding %s %s: the primary is unreachable (%s)", scope["method"], scope["path"], exc)
            return await refusal(RegistryError(
                f"The primary registry at {self.primary} is unreachable ({exc or type(exc).__name__}), and this read "
                "replica can't make changes itself: nothing was changed. Retry in a moment; reads still work here.",
                status=503)).send(send)
        try:
            waited_for = response.headers.get(COMMIT_HEADER) or (
                response.headers.get(HEAD_HEADER) if response.status_code < 400 else None)
            if waited_for:
                try:
                    caught_up = await self.follower.wait_for(waited_for)
                except Stopped as exc:
                    caught_up, why = False, str(exc)
                else:
                    why = "it has not caught up with it yet"
                if not caught_up:
                    return await refusal(RegistryError(
                        f"The primary at {self.primary} did the write (commit {waited_for}), but this read replica "
                        f"can't show it yet: {why}. Read it from the primary, or retry the read here in a moment.",
                        status=504)).send(send)
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            out = [(k, _here(v, self.primary) if k.lower() == b"location" else v) for k, v in out]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def _here(location: bytes, primary: str) -> bytes:
    """A redirect to the primary's own URL, made relative: the client stays on the replica."""
    prefix = primary.encode()
    if location.startswith(prefix) and location[len(prefix):len(prefix) + 1] in (b"/", b"?", b""):
        return location[len(prefix):] or b"/"
    return location

