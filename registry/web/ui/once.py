"""A new API token's secret, carried from the POST that made it to the page it redirects to, shown
once (POST-redirect-GET: reloading that page makes no second token, and shows the secret no more).

The secret never enters a URL, the ledger or a log: it travels in a cookie of its own, sealed with
AES-GCM under a key derived from the session signing key (which only the primary holds) and bound to
the session that made it, for a minute. The page that shows it clears it; any other page does too.
A replica can't open it: it forwards a request that carries it to the primary (front.py)."""

from __future__ import annotations

import base64
import json
import os
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .session import Keys

NEW_TOKEN_COOKIE = "registry_new_token"
LIFETIME = 60  # seconds: the redirect follows at once


def _key(keys: Keys) -> AESGCM | None:
    if keys.private is None:  # (a replica: it never makes a token, so has nothing to open)
        return None
    derived = HKDF(hashes.SHA256(), 32, salt=None, info=b"registry ui: a new token, shown once").derive(
        keys.private.private_bytes_raw())
    return AESGCM(derived)


def seal(keys: Keys, session: str, token_id: str, secret: str) -> str:
    """The cookie's value: (token id, secret, when), sealed and bound to ``session``."""
    aead = _key(keys)
    assert aead is not None, "only the primary makes tokens"
    nonce = os.urandom(12)
    plain = json.dumps({"id": token_id, "secret": secret, "at": int(time.time())}).encode()
    return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, plain, session.encode())).decode()


def unseal(keys: Keys, session: str, value: str) -> tuple[str, str] | None:
    """(token id, secret) if ``value`` was sealed for this session less than a minute ago; None
    otherwise (another session's, too old, tampered with, or this server can't open it)."""
    aead = _key(keys)
    if aead is None or not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value.encode())
        found = json.loads(aead.decrypt(raw[:12], raw[12:], session.encode()))
    except (ValueError, InvalidTag, TypeError):
        return None
    if not isinstance(found, dict) or not 0 <= time.time() - found.get("at", 0) <= LIFETIME:
        return None
    return str(found["id"]), str(found["secret"])
