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


_seen: dict[Path, tuple[tuple[int, int, int], _Table]] = {}  # path -> (its stat when read, what it held)


def credentials(settings: Settings, ws: str, name: str) -> Credentials | None:
    """An upstream's credentials: the file is read again only once it has changed (it is replaced
    whole, so a new inode, size or time says so)."""
    path = settings.upstream_credentials_path
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    known = _seen.get(path)
    if known is None or known[0] != stamp:
        known = _seen[path] = (stamp, _read(path))
    return known[1].get(ws, {}).get(name)


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
