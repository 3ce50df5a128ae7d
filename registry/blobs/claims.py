"""Claims on objects of a bucket: one writer at a time per object, across the processes of a data directory.

A publish stores its object in the bucket *before* it takes the ledger's lock (a bucket is a round
trip away, and may stall: the lock must never wait on it), so the lock no longer orders what
happens to one object. A claim does, per object: a publish holds its object's claim from the
conditional request that makes it visible until its commit has landed (or until it has removed
what it made, if the commit didn't), and the collector holds the claims of what it deletes. So
two uploads of the same bytes never complete at once (some stores check If-None-Match on
CompleteMultipartUpload non-atomically), and the collector never deletes an object between the
request that found it there and the commit that references it.

A claim is an flock on `claims/<sha256>`: the kernel drops it when its process dies, so no claim
is ever stale; the file is removed by whoever releases it (a waiter that then holds a removed file
sees so, and tries again), and one a killed holder left by the background sweep.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Busy
from ..fsync import make_dirs


class Claims:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        make_dirs(self.directory)

    @contextmanager
    def hold(self, sha256: str, wait: float) -> Iterator[None]:
        """The claim on ``sha256``, waiting up to ``wait`` seconds for whoever holds it."""
        fd = self._take(sha256, time.monotonic() + wait)
        if fd is None:
            raise Busy(f"Another upload of the same file ({sha256}) has been under way for over {wait:.0f}s; "
                       "nothing was changed: try again.")
        try:
            yield
        finally:
            self._release(sha256, fd)

    @contextmanager
    def held(self, shas: list[str]) -> Iterator[list[str]]:
        """The claims of those of ``shas`` nobody holds now (the others are skipped)."""
        taken: dict[str, int] = {}
        try:
            for sha in shas:
                fd = self._take(sha, None)
                if fd is not None:
                    taken[sha] = fd
            yield list(taken)
        finally:
            for sha, fd in taken.items():
                self._release(sha, fd)

    def sweep(self, older_than: float = 3600) -> None:
        """Remove the files of claims whose holder was killed (none holds them now)."""
        cutoff = time.time() - older_than
        for f in self.directory.iterdir():
            try:
                stale = f.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            fd = self._take(f.name, None) if stale else None
            if fd is not None:
                self._release(f.name, fd)

    def _take(self, sha256: str, deadline: float | None) -> int | None:
        path = self.directory / sha256
        delay = 0.001
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if deadline is None or time.monotonic() > deadline:
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # (its holder removed it as we took it: take the new one)

    def _release(self, sha256: str, fd: int) -> None:
        try:
            os.unlink(self.directory / sha256)
        except FileNotFoundError:
            pass
        os.close(fd)
