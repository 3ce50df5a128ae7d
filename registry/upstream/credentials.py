"""Credentials of upstream indexes: in the data directory (mode 0600), by workspace and upstream
name, never in the ledger (whose record says only that some are set). Written atomically and
durably before the ledger records the upstream that uses them."""

from __future__ import annotations

import msgspec

from ..config import Settings
from ..secretfile import SecretFile


class Credentials(msgspec.Struct, frozen=True):
    username: str
    password: str


_FILE: SecretFile[Credentials] = SecretFile(Credentials)


def credentials(settings: Settings, ws: str, name: str) -> Credentials | None:
    """An upstream's credentials (the file is read again only once it has changed)."""
    return _FILE.get(settings.upstream_credentials_path, ws, name)


def store(settings: Settings, ws: str, name: str, given: Credentials | None) -> None:
    """Keep (or, given None, forget) an upstream's credentials, durably."""
    _FILE.store(settings.upstream_credentials_path, ws, name, given)
