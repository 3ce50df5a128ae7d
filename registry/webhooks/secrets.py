"""Webhooks' secrets: a hook's HMAC key, or the repository access token a Bitbucket hook calls the
API with. In the data directory (mode 0600), by workspace and hook name, never in the ledger (whose
record says only that one is set): written durably before the ledger records the hook."""

from __future__ import annotations

import os
import secrets as random
from pathlib import Path

import msgspec

from ..config import Settings
from ..fsync import fsync_path, write_file
from ..locks import held

_Table = dict[str, dict[str, str]]  # workspace -> hook name -> its secret


def _read(path: Path) -> _Table:
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Table)
    except FileNotFoundError:
        return {}


def new_secret() -> str:
    return "whsec_" + random.token_urlsafe(32)


def secret(settings: Settings, ws: str, name: str) -> str | None:
    """A hook's secret (read each time: the deliverer asks once per delivery, and it may change)."""
    return _read(settings.webhook_secrets_path).get(ws, {}).get(name)


def store(settings: Settings, ws: str, name: str, given: str | None) -> None:
    """Keep (or, given None, forget) a hook's secret, durably."""
    path = settings.webhook_secrets_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with held(path.with_name(path.name + ".lock")):
        table = _read(path)
        if given is None:
            if name not in table.get(ws, {}):
                return
            del table[ws][name]
        else:
            table.setdefault(ws, {})[name] = given
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        write_file(temp, msgspec.json.encode(table), 0o600, exclusive=False, sync=True)
        os.replace(temp, path)
        fsync_path(path.parent)
