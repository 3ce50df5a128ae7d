"""An incoming file, hashed while it is written (`Staged`), and its digests."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..diskspace import DiskSpace, disk_full, met
from ..errors import TooLarge, size
from ..fsync import fsync_fd, fsync_path

SPOOL = 1 * 2**20  # an upload up to this size is staged in memory
CHECK_EVERY = 8 * 2**20  # bytes staged between two looks at the disk's free space (one statvfs)


@dataclass(frozen=True)
class Digests:
    """A finished file's size and hashes (hex): what a distribution's record holds."""

    size: int
    sha256: str
    blake2b_256: str
    md5: str


class Staged:
    """An incoming file: written once, hashed while written, then adopted or discarded.

    Up to ``spool`` bytes it stays in memory, so a small upload costs no file of its own before it
    is adopted; past that it spills to a file in the staging directory. Used by one thread at a
    time; as a context manager it is discarded at the end of the block (a no-op once adopted)."""

    def __init__(self, directory: Path, limit: int | None = None, spool: int = SPOOL,
                 disk: DiskSpace | None = None) -> None:
        self._directory = Path(directory)
        self._disk = disk  # (an upload is refused, 507, once it would leave less than its floor free)
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

    def expect(self, sha256: str) -> None:
        """The sha256 the sender says the content will have, before it arrives (a hint: a store that
        uploads as it receives can then send it straight to its address; checked when finished)."""

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``, hashing it. TooLarge (413) once past the limit; DiskFull (507) if the disk
        would be left with less than its floor free, or is full. Either way the caller discards it."""
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            raise TooLarge(
                f"File too large: the limit is {size(self._limit)}. "
                "Ask the registry operator to raise REGISTRY_MAX_UPLOAD_BYTES if this file is legitimate."
            )
        # hashlib releases the GIL for large buffers, so this is fine to run in a worker thread
        self._sha256.update(chunk)
        self._blake2b.update(chunk)
        self._md5.update(chunk)
        if self._file is None and self._size <= self._spool:
            self._buffer += chunk
            return
        crossed = self._size // CHECK_EVERY != (self._size - len(chunk)) // CHECK_EVERY
        if self._disk is not None and (self._file is None or crossed):
            self._disk.check(upload=True)
        try:
            if self._file is None:
                self.path = self._directory / f"incoming-{secrets.token_hex(12)}"
                self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
                self._file.write(self._buffer)
                self._buffer = bytearray()
            self._file.write(chunk)
        except OSError as exc:
            if disk_full(exc):  # (its file is removed on discard)
                raise met(exc) from None
            raise

    def finish(self, sync: bool = True) -> Digests:
        """Close the file and fix the digests. Idempotent. With ``sync=False`` the content is
        fsynced later, when it is adopted (with the commit that needs it), or never, if refused."""
        if self.digests is None:
            if self._file is not None:
                try:
                    self._file.flush()
                except OSError as exc:
                    if disk_full(exc):
                        raise met(exc) from None
                    raise
                if sync:
                    fsync_fd(self._file.fileno())
                    self.synced = True
                self._file.close()
            self.digests = Digests(
                size=self._size,
                sha256=self._sha256.hexdigest(),
                blake2b_256=self._blake2b.hexdigest(),
                md5=self._md5.hexdigest(),
            )
        return self.digests

    def make_durable(self) -> None:
        """Sync a spilled file's data now (before taking the ledger's lock, so a commit that
        depends on it doesn't wait for it). Content in memory is made durable by its commit."""
        if self.path is not None and not self.synced:
            fsync_path(self.path)
            self.synced = True

    @property
    def spilled(self) -> bool:
        """Whether the content went to a file (`path`)."""
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
        """Drop the content and remove its file, if it is still there. Idempotent."""
        self._discarded = True
        self._buffer = bytearray()
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except OSError:  # (what it still buffered met a full disk: the file goes anyway)
                pass
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()  # a no-op once adopted: the file has been renamed away
