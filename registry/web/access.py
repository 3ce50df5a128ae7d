"""The access log: one line per request (method, path, status, bytes, milliseconds, who), written by
the one middleware every request passes (`AccessLog`, outermost: a refusal at the front door is
logged as an answer from the app is).

Who is the principal as the credentials code resolved it for this request (`note`, called by the
code that resolves it): an email, `pipeline:{uuid}`, `anonymous`. Nothing secret is ever written:
no header, no query string (a query may carry a token), and the secret segment of a sign-in link
replaced by `…`. The line is formatted only if the logger takes it, by `logging` itself.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..identity import Principal
from ..links import SIGNIN_LINK
from .asgi import ASGIApp, Message, Receive, Scope, Send
from .incoming import SCOPE_KEY, Incoming

if TYPE_CHECKING:
    from .credentials import Authenticator

log = logging.getLogger("registry.access")
_WHO: ContextVar[list] = ContextVar("registry.access.who")  # a one-slot list per request, filled by `note`
REDACTED = "…"
# a path holding a secret: its prefix, up to the secret (a sign-in link's: /-/_/link/<secret>)
_SECRET_PREFIXES = (SIGNIN_LINK.path.partition("{")[0],)
_SLASHES = re.compile("/{2,}")


def configure(enabled: bool) -> None:
    """On: every request's line at INFO, whatever REGISTRY_LOG_LEVEL lets through of the rest."""
    log.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)
    log.disabled = not enabled


def note(who: Principal | Exception) -> None:
    """Record who the request's credentials resolved to (or that they were refused)."""
    slot = _WHO.get(None)
    if slot is not None:
        slot[0] = who


def shown_path(path: str) -> str:
    """The path as logged: the secret of a sign-in link replaced (also in a path spelled with doubled
    slashes, which a client may send and the router may still take)."""
    plain = _SLASHES.sub("/", path)
    for prefix in _SECRET_PREFIXES:
        if plain.startswith(prefix) and len(plain) > len(prefix):
            return prefix + REDACTED
    return path


def who_of(found: object, seen: object, authenticator: Authenticator) -> str:
    """Who the request was from: as resolved for it, else as its credentials were last resolved (a
    repeat index request is answered from memory, without resolving them again)."""
    authorization = seen.authorization if isinstance(seen, Incoming) else None
    if found is None and authorization:
        found = authenticator.known(authorization)
    if isinstance(found, Principal):
        return found.actor
    if isinstance(found, Exception):
        return "refused-credentials"  # (not the name they claimed: a mistyped token lands there too)
    return "unchecked" if authorization else "anonymous"  # (credentials that answering didn't need)


class AccessLog:
    def __init__(self, front: ASGIApp, authenticator: Authenticator) -> None:
        self._front, self._authenticator = front, authenticator

    def __getattr__(self, name: str):  # look like the front door to whoever holds us (tests: its `.app`)
        return getattr(self._front, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or log.disabled:
            return await self._front(scope, receive, send)
        started, method, path = time.perf_counter(), scope["method"], scope["path"]  # (the router rewrites them)
        slot: list = [None]
        token = _WHO.set(slot)
        answer = [0, 0]  # status, body bytes

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self._front(scope, receive, counting)
        finally:
            _WHO.reset(token)
            log.info("%s %s %s %d %.1fms %s", method, shown_path(path), answer[0] or "-", answer[1],
                     (time.perf_counter() - started) * 1000, who_of(slot[0], scope.get(SCOPE_KEY), self._authenticator))
