"""A replica's forwarded write whose transport fails in any way is answered as the primary not
answering: a 503 that says nothing changed when the request never went whole to the primary, a 504
that says it may have been done when it did; never a 500. The failure named is the one that
happened, down to a race inside the HTTP client (seen: uvloop's closed socket as None, and anyio's
``'NoneType' object has no attribute 'getpeername'`` out of the pool's check of an idle connection)."""

from __future__ import annotations

import anyio
import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.config import Settings
from registry.ledger import Ledger
from registry.replica import Follower
from registry.web.forward import Forwarder

PRIMARY = "http://primary.test"
ERRORS = st.sampled_from([
    AttributeError("'NoneType' object has no attribute 'getpeername'"), OSError(104, "Connection reset by peer"),
    anyio.BrokenResourceError(), RuntimeError("the pool is closed"), TypeError("a None where bytes were"),
    httpx.ReadError("reset"), httpx.RemoteProtocolError("Server disconnected without sending a response.")])


class Failing(httpx.AsyncBaseTransport):
    """httpx's transport failing with ``exc``, after taking the whole request body or before any of it."""

    def __init__(self, exc: Exception, took_body: bool) -> None:
        self.exc, self.took_body = exc, took_body

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.took_body:
            await request.aread()
        raise self.exc


def follower(tmp_path) -> Follower:
    s = Settings(data=str(tmp_path / "replica"), follow=PRIMARY)
    return Follower(s, Ledger(s.ledger_path))


async def forwarded(forward: Forwarder) -> tuple[int, str]:
    body = b"name=pkg&version=1.0"
    messages = iter([{"type": "http.request", "body": body[:8], "more_body": True},
                     {"type": "http.request", "body": body[8:], "more_body": False}])
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", str(len(body)).encode()),
               (b"host", b"r.test")]
    scope = {"type": "http", "method": "POST", "path": "/default/", "raw_path": b"/default/", "query_string": b"",
             "client": ("127.0.0.1", 1), "headers": headers}
    await forward(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()


@settings(max_examples=30, deadline=None)
@given(exc=ERRORS, took_body=st.booleans())
def test_any_failure_of_the_send_is_the_primary_not_answering(tmp_path_factory, exc, took_body):
    forward = Forwarder(follower(tmp_path_factory.mktemp("r")), transport=Failing(exc, took_body))

    async def run():
        try:
            return await forwarded(forward)
        finally:
            await forward.aclose()

    status, text = anyio.run(run)
    named = type(exc).__name__ if isinstance(exc, httpx.HTTPError) else f"TransportFault: the connection broke " \
        f"inside the HTTP client ({type(exc).__name__}"
    if took_body:
        assert status == 504 and f"The primary registry at {PRIMARY} stopped answering ({named}" in text, text
        assert "may or may not have done it" in text
    else:
        assert status == 503 and f"The primary registry at {PRIMARY} is unreachable ({named}" in text, text
        assert "nothing was changed" in text
    assert "()" not in text
