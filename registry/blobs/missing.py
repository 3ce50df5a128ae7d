"""Files the ledger references and the blob store was found to lack: damage, kept for `/_/health`.

A registry restarted on a bucket before the last `registry blobs migrate` run, a blobs/ restored
from an old backup, an object deleted by hand: the ledger names files the store doesn't hold.
Finding them all means listing the store and walking every version, too slow for every start of a
large registry, and never on a request's path. So the record is kept from three sources:

- a download (or `.metadata`) that finds its file missing adds it at once (one appended line);
- a full check replaces it: in the background after the server starts, with every collection
  (which lists the store and walks the versions anyway), and by `registry verify`;
- a publish of the same bytes that repairs a file drops it.

`blobs-missing` in the data directory: JSON lines ({"sha256", "where"}, or {"sha256", "found": true}
once it is back); a full check writes it anew. It is derived (the next check rebuilds it), so it is
never fsynced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from .. import locks

log = logging.getLogger("registry.blobs")


class _Line(msgspec.Struct, omit_defaults=True):
    sha256: str
    where: str = ""
    found: bool = False


class MissingBlobs:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._seen: tuple[float, int] | None = None  # (mtime, size) of what `_cached` holds
        self._cached: dict[str, str] = {}

    def add(self, sha256: str, where: str) -> None:
        """A request found ``sha256`` (named at ``where``) missing from the store."""
        if sha256 not in self.entries():
            self._append([_Line(sha256, where)])

    def found_again(self, shas: list[str]) -> None:
        """These are whole in the store again (a publish repaired them)."""
        known = self.entries()
        self._append([_Line(sha, found=True) for sha in shas if sha in known])

    def replace(self, missing: dict[str, str]) -> None:
        """What a full check found missing, all of it (sha256 → where the ledger names it)."""
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            temp.write_bytes(b"".join(msgspec.json.encode(_Line(sha, where)) + b"\n"
                                      for sha, where in sorted(missing.items())))
            os.replace(temp, self.path)
        except OSError as exc:  # (a full disk, say: a report that can't be kept must not fail its caller)
            temp.unlink(missing_ok=True)
            log.warning("could not record the missing files in %s: %s", self.path, exc)

    def entries(self) -> dict[str, str]:
        """sha256 → where, of every file last found missing and not found since."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        if self._seen != (st.st_mtime, st.st_size):
            out: dict[str, str] = {}
            for raw in self.path.read_bytes().splitlines():
                try:
                    line = msgspec.json.decode(raw, type=_Line)
                except msgspec.DecodeError:  # (a line torn by a crash: the next check rewrites it all)
                    continue
                if line.found:
                    out.pop(line.sha256, None)
                else:
                    out[line.sha256] = line.where
            self._seen, self._cached = (st.st_mtime, st.st_size), out
        return dict(self._cached)

    @contextmanager
    def checking(self) -> Iterator[bool]:
        """Whether this process is the one to run the check after start (the other workers skip it)."""
        fd = locks.first(self.path.with_name(f"{self.path.name}.lock"))
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def _append(self, lines: list[_Line]) -> None:
        if not lines:
            return
        try:
            with open(self.path, "ab") as fh:  # (O_APPEND: lines of workers never interleave)
                fh.write(b"".join(msgspec.json.encode(line) + b"\n" for line in lines))
        except OSError as exc:
            log.warning("could not record the missing files in %s: %s", self.path, exc)
