"""The limits bench_limits.py measures the registry against, served by granian as the registry is
(2 workers): the same page's bytes answered from memory with no routing and no authentication,
through ASGI (`asgi`; `asgi_its_headers` with the registry's own headers) and through granian's
own interface (`rsgi`; `rsgi_its_headers` reading every request header, as the registry must, and
sending the registry's headers); a server that reads each upload's body whole and throws it away
(`discard`), and one that makes each body durable before it answers (`discard_durable`: appended
to one file and fdatasynced, the least an acknowledgement that survives a power cut costs).
BARE_DIR names the directory holding the pages (page.json, page.html) and the registry's headers
(headers.json.json, headers.html.json), read once at import."""

from __future__ import annotations

import json
import os
from pathlib import Path

TYPES = {"json": b"application/vnd.pypi.simple.v1+json", "html": b"text/html; charset=utf-8"}
_dir = Path(os.environ.get("BARE_DIR", "."))
PAGES = {f"/page.{kind}": ((_dir / f"page.{kind}").read_bytes() if (_dir / f"page.{kind}").exists() else b"", kind)
         for kind in TYPES}


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def asgi(scope, receive, send) -> None:
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    body, kind = PAGES.get(scope["path"], (b"", "html"))
    await send({"type": "http.response.start", "status": 200 if body else 404,
                "headers": [(b"content-type", TYPES[kind]), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# the registry's own headers for each page (headers.<kind>.json, when bench_limits.py saved them)
HEADERS = {path: [(k.encode(), v.encode()) for k, v in json.loads((_dir / f"headers.{kind}.json").read_text())]
           for path, (_, kind) in PAGES.items() if (_dir / f"headers.{kind}.json").exists()}


async def asgi_its_headers(scope, receive, send) -> None:
    """As `asgi`, with every header the registry sent with the page (its request id included)."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    body, _ = PAGES.get(scope["path"], (b"", "html"))
    await send({"type": "http.response.start", "status": 200 if body else 404,
                "headers": HEADERS.get(scope["path"], [(b"content-length", b"0")])})
    await send({"type": "http.response.body", "body": body})


class _Rsgi:
    async def __rsgi__(self, scope, proto) -> None:
        body, kind = PAGES.get(scope.path, (b"", "html"))
        proto.response_bytes(200 if body else 404, [("content-type", TYPES[kind].decode())], body)

    def __rsgi_init__(self, loop) -> None:
        pass

    def __rsgi_del__(self, loop) -> None:
        pass


rsgi = _Rsgi()


class _RsgiItsHeaders(_Rsgi):
    """As `rsgi`, doing the least the registry's answer from memory must: every header of the request
    read into a key (the registry's repeat key, repeats.py) and the registry's own headers sent. What
    the registry would gain from granian's own interface, were it served through it."""

    async def __rsgi__(self, scope, proto) -> None:
        key = scope.method, scope.path, scope.query_string, tuple(scope.headers.items())
        _SEEN.setdefault(key, True)
        body, _ = PAGES.get(scope.path, (b"", "html"))
        proto.response_bytes(200 if body else 404, _STR_HEADERS.get(scope.path, [("content-length", "0")]), body)


_SEEN: dict = {}
_STR_HEADERS = {path: [(k.decode(), v.decode()) for k, v in headers if k != b"content-length"]
                for path, headers in HEADERS.items()}  # (granian sets the length of a body it is given)
rsgi_its_headers = _RsgiItsHeaders()


async def discard(scope, receive, send) -> None:
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    async for _ in _chunks(receive):
        pass
    await _ok(send)


_DURABLE: list[int] = []  # (the file `discard_durable` appends to, opened by each worker on its first upload)


async def discard_durable(scope, receive, send) -> None:
    """As `discard`, but each body is appended to BARE_DIR/durable-uploads and fdatasynced before the
    answer: one sync per upload, on one file that already exists (no file made, no rename)."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    if not _DURABLE:
        _DURABLE.append(os.open(_dir / "durable-uploads", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    body = bytearray()
    async for chunk in _chunks(receive):
        body += chunk
    view = memoryview(body)
    while view:  # (a write may take part of it)
        view = view[os.write(_DURABLE[0], view):]
    os.fdatasync(_DURABLE[0])
    await _ok(send)


async def _chunks(receive):
    """The request body's chunks, as they arrive."""
    while True:
        message = await receive()
        yield message.get("body", b"")
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _ok(send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"),
                                                                          (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"OK\n"})
