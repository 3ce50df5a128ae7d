"""Distribution bytes, addressed by SHA-256. The ledger records hashes; this stores what they name.

Writes go to a `Staged` file (in memory while small), hashed as they are written; `BlobStore.adopt`
makes it durable and visible under its hash. The `BlobStore` protocol is all callers
see, so an S3-compatible store can stand beside `FileBlobStore` without touching them (it would
upload the staged content in `adopt`).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import TooLarge
from .fsync import fsync_all, fsync_path, write_file

SPOOL = 1 * 2**20  # an upload up to this size is staged in memory


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    blake2b_256: str
    md5: str


class Staged:
    """An incoming file: written once, hashed while written, then adopted or discarded.

    Up to ``spool`` bytes it stays in memory, so a small upload costs no file of its own before it
    is adopted; past that it spills to a file in the staging directory."""

    def __init__(self, directory: Path, limit: int | None = None, spool: int = SPOOL) -> None:
        self._directory = Path(directory)
        self.path: Path | None = None  # the staged file, once spilled
        self._file: BinaryIO | None = None
        self._buffer = bytearray()
        self._spool = spool
        self._limit = limit
        self._size = 0
        self._sha256 = hashlib.sha256()
        self._blake2b = hashlib.blake2b(digest_size=32)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.digests: Digests | None = None
        self.synced = False
        self._discarded = False

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            raise TooLarge(
                f"File too large: the limit is {self._limit} bytes ({self._limit / 2**20:.0f} MiB). "
                "Ask the registry operator to raise REGISTRY_MAX_UPLOAD_BYTES if this file is legitimate."
            )
        # hashlib releases the GIL for large buffers, so this is fine to run in a worker thread
        self._sha256.update(chunk)
        self._blake2b.update(chunk)
        self._md5.update(chunk)
        if self._file is None and self._size <= self._spool:
            self._buffer += chunk
            return
        if self._file is None:
            self.path = self._directory / f"incoming-{secrets.token_hex(12)}"
            self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
            self._file.write(self._buffer)
            self._buffer = bytearray()
        self._file.write(chunk)

    def finish(self, sync: bool = True) -> Digests:
        """Close the file and fix the digests. Idempotent. With ``sync=False`` the content is
        fsynced later, when it is adopted (with the commit that needs it), or never, if refused."""
        if self.digests is None:
            if self._file is not None:
                self._file.flush()
                if sync:
                    os.fsync(self._file.fileno())
                    self.synced = True
                self._file.close()
            self.digests = Digests(
                size=self._size,
                sha256=self._sha256.hexdigest(),
                blake2b_256=self._blake2b.hexdigest(),
                md5=self._md5.hexdigest(),
            )
        return self.digests

    @property
    def spilled(self) -> bool:
        return self.path is not None

    @property
    def in_memory(self) -> bytes | None:
        """The content, if it never left memory."""
        if self._discarded:
            raise RuntimeError("the staged content was discarded")
        return bytes(self._buffer) if self.path is None else None

    def open(self) -> BinaryIO:
        """The content, to read (once finished)."""
        return io.BytesIO(self._buffer) if self.path is None else open(self.path, "rb")

    def discard(self) -> None:
        self._discarded = True
        self._buffer = bytearray()
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()  # a no-op once adopted: the file has been renamed away


class BlobStore(Protocol):
    """``defer``: where a store that syncs files (like FileBlobStore) may leave the paths it still
    has to fsync, so that the caller syncs them together with other writes. Without it, a call
    returns only once its blob is durable."""

    def stage(self, limit: int | None = None) -> Staged: ...
    def adopt(self, staged: Staged, defer: list[Path] | None = None) -> str: ...
    def put_bytes(self, data: bytes, defer: list[Path] | None = None) -> str: ...
    def exists(self, sha256: str) -> bool: ...
    def size(self, sha256: str) -> int: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def read(self, sha256: str) -> bytes: ...
    def local_path(self, sha256: str) -> Path | None: ...
    def delete(self, sha256: str) -> None: ...
    def list(self) -> Iterator[tuple[str, float]]: ...


class FileBlobStore:
    """Blobs as files `sha256/ab/<hash>` under a directory; staging in the same filesystem.

    One fan-out level: 256 directories hold millions of files comfortably, and a new blob rarely
    needs a new directory (each of which costs a sync)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / "staging"
        self.objects = self.root / "sha256"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.objects.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.objects / sha256[:2] / sha256

    def stage(self, limit: int | None = None) -> Staged:
        return Staged(self.staging, limit)

    def adopt(self, staged: Staged, defer: list[Path] | None = None) -> str:
        """Make ``staged`` durable under its hash. Safe to repeat.

        A staged file is renamed into place, atomically; content staged in memory is written straight
        to its name, created exclusively (nothing reads a blob before a commit names it, and a
        commit names it only once written; a crash may tear it, see below). Content already stored
        is kept when it checks out, and replaced when it doesn't (a crash before its commit tore it).
        Either way the file is synced (or left in ``defer``): the commit now depends on it."""
        digests = staged.finish()  # (already finished and maybe synced: then this only returns the digests)
        target = self._path(digests.sha256)
        pending = defer if defer is not None else []
        if self._holds(target, digests.size, digests.sha256):
            staged.discard()
            os.utime(target)  # freshly wanted again: keeps the collector's grace period honest
            pending.append(target)
        else:
            _ensure_dir(target.parent, pending)
            data = staged.in_memory
            if data is None:
                os.replace(staged.path, target)
            else:
                try:
                    write_file(target, data, 0o600)  # (as a staged file would be)
                except FileExistsError:  # there, but torn
                    temp = self.staging / f"replacing-{secrets.token_hex(12)}"
                    write_file(temp, data, 0o600)
                    os.replace(temp, target)
            pending.append(target.parent)
            if not staged.synced:
                pending.append(target)
        if defer is None:
            fsync_all(pending)
        return digests.sha256

    @staticmethod
    def _holds(target: Path, size: int, sha256: str) -> bool:
        """Whether ``target`` holds the content whole: the same size, and (up to SPOOL bytes, where
        reading is cheap) the same hash."""
        try:
            if target.stat().st_size != size:
                return False
        except FileNotFoundError:
            return False
        return size > SPOOL or hashlib.sha256(target.read_bytes()).hexdigest() == sha256

    def put_bytes(self, data: bytes, defer: list[Path] | None = None) -> str:
        """Store ``data`` under its hash. Atomic, as it may run outside the ledger's lock (a cache
        being filled by two requests at once): readers see no file or a whole one."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self._path(sha256)
        pending = defer if defer is not None else []
        if self._holds(target, len(data), sha256):
            os.utime(target)
        else:
            _ensure_dir(target.parent, pending)
            temp = self.staging / f"incoming-{secrets.token_hex(12)}"
            write_file(temp, data, 0o600)
            os.replace(temp, target)
            pending.append(target.parent)
        pending.append(target)
        if defer is None:
            fsync_all(pending)
        return sha256

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        return open(self._path(sha256), "rb")

    def read(self, sha256: str) -> bytes:
        return self._path(sha256).read_bytes()

    def local_path(self, sha256: str) -> Path | None:
        path = self._path(sha256)
        return path if path.is_file() else None

    def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        path.unlink(missing_ok=True)
        fsync_path(path.parent)

    def list(self) -> Iterator[tuple[str, float]]:
        """Every stored blob with its mtime (when it was last stored)."""
        for fanout in sorted(self.objects.iterdir()):
            for f in fanout.iterdir():
                yield f.name, f.stat().st_mtime

    def sweep_staging(self, older_than: float = 3600) -> int:
        """Remove staged files a crashed upload left behind."""
        cutoff = time.time() - older_than
        removed = 0
        for f in self.staging.iterdir():
            if f.stat().st_mtime < cutoff:
                f.unlink(missing_ok=True)
                removed += 1
        return removed


def _ensure_dir(path: Path, pending: list[Path]) -> None:
    """mkdir -p; each new directory's parent must be fsynced for the new entry to survive a crash."""
    if path.is_dir():
        return
    _ensure_dir(path.parent, pending)
    try:
        path.mkdir()
    except FileExistsError:
        return
    pending.append(path.parent)
