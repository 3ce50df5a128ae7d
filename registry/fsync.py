"""Writing files whole, and making writes durable: fsync, of many files and directories at once.

A commit writes a dozen small files (a blob, the trees on its path, the commit, the ref, the
distribution and its metadata). Syncing them one after another costs a journal commit each;
syncing them concurrently lets the filesystem batch them, while every file is still fsynced.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked worker needs threads of its own
            _pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fsync")
            _pool_pid = os.getpid()
        return _pool


def write_file(path: str | Path, data: bytes | bytearray, mode: int = 0o644, *, exclusive: bool = True) -> None:
    """Create ``path`` holding ``data`` (not synced). ``exclusive``: FileExistsError if it exists;
    otherwise an existing file is truncated and overwritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC), mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def fsync_path(path: str | Path, missing_ok: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.fsync(fd)
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
    for future in [_executor().submit(fsync_path, p, missing_ok) for p in unique]:
        future.result()
