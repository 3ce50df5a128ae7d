"""The commit journal: what lets a commit be durable after one round of fsyncs instead of two.

Before the branch moves, a writer appends one line naming the new commit, its parent, its pack and
the files outside git it needs (the distribution, its metadata), and fsyncs that line together with
the pack and those files. The branch then moves without waiting for another fsync. After a crash
the ref may lag behind what was acknowledged; on opening, `Ledger.recover` follows the journal from
the branch's tip and moves it forward over every entry whose pack and files are complete, then makes
the ref durable and empties the journal. Only the tail is ever needed, so the writer empties the
journal now and then too (after syncing the ref).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

RESET_AT = 256 * 1024  # bytes of journal before the writer syncs the ref and starts afresh


class Entry(msgspec.Struct, frozen=True):
    parent: str
    commit: str
    pack: str  # pack-<sha1>, under objects/pack
    files: tuple[str, ...] = ()  # relative to the data directory: blobs and their directories


class Journal:
    def __init__(self, path: Path, base: Path) -> None:
        self.path = path
        self.base = base  # the data directory, so that moving it whole keeps the entries valid
        self._fd: int | None = None
        self._pid: int | None = None

    def append(self, parent: str, commit: str, pack: Path, files: Sequence[Path]) -> list[Path]:
        """Write the entry; not synced: the caller fsyncs the returned paths with the pack."""
        entry = Entry(parent, commit, pack.stem, tuple(os.path.relpath(f, self.base) for f in files))
        to_sync = [self.path]
        if self._fd is None or self._pid != os.getpid():  # (a forked process opens its own)
            if not self.path.exists():
                to_sync.append(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        os.write(self._fd, msgspec.json.encode(entry) + b"\n")
        return to_sync

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def entries(self) -> list[Entry]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(msgspec.json.decode(line, type=Entry))
            except msgspec.DecodeError:  # torn by a crash mid-append: never acknowledged
                continue
        return out

    def reset(self) -> None:
        """Empty the journal; call only once the ref it leads to is durable."""
        with open(self.path, "ab") as fh:
            fh.truncate(0)
            os.fsync(fh.fileno())

    def complete(self, entry: Entry, pack_dir: Path) -> bool:
        """Did everything the entry's commit needs reach the disk whole?"""
        pack, idx = pack_dir / f"{entry.pack}.pack", pack_dir / f"{entry.pack}.idx"
        if pack.exists() or idx.exists():
            if not (_checksummed(pack) and _checksummed(idx) and pack.read_bytes()[-20:].hex() == entry.pack[5:]):
                return False
        # (A pack already folded into another by a repack is checked by reading the commit instead.)
        for name in entry.files:
            path = self.base / name
            if not path.exists():
                return False
            if path.is_file() and len(path.name) == 64 and _sha256(path) != path.name:
                return False
        return True


def chain(entries: list[Entry], tip: str) -> list[Entry]:
    """The entries leading from ``tip`` to the journal's last commit, oldest first; empty when the
    tip is already there or the journal doesn't lead on from it."""
    if not entries or entries[-1].commit == tip:
        return []
    by_commit = {e.commit: e for e in entries}  # the later entry wins a repeated commit
    out = [entries[-1]]
    while out[-1].parent != tip:
        previous = by_commit.get(out[-1].parent)
        if previous is None or len(out) > len(entries):
            return []
        out.append(previous)
    return out[::-1]


def _checksummed(path: Path) -> bool:
    """A pack or pack index ends with the SHA-1 of everything before it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return len(data) > 20 and hashlib.sha1(data[:-20]).digest() == data[-20:]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

