"""Folding the ledger's packs together, at a cost that grows with what is folded, not with the ledger.

Every commit writes one small pack (see packs.py). `git repack --geometric=2 -d` would keep their
number down, but git 2.39 walks every tree reachable from the commits it folds (to name objects,
which orders its delta search): at 100,000 versions that is 0.85 s of CPU per fold, every few dozen
commits. So the packs to roll up are chosen exactly as git chooses them (the smallest, until the
rest form a geometric progression by object count), their objects are read from their indexes, and
`git pack-objects` packs that list as it stands, with no walk.

Unnamed, objects find fewer delta bases; so once a roll-up is big (GIT_ABOVE objects, some
thousands of commits), it is left to git after all: its walk is then rare, and it deltifies what
the small folds left whole.
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ..fsync import fsync_path

FACTOR = 2
GIT_ABOVE = 50_000  # objects in a roll-up from which git's own geometric repack does it
_IDX_MAGIC = b"\xfftOc\x00\x00\x00\x02"  # pack index, version 2
_SUFFIXES = (".bitmap", ".rev", ".pack", ".idx")  # .idx last: it makes a pack visible


class Pack(NamedTuple):
    name: str  # pack-<sha1>
    objects: int


def packs(pack_dir: Path) -> list[Pack]:
    """The packs a fold may take, smallest first: complete (indexed), version-2 indexes, neither
    kept nor cruft."""
    names = set(os.listdir(pack_dir))
    found = []
    for entry in names:
        if not (entry.startswith("pack-") and entry.endswith(".idx")):
            continue
        name = entry[:-4]
        if f"{name}.pack" not in names or any(f"{name}{x}" in names for x in (".keep", ".promisor", ".mtimes")):
            continue  # (kept packs, and cruft packs: git leaves those out of a geometric repack too)
        try:
            with open(pack_dir / entry, "rb") as fh:
                head = fh.read(8 + 256 * 4)
        except FileNotFoundError:  # deleted meanwhile (by a `git gc` run by hand)
            continue
        if len(head) == 8 + 256 * 4 and head[:8] == _IDX_MAGIC:
            found.append(Pack(name, struct.unpack_from(">I", head, 8 + 255 * 4)[0]))
    return sorted(found, key=lambda p: (p.objects, p.name))


def geometric_split(counts: Sequence[int], factor: int = FACTOR) -> int:
    """How many of the packs (object counts, ascending) to roll into one so that the rest and the
    new pack form a geometric progression: git's `split_pack_geometry`, weighed by object count."""
    if not counts:
        return 0
    i = len(counts) - 1
    while i > 0 and counts[i] >= factor * counts[i - 1]:
        i -= 1
    split = i + 1 if i else 0
    total = sum(counts[:split])
    while split < len(counts) and counts[split] < factor * total:
        total += counts[split]
        split += 1
    return split


def object_ids(idx: Path) -> bytes:
    """Every object id in a version-2 pack index, as hex lines (what `git pack-objects` reads)."""
    data = idx.read_bytes()
    count = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    names = data[8 + 256 * 4: 8 + 256 * 4 + 20 * count]
    return b"".join(names[i:i + 20].hex().encode() + b"\n" for i in range(0, len(names), 20))


def roll_up(pack_dir: Path) -> list[Pack]:
    """The packs a geometric repack would merge now (none, or at least two)."""
    found = packs(pack_dir)
    split = geometric_split([p.objects for p in found])
    return found[:split] if split >= 2 else []


def fold(repo: Path, victims: list[Pack], git_prefix: list[str], pass_fds: tuple[int, ...] = ()) -> None:
    """Pack the objects of ``victims`` into one new pack, then delete them. ``git_prefix`` runs git
    (niced, configured) in ``repo``."""
    pack_dir = repo / "objects" / "pack"
    listing = b"".join(object_ids(pack_dir / f"{p.name}.idx") for p in victims)
    # git writes the new pack under a temporary name, fsyncs it and its index (core.fsync), then
    # renames them into place and prints its hash.
    written = subprocess.run([*git_prefix, "pack-objects", "-q", "--delta-base-offset", str(pack_dir / "pack")],
                             input=listing, check=True, capture_output=True, pass_fds=pass_fds)
    new = {f"pack-{line}" for line in written.stdout.decode().split()}  # (several, with pack.packSizeLimit)
    fsync_path(pack_dir)  # the new pack's names last before the old ones go
    for p in victims:
        if p.name in new:  # (the same objects, packed the same way: it is a new pack)
            continue
        for suffix in _SUFFIXES:
            (pack_dir / f"{p.name}{suffix}").unlink(missing_ok=True)
