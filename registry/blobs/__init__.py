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

__all__ = ["SPOOL", "BlobStore", "Digests", "FileBlobStore", "MissingBlobs", "Staged", "open_store"]


class BlobStore(Protocol):
    """``defer``: where a store that syncs files (like FileBlobStore) may leave what it still has to
    make durable (`Needed`), so that the caller syncs it together with other writes. Without it, a
    call returns only once its blob is durable. A store whose writes are durable when they return
    (S3) leaves nothing there, and is ``remote``: storing costs a round trip, so never on the
    event loop nor under the ledger's lock: a publish stores first (`placed`), then commits within
    it; the collector deletes what `held` gives it."""

    remote: bool
    staging: Path  # where incoming files spill, on local disk

    def stage(self, limit: int | None = None) -> Staged: ...
    def adopt(self, staged: Staged, defer: list[Needed] | None = None) -> str: ...
    def placed(self, staged: Staged, wait: float) -> AbstractContextManager[None]: ...
    def held(self, shas: list[str]) -> AbstractContextManager[list[str]]: ...
    def repair(self, staged: Staged) -> bool: ...
    def put_bytes(self, data: bytes) -> str: ...
    def put_cache(self, data: bytes) -> str: ...
    def exists(self, sha256: str) -> bool: ...
    def size(self, sha256: str) -> int: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def read(self, sha256: str) -> bytes: ...
    def local_path(self, sha256: str) -> Path | None: ...
    async def open_stream(self, sha256: str, offset: int, length: int) -> AsyncIterator[bytes]: ...
    def url(self, sha256: str, filename: str) -> str | None: ...
    def missing(self, sha256: str, what: str) -> RegistryError: ...
    def delete(self, sha256: str) -> None: ...
    def list(self) -> Iterator[tuple[str, float]]: ...
    def sweep_staging(self, older_than: float = 3600) -> int: ...
    def check(self) -> None: ...
    async def aopen(self) -> None: ...
    async def aclose(self) -> None: ...




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


def bucket_store(settings: Settings, location: str):
    """The S3 store of ``location`` for this data directory (its staging, its metadata cache)."""
    from .s3 import S3BlobStore  # (botocore is imported only by registries that use it)

    return S3BlobStore.from_url(location, local=settings.s3_staging_path,
                                cache=settings.cache_path / "core-metadata", timeout=settings.blobs_timeout,
                                disk=DiskSpace(settings.data_path, settings.min_free_bytes))


def recorded_location(settings: Settings) -> str:
    marker = settings.blobs_location_path
    return marker.read_text().strip() if marker.exists() else ""


def record_location(settings: Settings, location: str) -> None:
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
