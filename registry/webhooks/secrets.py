"""Webhooks' secrets: a hook's HMAC key, or the repository access token a Bitbucket hook calls the
API with. In the data directory (mode 0600), by workspace and hook name, never in the ledger (whose
record says only that one is set): written durably before the ledger records the hook."""

from __future__ import annotations

import secrets as random

from ..config import Settings
from ..secretfile import SecretFile

_FILE: SecretFile[str] = SecretFile(str)


def new_secret() -> str:
    return "whsec_" + random.token_urlsafe(32)


def secret(settings: Settings, ws: str, name: str) -> str | None:
    """A hook's secret (asked once per delivery: the file is read again only once it has changed)."""
    return _FILE.get(settings.webhook_secrets_path, ws, name)


def store(settings: Settings, ws: str, name: str, given: str | None) -> None:
    """Keep (or, given None, forget) a hook's secret, durably."""
    _FILE.store(settings.webhook_secrets_path, ws, name, given)
