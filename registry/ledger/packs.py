"""One pack per commit: a transaction's new objects are held in memory, then written as a single
pack file and its index, so making a commit durable costs three fsyncs (pack, index, directory)
instead of two per object (a loose object and its fan-out directory).

This is what git itself does with a small push (receive.unpackLimit): many small packs, which
`git repack --geometric` folds together now and then (see Ledger.maybe_repack).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import NamedTuple

import pygit2

from ..fsync import write_file


class _InMemory(pygit2.OdbBackend):
    """What our in-memory object backends share: objects are found by full id only (`_find`),
    and there is nothing to refresh."""

    def _find(self, oid: pygit2.Oid) -> tuple[int, bytes] | None:
        return None

    def read_cb(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        found = self._find(oid)
        if found is None:
            raise KeyError(oid)
        return found

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        type_, data = self.read_cb(oid)
        return type_, len(data)

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        return self._find(oid) is not None

    def read_prefix_cb(self, hexid: str) -> tuple[int, bytes, pygit2.Oid]:
        # pygit2 (1.21) reads a whole id through here too, `repo[id]` and `odb.read` alike (what
        # `read_cb` returns is not used): answered by full id only, a shorter prefix is never ours
        oid = _full(hexid)
        found = self._find(oid) if oid is not None else None
        if oid is None or found is None:
            raise KeyError(hexid)
        return found[0], found[1], oid

    def exists_prefix_cb(self, hexid: str) -> pygit2.Oid:
        oid = _full(hexid)
        if oid is None or self._find(oid) is None:
            raise KeyError(hexid)
        return oid

    def refresh_cb(self) -> None:
        pass


def _full(hexid: str) -> pygit2.Oid | None:
    """The id ``hexid`` names, if it is a whole one."""
    return pygit2.Oid(hex=hexid) if len(hexid) == pygit2.GIT_OID_HEXSZ else None


class MemoryObjects(_InMemory):
    """An object database backend that keeps what is written in memory until `take()`.

    Added to a repository with the highest priority, it receives every write; reads fall through
    to the repository's own backends for everything it doesn't hold. It also remembers the objects
    of the last pack taken: the next commit reads exactly those (its parent and the trees on the
    changed paths), and they would otherwise be in a pack the repository has not opened yet."""

    def __init__(self) -> None:
        super().__init__()
        self._objects: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self._recent: dict[pygit2.Oid, tuple[int, bytes]] = {}

    def write_cb(self, oid: pygit2.Oid, data: bytes, type_: int) -> None:
        self._objects[oid] = (type_, bytes(data))

    def _find(self, oid: pygit2.Oid) -> tuple[int, bytes] | None:
        return self._objects.get(oid) or self._recent.get(oid)

    def __iter__(self):
        return iter(list(self._objects))

    def put(self, type_: int, data: bytes) -> pygit2.Oid:
        """Add an object directly: its id is git's hash of it. (Writing through libgit2 would make
        it look for the object first, and rescan the pack directory when it's not found.)"""
        header = f"{_TYPE_NAMES[type_]} {len(data)}\0".encode()
        oid = pygit2.Oid(raw=hashlib.sha1(header + data).digest())
        self._objects[oid] = (type_, data)
        return oid

    def take(self) -> dict[pygit2.Oid, tuple[int, bytes]]:
        """The objects written since the last take, for packing (the caller makes them durable)."""
        objects, self._objects = self._objects, {}
        self._recent = objects
        return objects

    def clear(self) -> None:
        """Forget what was written since the last take (a failed attempt's objects)."""
        self._objects = {}


class Recent:
    """The objects of the last commits this process wrote, shared with its readers (RecentObjects)."""

    def __init__(self, commits: int = 32) -> None:
        self.objects: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self._order: deque[tuple[pygit2.Oid, ...]] = deque()
        self._commits = commits

    def add(self, objects: dict[pygit2.Oid, tuple[int, bytes]]) -> None:
        self.objects.update(objects)
        self._order.append(tuple(objects))
        while len(self._order) > self._commits:
            for oid in self._order.popleft():
                self.objects.pop(oid, None)


class RecentObjects(_InMemory):
    """A reader's window on `Recent`, at the lowest priority: asked only when no pack the reader
    knows has an object, before libgit2 would rescan the pack directory. A reader of a commit
    this process just made finds it here (about 3x cheaper than the rescan)."""

    def __init__(self, recent: Recent) -> None:
        super().__init__()
        self._recent = recent

    def _find(self, oid: pygit2.Oid) -> tuple[int, bytes] | None:
        return self._recent.objects.get(oid)

    def __iter__(self):
        return iter(list(self._recent.objects))


_TYPE_NAMES = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}


class WrittenPack(NamedTuple):
    name: str  # pack-<sha1 of the pack>
    pack: Path
    idx: Path
    pack_data: bytes
    idx_data: bytes


def write_pack(objects: dict[pygit2.Oid, tuple[int, bytes]], pack_dir: Path) -> WrittenPack:
    """Write ``objects`` as `pack-<sha>.pack` and its version-2 `.idx`.

    Not synced here: the caller makes the commit durable (see journal.py). The index is renamed
    into place last: git and libgit2 only see a pack once its index exists."""
    body = bytearray(b"PACK" + struct.pack(">II", 2, len(objects)))
    entries: list[tuple[bytes, int, int]] = []  # (raw oid, offset, crc32)
    for oid, (type_, data) in objects.items():
        packed = _entry_header(type_, len(data)) + zlib.compress(data, _LEVELS.get(type_, 1))
        entries.append((oid.raw, len(body), zlib.crc32(packed)))
        body += packed
    checksum = hashlib.sha1(body).digest()
    body += checksum
    entries.sort()
    counts = [0] * 256
    for raw, _, _ in entries:
        counts[raw[0]] += 1
    n = len(entries)
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    index += struct.pack(">256I", *itertools.accumulate(counts))  # fan-out: objects starting <= byte i
    index += b"".join(raw for raw, _, _ in entries)
    index += struct.pack(f">{n}I", *(crc & 0xFFFFFFFF for _, _, crc in entries))
    index += struct.pack(f">{n}I", *(offset for _, offset, _ in entries))
    index += checksum
    index += hashlib.sha1(index).digest()

    name = f"pack-{checksum.hex()}"
    pack, idx = pack_dir / f"{name}.pack", pack_dir / f"{name}.idx"
    write_replacing(pack, bytes(body), 0o444)
    try:
        write_replacing(idx, bytes(index), 0o444)
    except BaseException:  # (a full disk: no pack is left without its index)
        pack.unlink(missing_ok=True)
        raise
    return WrittenPack(name, pack, idx, bytes(body), bytes(index))


def write_replacing(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file whole under a temporary name, then rename it into place (no fsync)."""
    temp = path.with_name(f"tmp_{os.getpid()}_{path.name}")
    write_file(temp, data, mode, exclusive=False)  # (one a crash left behind is overwritten)
    os.replace(temp, path)


# Trees are stored uncompressed: mostly object ids, they shrink by some 15% at best, and compressing
# them was half the cost of writing a pack. A repack deltifies them against each other anyway.
_LEVELS: dict[int, int] = {pygit2.enums.ObjectType.TREE: 0}


def _entry_header(type_: int, size: int) -> bytes:
    """A pack entry's type and size: 3 type bits and 4 size bits, then 7 size bits a byte."""
    out = bytearray()
    byte = (type_ << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)
