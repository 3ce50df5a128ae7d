"""Signing in to the web UI: one-time links (made on the server by `registry login-link` or the
first start, used once in a browser) and web sessions (started with an API token or a link, ended by
signing out or from another session). Each is a commit; only the SHA-256 of a link's secret is kept,
and a session has no secret at all (its cookie is signed by the server and names it by id).

Why a session is a record of its own, rather than a cookie that names the API token it came from:
signing out must end the session on every worker and every replica, and the ledger is the only
state they share. A session's record is looked up (one path) on each request, as the token was."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .. import layout, model, names
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Forbidden, NotFound, TooMany
from ..identity import Principal, refuse_disabled
from ..ledger import Change, Snapshot
from ..model import Channel, SignInLink, WebSession
from ..permissions import require_scope
from ..reads.records import (
    _SESSION_ID,
    check_signin_link,
    find_token,
    holds,
    link_hash,
    live_session,
    sessions_of,
)
from ._common import enabled_user, existing_user, made, make_change, replace, require_operator

LINK_PREFIX = "rgl_"
LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MAX_SESSIONS = 100  # live sessions per person: signing in past this ends their oldest one
# Sign-ins per person a minute: each is a commit, and even a read-scoped token may make one. Counted
# from the ledger (the sessions started in the last minute, on or over), so it holds across every
# worker and replica (theirs are forwarded here).
SIGN_INS_PER_MINUTE = 10
PACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Started:
    """A session just started, and the commit that started it: a server whose ledger lacks that
    commit doesn't know of the session yet (a replica waits for it, rather than call it over)."""

    session: WebSession
    commit: str


def create_signin_link(reg: Registry, who: Principal, channel: Channel, email: str,
                       lifetime: timedelta = LINK_LIFETIME) -> tuple[str, SignInLink]:
    """A link secret for ``email`` (shown once) and its record. Only the operator makes them."""
    email = names.email(email)
    require_operator(who, "make sign-in links")
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    digest = link_hash(secret)
    provenance = who.provenance(channel)
    record = SignInLink(id=digest[:16], user=email, sha256=digest, created=provenance,
                        expires=provenance.at + lifetime)

    def build(snap: Snapshot) -> Change:
        enabled_user(snap, email, "be given sign-in links")
        return make_change(who, channel, Action.CREATE_LOGIN_LINK, f"create sign-in link {record.id} for {email} "
                           f"(valid until {record.expires:%H:%M} UTC)",
                           {layout.signin_link(digest): record}, (T.USER, email), (T.SIGN_IN_LINK, record.id),
                           provenance=provenance)

    reg.transact(build)
    return secret, record


def use_signin_link(reg: Registry, secret: str, channel: Channel = "web") -> Started:
    """Spend the link: one commit marks it used and starts the web session it is for.

    The session has write scope: a link is made by the operator for one person, works once and for
    minutes, and stands in for that person (it is how they first get in, to make their API tokens)."""
    digest = link_hash(secret.strip())

    def build(snap: Snapshot) -> Change:
        link = check_signin_link(snap.get(layout.signin_link(digest), SignInLink))
        user = existing_user(snap, link.user)
        refuse_disabled(user)
        who = Principal(kind="user", email=user.email, name=user.name, scope="write")
        provenance = who.provenance(channel)
        record = WebSession(id=secrets.token_hex(16), user=user.email, scope="write", via="link", link=link.id,
                            created=provenance, expires=provenance.at + SESSION_LIFETIME)
        used = replace(link, used=provenance, session_token=record.id)
        writes = {layout.signin_link(digest): used, **_make_room(snap, user.email, provenance.at),
                  layout.session(user.email, record.id): record}
        return make_change(who, channel, Action.USE_LOGIN_LINK, f"sign in {user.email} with link {link.id}", writes,
                           (T.USER, user.email), (T.SIGN_IN_LINK, link.id), (T.SESSION, record.id), (T.SCOPE, "write"),
                           provenance=provenance, result=record)

    done = reg.transact(build)
    return Started(done.result, made(done).id)


def start_session(reg: Registry, who: Principal, channel: Channel = "web") -> Started:
    """A web session for the person an API token was just checked for (``who``): one commit. It has
    the token's scope, ends at the latest when the token does, and with it if the token is revoked."""
    email, token_id = who.email, who.token_id
    if who.kind != "user" or not email or not token_id or who.scope not in ("read", "write"):
        raise Forbidden("Only a person's API token (read or write scope) signs in to the web UI.")

    def build(snap: Snapshot) -> Change:
        found = find_token(snap, token_id)
        token = found[1] if found else None
        now = model.now()
        if token is None or not holds(token, email, now) or token.scope not in ("read", "write"):
            raise Forbidden(f"API token {token_id} was revoked or expired meanwhile; sign in with another.")
        refuse_disabled(existing_user(snap, email))
        provenance = who.provenance(channel)
        expires = min(provenance.at + SESSION_LIFETIME, token.expires or provenance.at + SESSION_LIFETIME)
        record = WebSession(id=secrets.token_hex(16), user=email, scope=token.scope, via="token",
                            token=token.sha256, created=provenance, expires=expires)
        writes = {**_make_room(snap, email, now), layout.session(email, record.id): record}
        return make_change(who, channel, Action.SIGN_IN, f"sign in {email} with token {token.id}", writes,
                           (T.USER, email), (T.SESSION, record.id), (T.SCOPE, record.scope),
                           provenance=provenance, result=record)

    done = reg.transact(build)
    return Started(done.result, made(done).id)


def end_session(reg: Registry, who: Principal, channel: Channel, email: str, session_id: str) -> WebSession:
    """End one of ``email``'s web sessions: signing out (``who``'s own session, which even a read-scoped
    one may end) or ending another (from a write-scoped session, or by the operator)."""
    email = names.email(email)
    _own_or_operator(who, email)
    session_id = session_id.strip().lower()
    own = who.session is not None and session_id == who.session and who.email == email
    if not own:
        require_scope(who, "end other sessions")

    def build(snap: Snapshot) -> Change:
        path = layout.session(email, session_id) if _SESSION_ID.match(session_id) else None
        record = snap.get(path, WebSession) if path else None
        if record is None:
            raise NotFound(f"{email} has no session {session_id[:32]!r}: it has ended already (Your tokens lists "
                           "the sessions that are on).")
        if record.ended is not None:
            raise NotFound(f"{email}'s session {record.id[:12]} has ended already (Your tokens lists the sessions that "
                           "are on).")
        summary = f"sign out {email} (session {record.id[:12]})" if own else f"end session {record.id[:12]} of {email}"
        provenance = who.provenance(channel)
        return make_change(who, channel, Action.SIGN_OUT if own else Action.END_SESSION, summary,
                           {path: replace(record, ended=provenance)}, (T.USER, email), (T.SESSION, record.id),
                           result=record, provenance=provenance)

    return reg.transact(build).result


def end_sessions(reg: Registry, who: Principal, channel: Channel, email: str, *,
                 keep: str | None = None) -> list[WebSession]:
    """End all of ``email``'s web sessions but ``keep`` (signing out everywhere else): one commit."""
    email = names.email(email)
    _own_or_operator(who, email)
    require_scope(who, "end other sessions")

    def build(snap: Snapshot) -> Change:
        ended = [s for s in sessions_of(snap, email) if s.id != keep]
        if not ended:
            raise NotFound(f"{email} has no {'other ' if keep else ''}sessions on.")
        provenance = who.provenance(channel)
        return make_change(who, channel, Action.END_SESSION, f"end {len(ended)} sessions of {email}",
                           {layout.session(email, s.id): replace(s, ended=provenance) for s in ended}, (T.USER, email),
                           *((T.SESSION, s.id) for s in ended), result=ended, provenance=provenance)

    return reg.transact(build).result


def _make_room(snap: Snapshot, email: str, now: datetime) -> dict[str, None]:
    """The records a sign-in deletes: ``email``'s sessions that are over (ended, expired, or their
    token revoked) and older than a minute, and the oldest live ones past `MAX_SESSIONS` - 1. So a
    person's directory holds their live sessions and those of the last minute; past
    `SIGN_INS_PER_MINUTE` of those, the sign-in is refused (a loop would grow the ledger)."""
    gone: dict[str, None] = {}
    live: list[WebSession] = []
    recent = 0
    for s in sessions_of(snap, email, ended=True):
        if s.created.at > now - PACE:
            recent += 1
        if live_session(snap, email, s.id) is not None:
            live.append(s)
        elif s.created.at <= now - PACE:
            gone[layout.session(email, s.id)] = None
    if recent >= SIGN_INS_PER_MINUTE:
        raise TooMany(f"{email} signed in {recent} times in the last minute: wait a minute and sign in again (each "
                      "sign-in is recorded in the ledger).")
    for s in live[:max(0, len(live) - (MAX_SESSIONS - 1))]:
        gone[layout.session(email, s.id)] = None
    return gone


def _own_or_operator(who: Principal, email: str) -> None:
    if who.kind != "operator" and (who.kind != "user" or who.email != email):
        raise Forbidden("You can only end your own sessions.")
