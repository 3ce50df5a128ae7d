"""`main`, the branch that is the registry's state, and the lock every writer takes to move it."""

from __future__ import annotations

import logging
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

    def clear_stale_lock(self) -> None:
        """Under the write lock: any git ref lock on main was left by a writer that died mid-update."""
        stale = self.path / f"{REF}.lock"
        if stale.exists():
            log.warning("removing stale %s left by a killed writer", stale)
            stale.unlink(missing_ok=True)
