"""Who is looking: the registry a request is served from, the session its cookie names (checked with
this data directory's session keys, resolved once per cookie and ledger commit) or the visitor's
cookie before sign-in, and, on a replica, waiting for a session started through another server."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from litestar import Request

from ...cache import Cache, weight
from ...datadir import Registry
from ...errors import Unauthorized
from ...identity import ANONYMOUS, Principal
from ...reads import Reader
from ..access import note
from .session import SESSION_COOKIE, VISITOR_COOKIE, Keys, Session, csrf_token

_keys: dict[Path, Keys] = {}
# (cookie, ledger commit) -> who, None: no longer valid
_principals = Cache("sessions", "web UI session cookies resolved to who holds them, per ledger commit")
_MISSING = object()
_VIEWER = "ui_viewer"  # (the request's state keeps it: each controller asks, the cookie is resolved once)


def registry(request: Request) -> Registry:
    """The data directory this server answers from."""
    return request.app.state.web.registry


def session_keys(request: Request) -> Keys:
    """What session cookies are signed and checked with here (a replica: the primary's public key)."""
    settings = registry(request).settings
    path = settings.data_path
    if path not in _keys:
        _keys[path] = Keys.of(settings)
    return _keys[path]


@dataclass
class Viewer:
    who: Principal
    session: Session | None
    sid: str  # the session's id, or the visitor's before sign-in: what CSRF tokens derive from
    csrf: str
    new_visitor: bool = False
    stale_session: bool = False  # a cookie whose session ended (or its token): cleared on the way out

    @property
    def signed_in(self) -> bool:
        return self.who.kind == "user"

    @property
    def email(self) -> str:
        """The signed-in person's ("" for nobody: a person's principal always has one)."""
        return self.who.email or ""


def viewer(request: Request) -> Viewer:
    """Who is looking, by the request's cookies."""
    found = request.state.get(_VIEWER)
    if isinstance(found, Viewer):
        return found
    reg = registry(request)
    raw = request.cookies.get(SESSION_COOKIE)
    session = Session.from_cookie(session_keys(request), raw)
    who, stale = ANONYMOUS, raw is not None and session is None
    if session is not None:
        read = Reader(reg)
        cache_key = (raw, read.commit)
        found_who = _principals.get(cache_key, _MISSING)
        if found_who is _MISSING:
            found_who = read.session_principal(session.email, session.session_id, session.expires)
            _principals.put(cache_key, found_who, weight(found_who))
        if found_who is None or (found_who.expires and found_who.expires <= time.time()):
            # (a replica that hasn't fetched the sign-in yet can't tell it from an ended session:
            # signed out for this request, the cookie kept)
            stale = knows(reg, session.commit)
            session = None
        else:
            who = found_who
    note(who)  # (who the access log names)
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    new = session is None and not (16 <= len(visitor) <= 64 and visitor.replace("-", "").replace("_", "").isalnum())
    if new:
        visitor = secrets.token_urlsafe(16)
    sid = session.sid if session else visitor
    found = Viewer(who, session, sid, csrf_token(sid), new, stale)
    request.state[_VIEWER] = found
    return found


def signed_in(request: Request, doing: str) -> Viewer:
    """Who is looking, once they are a person signed in; else a 401 that says to sign in to do ``doing``."""
    v = viewer(request)
    if not v.signed_in:
        raise Unauthorized(f"Sign in to {doing}.")
    return v


def knows(reg: Registry, commit: str) -> bool:
    """Whether this server's ledger has ``commit`` (a primary has every commit it made)."""
    if reg.primary is None:
        return True
    try:
        return commit in reg.ledger.repo()
    except ValueError:  # (no commit id at all)
        return True


async def catch_up(request: Request) -> None:
    """On a replica, a session started by a commit it hasn't fetched yet (signed in through another
    server a moment ago) first waits for that commit, as a write forwarded through it does: a
    browser signed in on one server is signed in on all."""
    state = request.app.state.web
    if state.replica is None or state.replica.stopped():
        return
    session = Session.from_cookie(session_keys(request), request.cookies.get(SESSION_COOKIE))
    if session is not None and not knows(state.registry, session.commit):
        await state.replica.wait_for(session.commit)
