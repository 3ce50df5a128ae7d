"""Requests exactly as a server hands them to the registry: a raw ASGI scope (the path undecoded in
`raw_path`, headers as sent, duplicates and all), sent straight to the app as served. Test clients
normalise what an attacker would not (`//`, repeated headers); this doesn't."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

import anyio


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v.decode("latin-1") for k, v in self.headers if k.decode("latin-1").lower() == name), None)


async def call(app, method: str, target: str, headers: list[tuple[str, str]] = (), body: bytes = b"") -> Answer:
    """``target``: the request target as it appears on the request line (path and query, percent-encoded)."""
    raw_path, _, query = target.partition("?")
    # (granian takes raw UTF-8 in a path, decoding %XX as UTF-8; raw non-ASCII in a query is its own 400)
    query = quote(query, safe="=&%+/?:@!$'()*,;")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": unquote(raw_path) if raw_path.startswith("/") else raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode("ascii"), "root_path": "", "server": ("registry.test", 80),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"registry.test")] + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k,
                                                    v in headers],
        "state": {},
    }
    sent = [{"type": "http.request", "body": body, "more_body": False}]
    started: dict = {}
    chunks: list[bytes] = []
    answered = anyio.Event()

    async def receive():
        if sent:
            return sent.pop(0)
        # The client stays until the answer is sent, then the connection is done with this request:
        # as a server says, an http.disconnect (a streamed answer listens for it, and ends on it).
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return Answer(started["status"], list(started.get("headers") or []), b"".join(chunks))
