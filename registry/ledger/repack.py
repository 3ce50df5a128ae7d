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

import logging
import os
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from .. import locks
from ..fsync import fsync_path
from .packs import write_replacing

log = logging.getLogger("registry.ledger")
PACK_LIMIT = 48  # packs before a (geometric, background) repack folds them
LOOSE_LIMIT = 6700  # loose objects (git's own gc.auto) before a repack packs them
RELIST_SECONDS = 10.0  # how long the repack mark alone answers "were packs deleted?" (see PackWatch)

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


class Repacker:
    """Folds the packs of the ledger at ``path`` together, with git itself. Thread-safe; one repack
    at a time across processes (`lock`), and never in the way of writers or readers: a repack only
    deletes packs whose every object is in the pack it wrote, and readers notice (PackWatch)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = path / "registry-repacked"  # rewritten after every repack (see PackWatch)
        self.running = threading.Lock()  # held while this process repacks in the background

    def packs(self) -> set[str]:
        """The names of the pack files there are now."""
        # (not git's temporary `tmp_*` files: one seen and then renamed must not look like a deletion)
        return {n for n in os.listdir(self.path / "objects" / "pack") if n.startswith("pack-") and n.endswith(".pack")}

    def loose_objects_estimate(self) -> int:
        """Like `git gc --auto`: count one fan-out directory and scale up."""
        try:
            return len(os.listdir(self.path / "objects" / "17")) * 256
        except FileNotFoundError:
            return 0

    def pack_count(self) -> int:
        """How many packs there are (what every lookup of an object may have to consult)."""
        return sum(1 for e in os.scandir(self.path / "objects" / "pack") if e.name.endswith(".pack"))

    def repack(self, *, full: bool = False, yielding: bool = False) -> None:
        """Fold packs together, with git itself; returns when done (waiting for a repack under way).

        Default: geometric, cheap: only the small packs are rewritten (see repack.py), and loose
        objects (libgit2 never packs them) once they pile up. `full`: one pack, and unreachable
        objects older than an hour pruned. ``yielding``: git runs niced. Never blocks writers: git
        fsyncs the packs it writes before the ones they replace are deleted. Nothing if git is not
        installed (logged); CalledProcessError if git fails (the ledger is whole either way)."""
        git = shutil.which("git")
        if git is None:
            log.warning("git is not installed: the ledger's packs can't be folded together")
            return
        with self.lock() as fd:
            # In the background it runs niced: on a small machine it would otherwise take CPU from
            # the very requests whose commits it folds. git fsyncs the packs it writes before
            # deleting the ones they replace. It inherits the lock: a repack outliving a killed
            # registry process still excludes the next.
            nice = shutil.which("nice") if yielding else None
            prefix = [*([nice, "-n", "10"] if nice else []), git, "-C", str(self.path),
                      "-c", "core.fsync=objects,derived-metadata,reference", "-c", "core.fsyncMethod=fsync"]
            try:
                if full:
                    subprocess.run([*prefix, "repack", "-a", "-d", "-q"], check=True, pass_fds=(fd,))
                    subprocess.run([*prefix, "prune", "--expire=1.hour.ago"], check=True, pass_fds=(fd,))
                    return
                victims = roll_up(self.path / "objects" / "pack")
                if self.loose_objects_estimate() >= LOOSE_LIMIT or sum(p.objects for p in victims) >= GIT_ABOVE:
                    subprocess.run([*prefix, "repack", "-d", "-q", "--geometric=2"], check=True, pass_fds=(fd,))
                elif victims:
                    fold(self.path, victims, prefix, pass_fds=(fd,))
            finally:  # (even a failed repack may have deleted packs)
                write_replacing(self.mark, f"{time.time_ns()}\n".encode())

    @contextmanager
    def lock(self) -> Iterator[int]:
        """Held by whoever folds or deletes packs (one at a time, across processes), and by whoever
        must see them hold still (`git fsck`). Yields the lock's file descriptor."""
        with locks.held(self.path / "registry-repack.lock") as fd:
            yield fd

    def maybe_repack(self, pack_limit: int = PACK_LIMIT, loose_limit: int = LOOSE_LIMIT,
                     background: bool = False) -> bool:
        """Repack when packs or loose objects pile up (as `git gc --auto` would): every lookup
        of an object consults each pack's index until it is found. True if a repack was made (or,
        ``background``, started in a thread: False while one of this process is under way)."""
        if self.pack_count() < pack_limit and self.loose_objects_estimate() < loose_limit:
            return False
        if background:
            if not self.running.acquire(blocking=False):
                return False

            def run() -> None:
                try:
                    self.repack(yielding=True)
                except Exception:
                    log.exception("background repack failed")
                finally:
                    self.running.release()

            threading.Thread(target=run, name="ledger-repack", daemon=True).start()
        else:
            self.repack(yielding=True)
        return True


class PackWatch:
    """Tells when a repository may hold packs that have since been deleted (see `_forget_repacked`).

    Listing the pack directory on every commit costs more than it seems (a directory that has seen
    thousands of packs come and go stays large). Every repack rewrites a mark instead: once it has
    changed, the repository is suspect. A `git gc` run by hand leaves no mark, so the directory is
    listed now and then too, and a pack listed before and gone now also makes it suspect."""

    __slots__ = ("_repacker", "_mark", "_seen", "_listed")

    def __init__(self, repacker: Repacker) -> None:
        self._repacker = repacker
        self._mark = self._read_mark()
        self._seen = repacker.packs()
        self._listed = time.monotonic()

    def _read_mark(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._repacker.mark)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def gone(self) -> bool:
        """Whether packs may have been deleted since it was made: its repository is then to be
        replaced (and the watch with it)."""
        if self._read_mark() != self._mark:
            return True
        if time.monotonic() - self._listed < RELIST_SECONDS:
            return False
        now, self._listed = self._repacker.packs(), time.monotonic()
        gone = not self._seen <= now
        self._seen = now
        return gone


