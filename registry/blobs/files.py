"""`FileBlobStore`: blobs as files under the data directory, made durable with the ledger's commits."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import anyio

from .. import metrics
from ..diskspace import DiskSpace
from ..errors import RegistryError
from ..fsync import Needed, fsync_path, make_dirs, write_file
from .staged import SPOOL, Staged

CHUNK = 256 * 1024  # what a download reads at a time
_SHA256 = re.compile(r"[0-9a-f]{64}")


class FileBlobStore:
    """Blobs as files `sha256/ab/<hash>` under a directory; staging in the same filesystem.

    One fan-out level: 256 directories hold millions of files comfortably. All 256 are made, and
    made durable, when the store is opened: a blob's name is then durable once its own directory
    is synced, whoever created that directory (a cache write, another process, an older release).

    Safe for any number of threads and processes at once: every write is a rename or an exclusive
    create of a whole file. The contract of each method is `BlobStore`'s (blobs/__init__.py)."""

    remote = False  # adopting costs no round trip: a small upload may commit on the event loop

    def __init__(self, root: Path, disk: DiskSpace | None = None) -> None:
        self.root = Path(root)
        self.disk = disk  # (uploads staged here are refused before they fill it)
        self.staging = self.root / "staging"
        self.objects = self.root / "sha256"
        make_dirs(self.staging)
        make_dirs(self.objects)
        present = set(os.listdir(self.objects))
        for fanout in (f"{i:02x}" for i in range(256)):
            if fanout not in present:
                try:
                    os.mkdir(self.objects / fanout)
                except FileExistsError:  # another process opening the store (a granian worker) made it first
                    pass
        fsync_path(self.objects)  # (every start: also what an earlier process created and never synced)

    def _path(self, sha256: str) -> Path:
        if _SHA256.fullmatch(sha256) is None:  # (every read and write of a blob names it: one match, not 64 tests)
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.objects / sha256[:2] / sha256

    def stage(self, limit: int | None = None) -> Staged:
        """A `Staged` spilling into staging/, on the same filesystem (adopting it is a rename)."""
        return Staged(self.staging, limit, disk=self.disk)

    @metrics.blob_timed("files", "storing")
    def adopt(self, staged: Staged, defer: list[Needed] | None = None) -> str:
        """Put ``staged`` under its hash, durably (or, with ``defer``, say there what is left to
        sync: the commit that records it makes it durable first). Safe to repeat.

        A staged file is renamed into place, atomically, over whatever is there (a copy torn by a
        crash before its commit would otherwise have to be read whole to be found out); content
        staged in memory is written straight to its name, created exclusively (nothing reads a blob
        before a commit names it), unless a whole copy is there already."""
        digests = staged.finish()  # (already finished and maybe synced: then this only returns the digests)
        target = self._path(digests.sha256)
        _ensure_dir(target.parent)
        data = staged.in_memory
        if data is None:
            assert staged.path is not None, "content not in memory was spilled to a file"
            durable = staged.synced
            os.replace(staged.path, target)
        elif self._holds(target, digests.size, digests.sha256):
            staged.discard()
            os.utime(target)  # freshly wanted again: keeps the collector's grace period honest
            durable = False  # (whole, but maybe only in the page cache: the commit's record carries it)
        else:
            durable = False
            try:
                write_file(target, data, 0o600)  # (as a staged file would be)
            except FileExistsError:  # there, but torn
                temp = self.staging / f"replacing-{secrets.token_hex(12)}"
                write_file(temp, data, 0o600)
                os.replace(temp, target)
        needed = Needed(target, digests.size, digests.sha256, durable)
        if defer is None:
            needed.make_durable()
        else:
            defer.append(needed)
        return digests.sha256

    @contextmanager
    def placed(self, staged: Staged, wait: float) -> Iterator[None]:
        """Nothing before the commit: a file is adopted under the ledger's lock (`adopt`, in the
        commit's build), where it costs no round trip and is synced with the commit."""
        yield

    @contextmanager
    def held(self, shas: list[str]) -> Iterator[list[str]]:
        """All of them: files are deleted under the ledger's lock, as they are adopted."""
        yield list(shas)

    def repair(self, staged: Staged) -> bool:
        """Replace a stored copy of ``staged``'s content that is missing or not whole (damage a
        crash recovery reported), durably; True if it had to. A client re-sending the same file
        is the cheapest way back from such damage."""
        digests = staged.finish()
        target = self._path(digests.sha256)
        if _hashes_to(target, digests.size, digests.sha256):
            return False
        self.adopt(staged)
        return True

    @staticmethod
    def _holds(target: Path, size: int, sha256: str) -> bool:
        """Whether ``target`` holds the content whole (read only when small: cheap)."""
        return size <= SPOOL and _hashes_to(target, size, sha256)

    @metrics.blob_timed("files", "storing")
    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` under its hash, durably. Atomic, as it may run outside the ledger's lock:
        readers see no file or a whole one."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self._path(sha256)
        if self._holds(target, len(data), sha256):
            os.utime(target)
            fsync_path(target)
            return sha256
        _ensure_dir(target.parent)
        temp = self.staging / f"incoming-{secrets.token_hex(12)}"
        write_file(temp, data, 0o600, sync=True)
        os.replace(temp, target)
        fsync_path(target.parent)
        return sha256

    def put_cache(self, data: bytes) -> str:
        """Store bytes derived from a blob (a cache, rebuilt at will): atomic, never synced. A later
        sync of its directory may make its name durable without its data, so after a power cut it
        may be there but torn: whoever reads a cached blob checks its hash (and verify knows)."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self._path(sha256)
        if not self._holds(target, len(data), sha256):
            _ensure_dir(target.parent)
            temp = self.staging / f"incoming-{secrets.token_hex(12)}"
            write_file(temp, data, 0o600)
            os.replace(temp, target)
        return sha256

    def exists(self, sha256: str) -> bool:
        """Whether its file is there (whole or not: `repair` and verify look closer)."""
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        """Its file's size; FileNotFoundError if there is none."""
        return self._path(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        """Its file, open to read; FileNotFoundError if there is none."""
        return open(self._path(sha256), "rb")

    @metrics.blob_timed("files", "reading")
    def read(self, sha256: str) -> bytes:
        """Its file's bytes; FileNotFoundError if there is none."""
        return self._path(sha256).read_bytes()

    def local_path(self, sha256: str) -> Path | None:
        """Its file, or None if there is none."""
        path = self._path(sha256)
        return path if path.is_file() else None

    async def open_stream(self, sha256: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """Its bytes ``offset`` to ``offset + length``, read in CHUNKs by a worker thread;
        FileNotFoundError, before anything is read, if there is none."""
        path = self._path(sha256)
        if not path.is_file():
            raise FileNotFoundError(path)
        return _chunks(path, offset, length)

    def url(self, sha256: str, filename: str) -> str | None:
        """None: the registry serves its files itself."""
        return None  # (served by the registry itself)

    def missing(self, sha256: str, what: str) -> RegistryError:
        """The 503 for a referenced file the store lacks: what it is, and what the operator does."""
        return RegistryError(f"The content of {what} is missing from the blob store (blobs/sha256/{sha256[:2]}/"
                             f"{sha256}): the ledger records it, the store doesn't hold it. Nothing is wrong with "
                             "this request; the registry's operator must put it back (from a backup of blobs/, or "
                             "by uploading the same file again); `registry verify` lists every missing file.",
                             status=503)

    def check(self) -> None:
        """Nothing to check: the directory was made (or found) when the store was opened."""

    async def aopen(self) -> None:
        """Nothing to open."""

    async def aclose(self) -> None:
        """Nothing to close."""

    @metrics.blob_timed("files", "deleting")
    def delete(self, sha256: str) -> None:
        """Unlink its file and sync its directory; nothing if it is not there."""
        path = self._path(sha256)
        path.unlink(missing_ok=True)
        fsync_path(path.parent)

    def list(self) -> Iterator[tuple[str, float]]:
        """Every stored blob with its mtime (when it was last stored), by fan-out directory."""
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


async def _chunks(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    """One hop to a worker thread a chunk read (each hop to a thread and back costs a worker more
    CPU than reading a chunk from the page cache: opening, seeking and closing in hops of their own
    quadrupled a small file's cost). Opened and closed here, as the store's files are stat'ed: a
    descriptor opened in a thread whose caller was cancelled meanwhile would never be closed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        while length > 0:
            chunk = await anyio.to_thread.run_sync(os.pread, fd, min(CHUNK, length), offset)
            if not chunk:
                break
            offset += len(chunk)
            length -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


def _hashes_to(path: Path, size: int, sha256: str) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(2**20):
                digest.update(chunk)
    except FileNotFoundError:
        return False
    return digest.hexdigest() == sha256


def _ensure_dir(path: Path) -> None:
    """A fan-out directory deleted since the store was opened (by hand) is made again, durably."""
    if not path.is_dir():
        make_dirs(path)
