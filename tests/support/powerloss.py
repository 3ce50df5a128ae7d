"""A disk that keeps only what was made durable: the power-loss model behind test_powerloss.py.

Every sync the registry makes goes through `registry.fsync`; a `Disk` observes them and learns,
sync by sync, what a disk kept under the strictest reading of POSIX would hold after a power cut
(the model of lossyfs, LazyFS and SQLite's crash-test VFS): a file's data once that file is
fsynced, a directory's entries once that directory is. Names and inodes are kept apart, so a
synced file whose name never was is gone, and a durable name whose data never was comes back
empty. Syncs issued together (`fsync_all`) may complete in any order, so a cut may fall after any
subset of them. `image(state, dest)` writes the disk as it would be after a cut into a directory.

The registry runs on the real disk meanwhile; only the observation is modelled. git, run as a
subprocess to fold packs, syncs what it writes itself (core.fsync): `trust_new_files` tells the
model so.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from registry import fsync


@dataclass(frozen=True)
class Node:
    is_dir: bool
    mode: int
    data: bytes = b""  # a file's durable content
    entries: tuple[tuple[str, int, bool], ...] = ()  # a directory's durable listing: (name, inode, is a directory)


@dataclass(frozen=True)
class Event:
    batch: int | None  # events of one batch may complete in any order
    inode: int
    node: Node


@dataclass
class Disk:
    root: Path
    events: list[Event] = field(default_factory=list)
    marks: list[tuple[int, object]] = field(default_factory=list)  # (events so far, what was acknowledged)
    _base: dict[int, Node] = field(default_factory=dict)
    _held: dict[int, int] = field(default_factory=dict)  # inode -> an fd kept open, so the number isn't reused
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _batches: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root_inode = os.stat(self.root).st_ino
        for dirpath, dirnames, filenames in os.walk(self.root):  # what is there now counts as durable
            for name in (".", *dirnames, *filenames):
                path = Path(dirpath) / name
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                inode = self._hold(fd)
                self._base[inode] = self._node(fd, path)
                if name != ".":
                    os.close(fd)

    # --- the observer registry.fsync calls -----------------------------------------------------

    def batch(self) -> int:
        return next(self._batches)

    def synced(self, fd: int, batch: int | None = None) -> None:
        node = self._node(fd, Path(f"/proc/self/fd/{fd}"))
        inode = self._hold(fd)
        with self._lock:
            self.events.append(Event(batch, inode, node))

    def trust_new_files(self, directory: Path, before: set[str]) -> None:
        """Files a subprocess created in ``directory`` and synced itself (their names are not)."""
        for name in sorted(set(os.listdir(directory)) - before):
            fd = os.open(directory / name, os.O_RDONLY)
            try:
                self.synced(fd)
            finally:
                os.close(fd)

    def acknowledged(self, what: object) -> None:
        with self._lock:
            self.marks.append((len(self.events), what))

    def close(self) -> None:
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()

    # --- what a cut leaves -----------------------------------------------------------------------

    def cuts(self, rng: random.Random, per_batch: int = 12):
        """Every state a cut can leave, as (events fully done, extra events of the batch in flight):
        after each sync, and within each batch after any subset of it (all of a small batch's
        subsets; for a big one, each sync alone, each left out alone, and some at random)."""
        i, n = 0, len(self.events)
        yield 0, ()
        while i < n:
            j = i + 1
            while self.events[i].batch is not None and j < n and self.events[j].batch == self.events[i].batch:
                j += 1
            group = list(range(i, j))
            if len(group) > 1:
                if len(group) <= 4:
                    subsets = [s for r in range(1, len(group)) for s in itertools.combinations(group, r)]
                else:
                    subsets = [(g,) for g in group] + [tuple(x for x in group if x != g) for g in group]
                    subsets = rng.sample(subsets, min(per_batch, len(subsets)))
                    subsets += [tuple(sorted(rng.sample(group, rng.randrange(1, len(group))))) for _ in range(4)]
                for subset in dict.fromkeys(subsets):
                    yield i, subset
            yield j, ()
            i = j

    def acknowledged_by(self, done: int) -> list:
        """What had been acknowledged when the first ``done`` events were durable (an
        acknowledgement follows its syncs, so a cut inside a batch acknowledges nothing of it)."""
        return [what for count, what in self.marks if count <= done]

    def image(self, done: int, extra: tuple[int, ...], dest: Path) -> Path:
        """Write the disk as a cut leaves it into ``dest`` (made here)."""
        nodes = dict(self._base)
        for k in (*range(done), *extra):
            event = self.events[k]
            nodes[event.inode] = event.node
        self._write(nodes, self.root_inode, True, Path(dest), set())
        return Path(dest)

    def _write(self, nodes: dict[int, Node], inode: int, is_dir: bool, path: Path, seen: set[int]) -> None:
        node = nodes.get(inode)  # None: named durably, never synced itself
        if not is_dir:
            path.write_bytes(node.data if node else b"")  # (a name whose data was never synced: empty)
            os.chmod(path, stat.S_IMODE(node.mode) if node else 0o644)
            return
        path.mkdir()
        seen.add(inode)
        for name, child, child_is_dir in node.entries if node else ():
            if child not in seen:  # (a directory renamed into itself can't be)
                self._write(nodes, child, child_is_dir, path / name, seen)

    # --- helpers ---------------------------------------------------------------------------------

    def _hold(self, fd: int) -> int:
        inode = os.fstat(fd).st_ino
        with self._lock:
            if inode not in self._held:
                self._held[inode] = os.dup(fd)
        return inode

    def _node(self, fd: int, path: Path) -> Node:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            with open(f"/proc/self/fd/{fd}", "rb") as fh:  # (fd may be write-only)
                return Node(False, st.st_mode, fh.read())
        entries = []
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_symlink():
                    continue
                child = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    entries.append((entry.name, self._hold(child), entry.is_dir(follow_symlinks=False)))
                finally:
                    os.close(child)
        return Node(True, st.st_mode, entries=tuple(sorted(entries)))


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def observe(disk: Disk):
    return fsync.observed(disk)
