"""Distribution bytes, addressed by SHA-256. The ledger records hashes; this stores what they name.

Writes go to a `Staged` file (in memory while small), hashed as they are written; `BlobStore.adopt`
makes it durable and visible under its hash. The `BlobStore` protocol is all callers see: the
default `FileBlobStore` keeps blobs under the data directory (files.py), `S3BlobStore` in a bucket
of S3-compatible object storage (s3.py), chosen by `REGISTRY_BLOBS` (`open_store`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ..diskspace import DiskSpace
from ..errors import RegistryError
from ..fsync import Needed, fsync_path, write_file
from .files import FileBlobStore
from .missing import MissingBlobs
from .staged import SPOOL, Digests, Staged

if TYPE_CHECKING:
    from ..config import Settings
    from .s3 import S3BlobStore

__all__ = ["SPOOL", "BlobStore", "Digests", "FileBlobStore", "MissingBlobs", "Staged", "open_store"]


class BlobStore(Protocol):
    """Where distribution files are kept, by the SHA-256 of their content.

    ``sha256`` is 64 lowercase hex digits (a lookup of anything else is a ValueError). A blob is
    immutable: what is stored under a hash is those bytes or nothing, so storing it again is
    harmless. Every implementation is safe to use from many threads and from several processes
    on one data directory at once. A store that can't be reached raises `RegistryError` (503) in
    words; a full local disk is `DiskFull` (507); neither leaves anything a caller relies on.

    ``defer``: where a store that syncs files (like FileBlobStore) may leave what it still has to
    make durable (`Needed`), so that the caller syncs it together with other writes. Without it, a
    call returns only once its blob is durable. A store whose writes are durable when they return
    (S3) leaves nothing there, and is ``remote``: storing costs a round trip, so never on the
    event loop nor under the ledger's lock: a publish stores first (`placed`), then commits within
    it; the collector deletes what `held` gives it."""

    remote: bool  # storing costs a round trip (see above)
    staging: Path  # where incoming files spill, on local disk

    def stage(self, limit: int | None = None) -> Staged:
        """A new, empty `Staged` to write an incoming file into (it raises TooLarge past ``limit``
        bytes, DiskFull before the disk's floor); discard it (or use it as a context manager) unless
        it is adopted."""
        ...

    def adopt(self, staged: Staged, defer: list[Needed] | None = None) -> str:
        """Store ``staged``'s content (finishing it first) under its sha256, which it returns. Durable
        on return, unless the store left in ``defer`` what is still to sync. Safe to repeat, and to
        race with another upload of the same bytes. ``staged`` is not to be used again."""
        ...

    def placed(self, staged: Staged, wait: float) -> AbstractContextManager[None]:
        """A block to commit in, outside the ledger's lock: a remote store stores ``staged`` on entry
        (waiting up to ``wait`` s for another upload of the same bytes, then Busy), holds it against
        the collector through the block, and removes what it created if the block raises before
        `adopt`. A local store does nothing (it adopts under the lock)."""
        ...

    def held(self, shas: list[str]) -> AbstractContextManager[list[str]]:
        """Those of ``shas`` that no upload is storing now, kept from every upload until the block ends:
        what the collector may delete in it (all of them for a local store)."""
        ...

    def repair(self, staged: Staged) -> bool:
        """Store ``staged``'s content again if the stored copy is missing or not whole (durably, even
        over a torn copy); True if it had to."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` under its sha256, durably and atomically (readers see no blob or a whole
        one), outside the ledger's lock; returns the sha256."""
        ...

    def put_cache(self, data: bytes) -> str:
        """Store bytes derived from a blob (a cache): atomic, never synced, kept on local disk; returns
        the sha256. After a power cut it may be torn: readers check its hash."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a blob (or a cached one) is stored under ``sha256``."""
        ...

    def size(self, sha256: str) -> int:
        """The stored blob's size in bytes; FileNotFoundError if there is none."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The blob as a seekable binary file, to close after use; FileNotFoundError if there is none."""
        ...

    def read(self, sha256: str) -> bytes:
        """The whole blob; FileNotFoundError if there is none."""
        ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file on local disk (to send as it is), or None if it is not one."""
        ...

    async def open_stream(self, sha256: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``offset`` to ``offset + length`` of the blob, in chunks, without blocking the
        event loop; FileNotFoundError, before anything is sent, if there is none. A failure once
        streaming has begun ends the stream with the error (the client sees a short answer)."""
        ...

    def url(self, sha256: str, filename: str) -> str | None:
        """A URL a client may download the blob from directly (as ``filename``), or None: the
        registry serves it. No round trip."""
        ...

    def missing(self, sha256: str, what: str) -> RegistryError:
        """The 503 to raise for a blob the ledger references (as ``what``) and the store lacks: damage,
        said in words the operator can act on."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the blob (and a cached copy), durably; nothing if it is not there. The caller makes
        sure nothing needs it: the collector (under the ledger's lock for a local store, within `held`
        for a remote one), or a reader dropping a torn cache entry."""
        ...

    def list(self) -> Iterator[tuple[str, float]]:
        """Every stored blob, cached ones included: (sha256, when it was last stored, as a Unix time).
        Blobs stored meanwhile may or may not be listed."""
        ...

    def sweep_staging(self, older_than: float = 3600) -> int:
        """Remove what uploads older than ``older_than`` seconds left behind (killed mid-way); returns
        how many were removed."""
        ...

    def check(self) -> None:
        """Raise RegistryError (503), in words, if the store can't be used; nothing if it can."""
        ...

    async def aopen(self) -> None:
        """Prepare the running event loop's connections (at the app's start)."""
        ...

    async def aclose(self) -> None:
        """Close the running event loop's connections (at the app's shutdown)."""
        ...


def open_store(settings: Settings) -> BlobStore:
    """The store this data directory's blobs are in: its blobs/ by default, or the bucket
    `REGISTRY_BLOBS` names. The bucket is recorded in the data directory the first time, so that
    every command run on it (without the variable) uses it too, and no registry ever points at
    one place while its files are in another."""
    marker = settings.blobs_location_path
    recorded = recorded_location(settings)
    wanted = settings.blobs
    if wanted and recorded and _same(wanted) != _same(recorded):
        raise RegistryError(f"This registry's files are in {recorded} ({marker}), not in {wanted}: "
                            "unset REGISTRY_BLOBS, or set it to that.")
    if not wanted and not recorded:
        return FileBlobStore(settings.blobs_path, disk=DiskSpace(settings.data_path, settings.min_free_bytes))
    if wanted and not recorded and _holds_blobs(settings.blobs_path):
        raise RegistryError(f"This registry's files are in {settings.blobs_path}: move them to {wanted} first, "
                            f"with `registry blobs migrate --to {wanted}`.")
    store = bucket_store(settings, wanted or recorded)
    if not recorded:  # (only a bucket that answers is recorded: a typo must not stick)
        store.check()
        record_location(settings, str(store.location))
    return store


def bucket_store(settings: Settings, location: str) -> S3BlobStore:
    """The S3 store of ``location`` for this data directory (its staging, its metadata cache)."""
    from .s3 import S3BlobStore  # (botocore is imported only by registries that use it)

    return S3BlobStore.from_url(location, local=settings.s3_staging_path,
                                cache=settings.cache_path / "core-metadata", timeout=settings.blobs_timeout,
                                disk=DiskSpace(settings.data_path, settings.min_free_bytes))


def recorded_location(settings: Settings) -> str:
    """The bucket this data directory's blobs were moved to (`record_location`), or ""."""
    marker = settings.blobs_location_path
    return marker.read_text().strip() if marker.exists() else ""


def record_location(settings: Settings, location: str) -> None:
    """Record, durably and atomically, that this data directory's blobs are in ``location`` from now on."""
    marker = settings.blobs_location_path
    temp = marker.with_name(marker.name + ".tmp")
    write_file(temp, f"{location}\n".encode(), exclusive=False, sync=True)
    os.replace(temp, marker)
    fsync_path(marker.parent)


def _same(location: str) -> str:
    return location.rstrip("/") + "/"


def _holds_blobs(path: Path) -> bool:
    objects = path / "sha256"
    try:
        return any(any(os.scandir(d)) for d in os.scandir(objects) if d.is_dir())
    except FileNotFoundError:
        return False
