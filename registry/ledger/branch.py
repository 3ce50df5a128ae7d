"""`main`, the branch that is the registry's state, and the lock every writer takes to move it."""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2

from .. import locks
from ..errors import Busy

log = logging.getLogger("registry.ledger")
BRANCH = "main"
REF = f"refs/heads/{BRANCH}"
MOVES = "registry-moves"  # (beside the refs: see Moves)


class Locked(Busy):
    """Another writer held the write lock for longer than the caller would wait (maybe not at all)."""


class RefMoved(Exception):
    """The branch moved between reading it and updating it (an outside git wrote it)."""


class Branch:
    """The ref file of `main` in the repository at ``path``, and the write lock (a flock on
    `registry-write.lock`) that orders every writer of every process. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ref = path / REF  # (a loose ref: every move renames a new file into place)
        self._lock_path = path / "registry-write.lock"
        self.moves = Moves(path / MOVES)

    @contextmanager
    def write_lock(self, timeout: float) -> Iterator[None]:
        """Exclusive against every writer, in every process: transactions, recovery, checkpoints, the
        collector's deletions. Waits up to ``timeout`` seconds, then raises `Locked` (503). A writer
        killed while holding it releases it (the kernel drops its flock); its half-made ref lock is
        removed here."""
        def refused() -> Locked:
            return Locked(f"The ledger has been locked by another writer for over {timeout:.0f}s; try again.")

        with locks.held(self._lock_path, timeout, refused):
            self.clear_stale_lock()
            yield

    def move(self, repo: pygit2.Repository, expected: str | None, new: str) -> None:
        """Compare-and-swap of main, by git's own protocol: create `main.lock` exclusively (any
        git that respects ref locks now waits), check the branch still points at ``expected``
        (None: don't), then rename the lock over the ref. `RefMoved` if it points elsewhere;
        FileExistsError if another git holds the ref lock. Not synced here (see journal.py): the
        caller holds the write lock and has made the commit durable."""
        lock = self.ref.with_name(self.ref.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if expected is not None:
                try:
                    current = self.ref.read_text().strip()
                except FileNotFoundError:  # packed by an outside `git gc`
                    current = str(repo.lookup_reference(REF).target)
                if current != expected:
                    raise RefMoved(f"main is at {current[:12]}, not {expected[:12]}")
            data = f"{new}\n".encode()
            try:
                # Allocated up front, ext4 doesn't flush the file's data when it is renamed over the
                # old ref (its guard for renames of unsynced files), which costs more than the rest.
                os.posix_fallocate(fd, 0, len(data))
            except OSError:
                pass
            os.write(fd, data)
            os.close(fd)
            fd = -1
            os.rename(lock, self.ref)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise
        self.moves.moved()  # (before the caller acknowledges anything: every reader looks again)

    def clear_stale_lock(self) -> None:
        """Under the write lock: any git ref lock on main was left by a writer that died mid-update."""
        stale = self.path / f"{REF}.lock"
        if stale.exists():
            log.warning("removing stale %s left by a killed writer", stale)
            stale.unlink(missing_ok=True)


class Moves:
    """Eight bytes of memory shared by every process that opens the ledger (a map of the file
    `registry-moves`), which every move of main by this code changes, to random bytes, once the ref
    file is renamed into place and before the move is acknowledged. A reader that finds them as it
    last saw them knows main hasn't moved since, without asking the kernel: the stat of the ref that
    every index request made cost a worker 10% of its CPU (bench_pairs.py).

    A move that isn't this code's (git by hand, a restore into a ledger in use, the file deleted or
    unwritable) doesn't change them, so a reader also looks at the ref itself at least every RECHECK
    seconds. They are never synced, and needn't be: after a restart every reader starts from the ref.
    Readers map the file read-only and the writer writes it (a write that fails says so in an error,
    where a write into a map on a full disk would kill the process); its block is allocated when
    it is made. Where it can't be made, allocated or mapped, `seen` is None and readers look at the
    ref every time, as before."""

    RECHECK = 0.1  # seconds a reader goes on trusting unchanged bytes without looking at the ref

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # (a ledger this process may only read: it looks at the ref each time)
            return
        try:
            os.posix_fallocate(fd, 0, 8)  # (its block, now: writing it later needs no space; only ever grows it)
            self._map = mmap.mmap(fd, 8, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            self._map = None
        finally:
            os.close(fd)

    def seen(self) -> bytes | None:
        """The bytes as they are now (None: not shared here; look at the ref)."""
        return self._map[:8] if self._map is not None else None

    def moved(self) -> None:
        """Main has moved: change the bytes, for every process's readers. Never raises: main has
        moved already, and if the bytes can't be changed, readers see it within RECHECK."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, os.urandom(8), 0)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("could not tell other processes main moved (%s): they see it within %.1fs", exc,
                        self.RECHECK)
