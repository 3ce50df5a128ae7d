"""Secrets kept in the data directory, never in the ledger (whose records say only that one is
set): an upstream index's credentials, a webhook's HMAC key or Bitbucket token. One file per kind,
a table by workspace and name, mode 0600, replaced whole, atomically and durably (before the ledger
records what uses it), and read again only once it has changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from .fsync import fsync_path, write_file
from .locks import held

T = TypeVar("T")


class SecretFile(Generic[T]):
    def __init__(self, kind: Any):  # (a type, or a union of types)
        self._type = dict[str, dict[str, kind]]  # workspace -> name -> secret
        self._seen: dict[Path, tuple[tuple[int, int, int], dict[str, dict[str, T]]]] = {}

    def _read(self, path: Path) -> dict[str, dict[str, T]]:
        try:
            return msgspec.json.decode(path.read_bytes(), type=self._type)
        except FileNotFoundError:
            return {}

    def get(self, path: Path, ws: str, name: str) -> T | None:
        """The secret of ``name`` (the file is replaced whole, so a new inode, size or time says it changed)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        known = self._seen.get(path)
        if known is None or known[0] != stamp:
            known = self._seen[path] = (stamp, self._read(path))
        return known[1].get(ws, {}).get(name)

    def store(self, path: Path, ws: str, name: str, given: T | None) -> None:
        """Keep (or, given None, forget) the secret of ``name``, durably."""
        def change(table: dict[str, T]) -> bool:
            if given is not None:
                table[name] = given
                return True
            return table.pop(name, None) is not None

        self.update(path, ws, change)

    def update(self, path: Path, ws: str, change: Callable[[dict[str, T]], bool]) -> None:
        """``change`` the workspace's table in place, under the file's lock; written (durably) if it
        says it changed it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with held(path.with_name(path.name + ".lock")):
            table = self._read(path)
            if not change(table.setdefault(ws, {})):
                return
            if not table[ws]:
                del table[ws]
            temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            write_file(temp, msgspec.json.encode(table), 0o600, exclusive=False, sync=True)
            os.replace(temp, path)
            fsync_path(path.parent)

    def names(self, path: Path, ws: str) -> list[str]:
        """The names the workspace has an entry under."""
        return list(self._read(path).get(ws, {}))
