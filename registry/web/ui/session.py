"""Web sessions: signed cookies that name the API token they came from, and CSRF tokens.

A session cookie holds (email, token id, session id, expiry), signed with HMAC-SHA256 under a key
kept in the data directory (mode 0600, made on first use). It holds no secret: on every request the
token it names is looked up in the ledger, so revoking the token (or its expiry) ends the session.
Every state-changing form carries a CSRF token derived from the session id (or, before sign-in,
from a random visitor cookie) that a page on another site can't read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ... import layout, model
from ...fsync import fsync_path
from ...identity import Principal
from ...ledger import Snapshot
from ...model import ApiToken, User
from ...operations import find_token

SESSION_COOKIE = "registry_session"
VISITOR_COOKIE = "registry_visitor"
SESSION_SECONDS = 12 * 3600
KEY_FILE = "web-session.key"


def signing_key(data_dir: Path) -> bytes:
    """The key cookies are signed with; every worker reads the same file (the first one makes it)."""
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # (fails if another worker got there first: theirs wins)
        fsync_path(path.parent)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key: bytes, payload: dict) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, b"session:" + body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def unsign(key: bytes, value: str | None) -> dict | None:
    if not value or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    expected = _b64(hmac.new(key, b"session:" + body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Session:
    email: str
    token_id: str
    sid: str
    expires: float
    via: str  # "token" or "link"

    def cookie(self, key: bytes) -> str:
        return sign(key, {"e": self.email, "t": self.token_id, "s": self.sid, "x": int(self.expires), "v": self.via})

    @classmethod
    def from_cookie(cls, key: bytes, value: str | None) -> Session | None:
        p = unsign(key, value)
        try:
            session = cls(str(p["e"]), str(p["t"]), str(p["s"]), float(p["x"]), str(p["v"])) if p else None
        except (KeyError, TypeError, ValueError):
            return None
        return session if session and session.expires > time.time() else None


def new_session(principal: Principal, via: str) -> Session:
    lifetime = time.time() + SESSION_SECONDS
    expires = min(lifetime, principal.expires) if principal.expires else lifetime
    return Session(principal.email, principal.token_id, secrets.token_urlsafe(16), expires, via)


def principal(snap: Snapshot, session: Session) -> Principal | None:
    """Who the session acts as, if the token it came from still holds (not revoked, not expired,
    still its user's): exactly what that token may do."""
    found = find_token(snap, session.token_id)
    token: ApiToken | None = found[1] if found else None
    if token is None or token.id != session.token_id or token.user != session.email or token.repository:
        return None
    if token.scope in ("witness", "replica"):  # (fetches the ledger, and nothing else: never a browser session)
        return None
    if token.revoked is not None or (token.expires is not None and token.expires <= model.now()):
        return None
    user = snap.get(layout.user(token.user), User)
    if user is None:
        return None
    expires = min(session.expires, token.expires.timestamp()) if token.expires else session.expires
    return Principal(kind="user", email=user.email, name=user.name, scope=token.scope, token_id=token.id,
                     expires=expires)


def csrf_token(key: bytes, sid: str) -> str:
    return _b64(hmac.new(key, b"csrf:" + sid.encode(), hashlib.sha256).digest())


def csrf_ok(key: bytes, sid: str | None, given: str | None) -> bool:
    return bool(sid and given) and hmac.compare_digest(csrf_token(key, sid), given)
