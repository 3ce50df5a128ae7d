"""Credentials of upstream indexes: in the data directory (mode 0600), by workspace and upstream
name, never in the ledger (whose record says only that some are set). Written atomically and
durably before the ledger records the upstream that uses them."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ..config import Settings
from ..fsync import fsync_path, write_file
from ..locks import held


class Credentials(msgspec.Struct, frozen=True):
    username: str
    password: str


_Table = dict[str, dict[str, Credentials]]  # workspace -> upstream name -> its credentials


def _read(path: Path) -> _Table:
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Table)
    except FileNotFoundError:
        return {}


def credentials(settings: Settings, ws: str, name: str) -> Credentials | None:
    return _read(settings.upstream_credentials_path).get(ws, {}).get(name)


def store(settings: Settings, ws: str, name: str, given: Credentials | None) -> None:
    """Keep (or, given None, forget) an upstream's credentials, durably."""
    path = settings.upstream_credentials_path
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
