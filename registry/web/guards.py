"""What the front door wraps every request in: a request body that must keep arriving, and answers
whose redirects stay on this origin and whose HTML pages can't be framed.

Both are mechanisms rather than rules each handler remembers: whatever a handler (ours or the
framework's) answers, a Location that would send a browser to another site is rewritten and logged,
and a body trickled in to hold a worker's connection open is cut off with a 408.
"""

from __future__ import annotations

import logging
import time

import anyio

from ..errors import RegistryError
from .asgi import Message, Receive, Send

log = logging.getLogger("registry.web")

# Every HTML page, the UI's and the API's Swagger page alike: never framed, never sniffed. (The UI
# adds its own Content-Security-Policy; a page without one gets the framing part of it.)
HTML_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
)
NOSNIFF = (b"x-content-type-options", b"nosniff")


def local_path(path: str) -> str:
    """``path`` with exactly one leading '/': a browser reads `//host/...` (and `/\\host/...`) as
    another site, so a path made of what a request held must never start so."""
    return "/" + path.lstrip("/\\")


def keeps_origin(location: str) -> bool:
    """Whether a Location a response carries keeps a browser on this origin: a path with exactly one
    leading '/' and nothing a browser drops or reads as a separator (whitespace, control characters,
    '\\'). An absolute http(s) URL is the registry's own making (a bucket's presigned URL), never
    a request's."""
    if location.startswith(("http://", "https://")):
        return True
    return location.startswith("/") and location[1:2] not in ("/", "\\") and \
        not any(c <= " " or c in "\\\x7f" for c in location)


class SlowBody(RegistryError):
    status = 408


def paced(receive: Receive, min_rate: int, grace: float) -> Receive:
    """``receive``, cut off with a 408 once the request body falls behind ``min_rate`` bytes a second
    after the first ``grace`` seconds (a client on a slow link is far above any sane floor; a body
    trickled in at a byte a second to hold the connection is not). Only the time spent waiting for
    the client counts, not the registry's own (a slow disk or bucket is not the client's fault).
    Once the body has ended, ``receive`` is passed through untouched: a streamed answer listens on
    it for the client leaving."""
    waited, received, ended = 0.0, 0, False

    async def receive_paced() -> Message:
        nonlocal waited, received, ended
        if ended:
            return await receive()
        began = time.monotonic()
        try:
            with anyio.fail_after(max(grace + received / min_rate - waited, 0)):
                message = await receive()
        except TimeoutError:
            raise SlowBody(
                f"The request body arrived too slowly: {received} bytes in {waited + time.monotonic() - began:.0f} s; "
                f"the registry needs at least {min_rate} bytes a second after the first {grace:.0f} s. Retry from a "
                "faster connection.") from None
        waited += time.monotonic() - began
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            ended = not message.get("more_body", False)
        else:
            ended = True
        return message

    return receive_paced


def guarded(send: Send) -> Send:
    """``send``, with every answer's Location kept on this origin, HTML answers' security headers,
    and a 408 that asks for its connection's end (RFC 9110 15.5.9: the server gave up waiting for
    this request; a client should not send the rest of the body, nor reuse the connection)."""
    async def send_guarded(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = secured(message.get("headers") or [])
            if message["status"] == 408:
                headers = [*headers, (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return send_guarded


def secured(headers) -> list[tuple[bytes, bytes]]:
    """An answer's ``headers`` with every Location kept on this origin and the security headers its
    content type calls for (what the answer cache stores is secured once, when it is stored)."""
    out, names, html = [], set(), False
    for name, value in headers:
        name = name.lower()
        if name == b"location":
            location = value.decode("latin-1")
            if not keeps_origin(location):
                log.error("an answer's Location %r would leave this origin; sent %r instead", location[:200],
                          local_path(location)[:200])
                value = _quoted(local_path(location)).encode("latin-1")
        elif name == b"content-type":
            html = b"html" in value.lower()
        names.add(name)
        out.append((name, value))
    extra = [NOSNIFF] if NOSNIFF[0] not in names else []
    if html:
        extra += [h for h in HTML_HEADERS if h[0] not in names]
    return out + extra if extra else out


def _quoted(path: str) -> str:
    return "".join(c if " " < c < "\x7f" and c != "\\" else f"%{ord(c):02X}" for c in path)
