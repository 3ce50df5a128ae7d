"""Exclusive locks between threads and processes: `flock` on a file of the data directory.

flock belongs to an open file description, so two threads of one process exclude each other as two
processes do, and the kernel drops it when its holder dies: such a lock is never stale. Every lock
the registry takes is one of these shapes: `held` (wait for it, for ever or up to a deadline),
`first` (take it only if nobody holds it: one worker of several does a job now) and `elected` (the
one worker of several that does a job for as long as it lives: the others wait to take over)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(path: Path, within: float | None = None, refused: Callable[[], Exception] | None = None) -> Iterator[int]:
    """The lock on ``path`` (made if missing), for the block; yields its file descriptor. Waits as long
    as it takes, or up to ``within`` seconds and then raises ``refused()`` (TimeoutError if none)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if within is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline, delay = time.monotonic() + within, 0.0005
            while not _took(fd):
                if time.monotonic() > deadline:
                    raise (refused() if refused else TimeoutError(f"{path} held for over {within:.0f} s")) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
        yield fd
    finally:
        os.close(fd)  # (releases the lock)


def first(path: Path) -> int | None:
    """The lock on ``path`` if nobody holds it (its file descriptor, held until closed), else None."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if _took(fd):
        return fd
    os.close(fd)
    return None


def elected(path: Path, stopping: threading.Event, retry: float) -> int | None:
    """The lock on ``path``, once this process is the one holding it (its file descriptor, held until
    closed), or None if ``stopping`` is set first. Meanwhile it tries again every ``retry`` seconds:
    when the holder dies, the kernel drops its lock and the next try of another worker takes over
    (the webhooks' deliverer, the server's retention runs: one per server across granian's workers)."""
    while True:
        fd = first(path)
        if fd is not None:
            return fd
        if stopping.wait(retry):
            return None


def _took(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
