"""Web sessions' cookies, and CSRF tokens.

A session cookie holds (email, session id, CSRF id, expiry), signed with Ed25519 under a key kept in
the data directory (mode 0600, made on first use). It holds no secret: it names a session record in
the ledger (operations/signin.py), looked up on every request (once per cookie and commit), so ending
the session (signing out, from another session, revoking the token it was signed in with) ends it on
every worker and every replica as soon as they have the commit. Read replicas get only the public
half of the key (``Settings.session_public_key_path``): they check the primary's sessions but can
make none, so a replica token can't be turned into anyone's session. A state-changing form carries
a CSRF token derived from the cookie's CSRF id (or, before sign-in, from a random visitor cookie):
another site can read neither cookie, so it can't make the token, and a replica can render one the
primary accepts. (The CSRF id is not the session's id: that one is in the ledger, which witnesses
and replicas read.)
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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ...cache import memoized
from ...config import Settings
from ...fsync import fsync_path
from ...operations import Started

SESSION_COOKIE = "registry_session"
VISITOR_COOKIE = "registry_visitor"


@dataclass(frozen=True)
class Keys:
    """What cookies are signed with (``None`` on a replica) and checked with."""

    private: Ed25519PrivateKey | None
    public: bytes

    @classmethod
    def of_primary(cls, settings: Settings) -> Keys:
        private = Ed25519PrivateKey.from_private_bytes(signing_key(settings.session_key_path))
        return cls(private, public_bytes(private))

    @classmethod
    def of_replica(cls, settings: Settings) -> Keys:
        try:
            return cls(None, settings.session_public_key_path.read_bytes())
        except FileNotFoundError:  # (not fetched from the primary yet: no session holds here)
            return cls(None, b"")

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        """This data directory's: a replica's (the public key only) or a primary's."""
        return cls.of_replica(settings) if settings.primary else cls.of_primary(settings)


def public_bytes(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def signing_key(path: Path) -> bytes:
    """The seed cookies are signed with, at ``path``; every worker reads the same file (the first one
    makes it)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
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


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(keys: Keys, payload: dict) -> str:
    if keys.private is None:
        raise RuntimeError("a read replica makes no sessions: its sign-in forms are forwarded to the primary")
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(keys.private.sign(b'session:' + body.encode()))}"


# (a browser sends the same cookie with every page: check it once)
@memoized("session-signatures", "session cookies whose signature was checked")
def _genuine(public: bytes, body: str, signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(_unb64(signature), b"session:" + body.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


def unsign(keys: Keys, value: str | None) -> dict | None:
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    if not _genuine(keys.public, body, signature):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True)
class Session:
    email: str
    session_id: str  # the ledger's record of it (operations.start_session)
    sid: str  # what its CSRF tokens derive from
    expires: float
    commit: str  # the commit that started it: a server without it hasn't heard of the session yet

    def cookie(self, keys: Keys) -> str:
        return sign(keys, {"e": self.email, "i": self.session_id, "s": self.sid, "x": int(self.expires),
                           "c": self.commit})

    @classmethod
    def from_cookie(cls, keys: Keys, value: str | None) -> Session | None:
        p = unsign(keys, value)
        try:
            session = cls(str(p["e"]), str(p["i"]), str(p["s"]), float(p["x"]), str(p["c"])) if p else None
        except (KeyError, TypeError, ValueError):
            return None  # (a cookie from before sessions were records names no session: signed out)
        return session if session and session.expires > time.time() else None


def new_session(started: Started) -> Session:
    record = started.session
    return Session(record.user, record.id, secrets.token_urlsafe(16), record.expires.timestamp(), started.commit)


def csrf_token(sid: str) -> str:
    return _b64(hashlib.sha256(b"csrf:" + sid.encode()).digest())


def csrf_ok(sid: str | None, given: str | None) -> bool:
    if not sid or not given:
        return False
    # (as bytes: compare_digest refuses str that isn't ASCII, and a forged token may be anything)
    return hmac.compare_digest(csrf_token(sid).encode(), given.encode("utf-8", "replace"))
