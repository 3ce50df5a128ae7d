"""A replica's writes: every request that may change something (any method but GET and HEAD) goes to
the primary as it came, body streamed both ways (a 500 MB upload passes in 64 KiB pieces), with the
caller's own credentials. The primary names the commit the write made (`X-Registry-Commit`; or its
head, `X-Registry-Head`, when it made none); the answer is held until this replica's ledger has it,
so whoever writes through a replica reads their write from it next.

A silent primary is noticed in bounded time (replica/primary.py: REGISTRY_FOLLOW_TIMEOUT_SECONDS for
each step of progress; while it is sent nothing back, a check that it is alive): a 503 if the request
didn't reach it whole (nothing changed), a 504 if it did (it may have been done). Either names the
primary and the error. A fault retires the pooled connections: the next request gets fresh ones.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
import httpx

from .. import outbound
from ..errors import RegistryError
from ..replica import Follower, Stopped
from ..replica.primary import ANSWER_CAP, Silent, describe, timeouts, watched
from .answers import refusal
from .asgi import Receive, Scope, Send

log = logging.getLogger("registry.web")
COMMIT_HEADER, HEAD_HEADER = "x-registry-commit", "x-registry-head"
# not passed on, either way (RFC 9110 7.6.1), and what httpx sets itself
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host"}


class Forwarder:
    def __init__(self, follower: Follower, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.follower = follower
        self._transport = transport  # (httpx's own when None; tests give one that fails)
        self.primary = follower.primary
        self.seconds = follower.timeout
        self._client: httpx.AsyncClient | None = None
        self._users: dict[httpx.AsyncClient, int] = {}  # requests in flight on each client, retired ones too

    @asynccontextmanager
    async def _lease(self):
        """The client for one request: the current one, made on the worker's event loop at its first
        write. A retired client is closed once its last request ends."""
        if self._client is None:
            self._client = outbound.client(
                timeouts(self.seconds, read=ANSWER_CAP), follow_redirects=False, transport=self._transport,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
            self._users[self._client] = 0
        client = self._client
        self._users[client] += 1
        try:
            yield client
        finally:
            self._users[client] -= 1
            if client is not self._client and not self._users[client]:
                del self._users[client]
                with anyio.CancelScope(shield=True):
                    await client.aclose()

    def _retire(self, client: httpx.AsyncClient) -> None:
        """A fault on one of its connections: the primary stalled or went away, and the others may
        be dead too (a stall's, closed at resume); the next requests get fresh connections."""
        if client is self._client:
            self._client = None

    async def aclose(self) -> None:
        for client in list(self._users):
            await client.aclose()
        self._users.clear()
        self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stopped = self.follower.stopped()
        if stopped:
            return await refusal(RegistryError(
                f"This read replica no longer follows its primary ({stopped}), so it takes no writes: send them to the "
                f"primary at {self.primary} itself.", status=503), path=scope["path"]).send(send)
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
        sent = anyio.Event()  # the whole request is with the primary: from here on it may act on it

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
                    sent.set()
                    return

        async with self._lease() as http:
            request = http.build_request(scope["method"], self.primary + target.decode("latin-1"),
                                         headers=headers, content=body())
            try:
                response = await watched(self.primary, self.seconds, lambda: http.send(request, stream=True),
                                         started=sent)
            except RegistryError as exc:  # (the client hung up, or its body arrived too slowly: a 408)
                if not gone:
                    await refusal(exc, path=scope["path"]).send(send)
                return
            except (httpx.HTTPError, Silent) as exc:
                self._retire(http)
                if gone:
                    return
                why = str(exc) if isinstance(exc, Silent) else describe(exc, self.seconds)
                log.warning("forwarding %s %s: the primary did not answer (%s)", scope["method"], scope["path"], why)
                return await refusal(self._no_answer(why, sent.is_set()), path=scope["path"]).send(send)
            await self._answer(scope["path"], response, send, http)

    def _no_answer(self, why: str, sent: bool) -> RegistryError:
        if not sent:
            return RegistryError(
                f"The primary registry at {self.primary} is unreachable ({why}), and this read replica can't make "
                "changes itself: nothing was changed. Retry in a moment; reads still work here.", status=503)
        return RegistryError(
            f"The primary registry at {self.primary} stopped answering ({why}) after this read replica had sent it "
            "the whole request: it may or may not have done it. Look before you retry (a publish that was done "
            "says the file exists); reads still work here.", status=504)

    async def _answer(self, path: str, response: httpx.Response, send: Send, http: httpx.AsyncClient) -> None:
        """The primary's answer to a request for ``path``, once this replica holds the commit it names."""
        try:
            waited_for = response.headers.get(COMMIT_HEADER) or (
                response.headers.get(HEAD_HEADER) if response.status_code < 400 else None)
            if waited_for:
                why = "it has not caught up with it yet"
                try:  # (watched: a primary that goes silent now ends the wait sooner)
                    caught_up = await watched(self.primary, self.seconds, lambda: self.follower.wait_for(waited_for))
                except Stopped as exc:
                    caught_up, why = False, str(exc)
                except Silent as exc:
                    caught_up, why = False, f"the primary stopped answering before it could be fetched ({exc})"
                if not caught_up:
                    return await refusal(RegistryError(
                        f"The primary at {self.primary} did the write (commit {waited_for}), but this read replica "
                        f"can't show it yet: {why}. Read it from the primary, or retry the read here in a moment.",
                        status=504), path=path).send(send)
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            out = [(k, _here(v, self.primary) if k.lower() == b"location" else v) for k, v in out]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            chunks = response.aiter_raw()
            while True:
                try:
                    with anyio.fail_after(self.seconds):  # (progress: a silent primary ends the answer)
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except (httpx.HTTPError, TimeoutError) as exc:
                    self._retire(http)
                    log.warning("relaying the primary's answer: %s", describe(exc, self.seconds))
                    raise  # (the status is sent: the client sees the connection end short)
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

