"""Writing files whole, and making writes durable: fsync, of many files and directories at once.

Every sync the registry makes goes through here, so that what it makes durable can be watched:
the suite's power-loss test (tests/support/powerloss.py) registers an observer that learns, sync by sync,
what a disk would keep at a power cut (data by a file's fsync, names by their directory's).

A commit writes a dozen small files (a blob, the trees on its path, the commit, the ref, the
distribution and its metadata). Syncing them one after another costs a journal commit each;
syncing them concurrently lets the filesystem batch them, while every file is still fsynced.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, Protocol

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


class Observer(Protocol):
    def batch(self) -> int:
        """An id for syncs issued at once, which may complete in any order."""

    def synced(self, fd: int, batch: int | None = None) -> None:
        """``fd`` (still open) was just fsynced: its data, or a directory's listing, is durable."""


_observer: Observer | None = None


@contextmanager
def observed(observer: Observer) -> Iterator[Observer]:
    """Tell ``observer`` of every sync made until the block ends (tests)."""
    global _observer
    previous, _observer = _observer, observer
    try:
        yield observer
    finally:
        _observer = previous


class Needed(NamedTuple):
    """A file outside git that a commit depends on, and what it must hold."""

    path: Path
    size: int
    sha256: str
    durable: bool = False  # its data is synced already (its name may not be)

    def make_durable(self) -> None:
        """Its data and its name (the directories above its own are the caller's to keep durable)."""
        fsync_all([self.path.parent] if self.durable else [self.path, self.path.parent])


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked worker needs threads of its own
            _pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fsync")
            _pool_pid = os.getpid()
        return _pool


def write_file(path: str | Path, data: bytes | bytearray, mode: int = 0o644, *, exclusive: bool = True,
               sync: bool = False) -> None:
    """Create ``path`` holding ``data``. ``exclusive``: FileExistsError if it exists; otherwise an
    existing file is truncated and overwritten. ``sync``: its data is durable on return (its name
    is not: that takes its directory's fsync). If writing fails, ``path`` is removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC), mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            fsync_fd(fd)
    except BaseException:  # (a full disk, say: no file half-written is left under its name)
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def fsync_fd(fd: int, batch: int | None = None) -> None:
    """fsync ``fd``: its data and metadata (a directory's: its listing) are durable on return."""
    os.fsync(fd)
    if _observer is not None:
        _observer.synced(fd, batch)


def fdatasync_fd(fd: int) -> None:
    """fdatasync ``fd``: its data (and its size) are durable on return."""
    os.fdatasync(fd)
    if _observer is not None:
        _observer.synced(fd)


def fsync_path(path: str | Path, missing_ok: bool = False, batch: int | None = None) -> None:
    """fsync the file or directory at ``path``; FileNotFoundError if it is not there, unless ``missing_ok``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        fsync_fd(fd, batch)
    finally:
        os.close(fd)


def fsync_all(paths: Iterable[str | Path], missing_ok: bool = False) -> None:
    """fsync every path (files and directories), concurrently; return when all are durable.
    ``missing_ok``: a path that no longer exists needs nothing (a repack folded a pack away)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    if len(unique) <= 1:
        for path in unique:
            fsync_path(path, missing_ok)
        return
    batch = _observer.batch() if _observer is not None else None
    for future in [_executor().submit(fsync_path, p, missing_ok, batch) for p in unique]:
        future.result()


def make_dirs(path: str | Path) -> None:
    """mkdir -p, durably: each directory this creates is fsynced into its parent. Then the
    directory and its parent are synced anyway: a directory made by someone who didn't (an older
    release, a crash before its sync) is durable after this too. Cheap enough for start-up."""
    path = Path(path).absolute()
    missing = []
    for p in (path, *path.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            pass
    fsync_all({path, path.parent, *(p.parent for p in missing)})
