"""`S3BlobStore`: blobs in a bucket of S3-compatible object storage (AWS S3, SeaweedFS, MinIO, R2, ...).

The client is aiobotocore, with the botocore it is built on. obstore streams both ways, does
conditional create and is lighter, but it can't complete a *multipart* upload conditionally (its
"create" mode forces one PUT held in memory) nor list or abort stale multipart uploads: a 500 MB
upload streamed as parts would either overwrite a racing writer's object or need a server-side copy
afterwards. botocore has the whole API: CompleteMultipartUpload with If-None-Match, aborts, listings
of unfinished uploads, presigned GETs with a Content-Disposition. The store's protocol is synchronous
(a publish stores its object from a worker thread; gc, verify and migrate are CLI work), so those
calls use botocore's thread-safe client as they are; downloads stream on the event loop through
aiobotocore's async client (one per loop), so a slow reader holds no thread.

Every call is bounded (bucket.py): a bucket that stalls is a 503 after `REGISTRY_BLOBS_TIMEOUT`
seconds (twice that at worst), never a request that hangs; and no call to it is ever made under the
ledger's lock: a publish stores its object first (`placed`), held by a claim (claims.py) until its
commit has landed, so a stalled bucket holds up only what needs it.

Objects are `<prefix>sha256/<xx>/<sha256>`, as files are in a blobs directory. A PUT or a
CompleteMultipartUpload that returned is durable: the journal carries no copy of a small file
(nothing local to replay) and the commit's record is written only once the object is stored. How an
upload travels is in s3upload.py.

The core-metadata cache (`put_cache`) stays on local disk, in cache/core-metadata: `.metadata` is
asked for by every resolve and a local file answers it without a round trip; it is derived, so
each machine rebuilds its own (from a few ranged GETs of the wheel), and gc frees it with its file.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from ..diskspace import DiskSpace
from ..disposition import attachment
from ..fsync import Needed, make_dirs
from .bucket import HEX64, TIMEOUT, Bucket, Location
from .claims import Claims
from .files import CHUNK, FileBlobStore
from .s3codes import Missing, Unavailable, conflicting, missing, precondition_failed
from .s3read import ObjectReader
from .s3upload import Multipart, S3Staged
from .staged import Staged

log = logging.getLogger("registry.blobs")
PRESIGN_SECONDS = 300  # how long a redirect's URL stays valid


class S3BlobStore:
    """The `BlobStore` of a bucket (see blobs/__init__.py for the contract of each method). Thread-safe:
    one store serves every thread and event loop of its process. Every method that reaches the bucket
    raises `Unavailable` (503) when it fails or doesn't answer within its timeout, and leaves nothing
    changed that the caller relies on."""

    remote = True

    def __init__(self, location: Location, local: Path, cache: Path, timeout: float = TIMEOUT,
                 disk: DiskSpace | None = None) -> None:
        self.bucket = Bucket(location, timeout)
        self.location = location
        self.disk = disk  # (the local copies of uploads are refused before they fill it)
        self.staging = Path(local)  # incoming files spill here, as they do for files
        make_dirs(self.staging)
        self.claims = Claims(self.staging.with_name(self.staging.name + "-claims"))  # (s3-staging-claims)
        self._cache = FileBlobStore(cache)

    @classmethod
    def from_url(cls, url: str, *, local: Path, cache: Path, timeout: float = TIMEOUT,
                 disk: DiskSpace | None = None) -> S3BlobStore:
        """The store of ``url`` (s3://BUCKET[/PREFIX]; RegistryError if it is not one); no round trip."""
        return cls(Location.parse(url), local, cache, timeout, disk)

    async def aopen(self) -> None:
        """Make this event loop's async client now (at the app's start), not at the first download."""
        await self.bucket.aclient()

    async def aclose(self) -> None:
        """Close this event loop's async client (at the app's shutdown)."""
        await self.bucket.aclose()

    def missing(self, sha256: str, what: str) -> Missing:
        """The 503 for a referenced object the bucket lacks: what it is, and what the operator does."""
        return self.bucket.missing(sha256, what)

    def check(self) -> None:
        """Fail now, in words, if the bucket can't be used (`registry serve` checks at start)."""
        with self.bucket.failing(f"when asked for bucket {self.location.bucket!r} at {self.bucket.endpoint or 'AWS'}"):
            self.bucket.client().head_bucket(Bucket=self.location.bucket)

    # --- writing ---------------------------------------------------------------------------------

    def stage(self, limit: int | None = None) -> Staged:
        """An `S3Staged`: a local copy in staging (never synced), streamed to the bucket as it arrives
        when its sha256 is announced first (s3upload.py)."""
        return S3Staged(self.bucket, self.staging, limit, self.disk)

    def adopt(self, staged: Staged, defer: list[Needed] | None = None) -> str:
        """Make ``staged`` visible under its hash with one conditional request (every part of a big
        file was sent before): stored, and durable, when this returns; ``defer`` is left alone.
        Within `placed` (a publish: under the ledger's lock) it was stored already, and this only
        marks it as named by the commit being written."""
        assert isinstance(staged, S3Staged), "an S3 store adopts what it staged"
        sha256 = staged.finish().sha256
        if not staged.stored:
            staged.make_durable()
            with self.claims.hold(sha256, wait=60):
                self._store(staged, exclusive=True)
        staged.adopted = True
        return sha256

    @contextmanager
    def placed(self, staged: Staged, wait: float) -> Iterator[None]:
        """Store ``staged`` now, before the ledger's lock is taken (a round trip that may stall must
        never hold it), and hold its object's claim while the block commits the change that names
        it: until then no other upload completes the same object and the collector leaves it
        alone. If the block fails before its commit was written (refused, the lock busy) and this
        request created the object, it is removed again: a refused upload leaves nothing."""
        assert isinstance(staged, S3Staged), "an S3 store places what it staged"
        sha256 = staged.finish().sha256
        with self.claims.hold(sha256, wait):
            staged.make_durable()
            if not staged.stored:
                self._store(staged, exclusive=True)
            try:
                yield
            except BaseException:
                if staged.created and not staged.adopted:
                    self._remove_quietly(sha256)
                raise

    def _remove_quietly(self, sha256: str) -> None:
        try:
            with self.bucket.failing("removing a file no commit names"):
                self.bucket.client().delete_object(Bucket=self.location.bucket, Key=self.bucket.key(sha256))
        except Unavailable as exc:  # (an orphan: the collector frees it after its grace period)
            log.warning("%s", exc.message)

    def _store(self, staged: S3Staged, *, exclusive: bool) -> None:
        """Make what `make_durable` sent (or what is in memory) visible, with one request."""
        data = staged.in_memory
        if data is not None:
            staged.created = self._put(self.bucket.key(staged.finish().sha256), data, exclusive=exclusive)
        else:
            assert staged.upload is not None, "a spilled upload is sent (make_durable) before it is stored"
            staged.created = staged.upload.complete(exclusive=exclusive)
        staged.stored = True
        staged.discard()  # (the local copy: no longer needed)

    def repair(self, staged: Staged) -> bool:
        """Replace the stored copy if it is missing or not whole (an object's size says: S3 never
        keeps part of one)."""
        assert isinstance(staged, S3Staged), "an S3 store repairs with what it staged"
        digests = staged.finish()
        try:
            if self.size(digests.sha256) == digests.size:
                return False
        except FileNotFoundError:
            pass
        staged.make_durable()
        with self.claims.hold(digests.sha256, wait=60):
            self._store(staged, exclusive=False)
        return True

    @contextmanager
    def held(self, shas: list[str]) -> Iterator[list[str]]:
        """Those of ``shas`` no upload is storing now, each held against one until the block ends
        (the collector deletes them in it, outside the ledger's lock)."""
        with self.claims.held(shas) as taken:
            yield taken

    def _put(self, key: str, data: bytes, *, exclusive: bool) -> bool:
        """PUT, conditionally: False if an object was there already (412: left as it is)."""
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        for attempt in range(5):
            with self.bucket.failing("storing a file"):
                try:
                    self.bucket.client().put_object(Bucket=self.location.bucket, Key=key, Body=data, **extra)
                    return True
                except ClientError as exc:
                    if precondition_failed(exc):
                        return False
                    if not conflicting(exc) or attempt == 4:
                        raise
            time.sleep(0.05 * (attempt + 1))  # (AWS: another conditional write of it is under way)
        return False

    def put_bytes(self, data: bytes) -> str:
        """One conditional PUT (an object already there is left as it is): durable when it returns."""
        sha256 = hashlib.sha256(data).hexdigest()
        self._put(self.bucket.key(sha256), data, exclusive=True)
        return sha256

    def put_cache(self, data: bytes) -> str:
        """Into the local cache (cache/core-metadata), never the bucket."""
        return self._cache.put_cache(data)

    def delete(self, sha256: str) -> None:
        """Delete the object (S3 answers the same whether it was there), then any cached copy."""
        with self.bucket.failing("deleting a file"):
            self.bucket.client().delete_object(Bucket=self.location.bucket, Key=self.bucket.key(sha256))
        self._cache.delete(sha256)

    # --- reading ---------------------------------------------------------------------------------

    def _head(self, sha256: str) -> dict[str, Any] | None:
        with self.bucket.failing("looking up a file"):
            try:
                return self.bucket.client().head_object(Bucket=self.location.bucket, Key=self.bucket.key(sha256))
            except ClientError as exc:
                if missing(exc):
                    return None
                raise

    def exists(self, sha256: str) -> bool:
        """In the local cache, or in the bucket (a HEAD)."""
        return self._cache.exists(sha256) or self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        """The object's size (a HEAD), else the cached copy's; FileNotFoundError if neither is there."""
        head = self._head(sha256)
        return head["ContentLength"] if head is not None else self._cache.size(sha256)

    def open(self, sha256: str) -> BinaryIO:
        """The cached copy, else the object, seekable, read by ranged GETs (a wheel's METADATA costs two
        or three); FileNotFoundError if neither is there (a HEAD says)."""
        if self._cache.exists(sha256):
            return self._cache.open(sha256)
        head = self._head(sha256)
        if head is None:
            raise FileNotFoundError(f"{self.location}{self.bucket.key(sha256)[len(self.location.prefix):]}")
        return ObjectReader(self.bucket, self.bucket.key(sha256), head["ContentLength"])

    def read(self, sha256: str) -> bytes:
        """The whole of what `open` opens."""
        with self.open(sha256) as fh:
            return fh.read()

    def local_path(self, sha256: str) -> Path | None:
        """The cached copy's file; None for anything in the bucket."""
        return self._cache.local_path(sha256)

    async def open_stream(self, sha256: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``offset`` to ``offset + length``, streamed on the event loop; FileNotFoundError
        before anything is sent if the object is missing."""
        client = await self.bucket.aclient()
        with self.bucket.failing("reading a file"):
            try:
                answer = await client.get_object(Bucket=self.location.bucket, Key=self.bucket.key(sha256),
                                                 Range=f"bytes={offset}-{offset + max(length, 1) - 1}")
            except ClientError as exc:
                if missing(exc):
                    raise FileNotFoundError(self.bucket.key(sha256)) from None
                raise
        return _chunks(answer["Body"], length)

    def url(self, sha256: str, filename: str) -> str | None:
        """A presigned GET, valid for PRESIGN_SECONDS (signed locally: no round trip)."""
        return self.bucket.client().generate_presigned_url(
            "get_object", ExpiresIn=PRESIGN_SECONDS,
            Params={"Bucket": self.location.bucket, "Key": self.bucket.key(sha256),
                    "ResponseContentDisposition": attachment(filename)})

    def _objects(self) -> Iterator[dict[str, Any]]:
        paginator = self.bucket.client().get_paginator("list_objects_v2")
        with self.bucket.failing("listing the bucket"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=f"{self.location.prefix}sha256/"):
                for item in page.get("Contents", ()):
                    if HEX64.fullmatch(item["Key"].rsplit("/", 1)[-1]):
                        yield item

    def list(self) -> Iterator[tuple[str, float]]:
        """Every object under the prefix with its LastModified, then the cached core metadata."""
        for item in self._objects():
            yield item["Key"].rsplit("/", 1)[-1], item["LastModified"].timestamp()
        yield from self._cache.list()

    def inventory(self) -> Iterator[tuple[str, int]]:
        """Every object under the prefix with its size (one listing: what migrate and verify compare)."""
        for item in self._objects():
            yield item["Key"].rsplit("/", 1)[-1], item["Size"]

    def sweep_staging(self, older_than: float = 3600) -> int:
        """Remove what crashed uploads left: local staged files, and unfinished multipart uploads
        (invisible, but billed)."""
        cutoff = time.time() - older_than
        removed = self._cache.sweep_staging(older_than)
        self.claims.sweep(older_than)
        for f in self.staging.iterdir():
            if f.stat().st_mtime < cutoff:
                f.unlink(missing_ok=True)
                removed += 1
        paginator = self.bucket.client().get_paginator("list_multipart_uploads")
        with self.bucket.failing("listing unfinished uploads"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=f"{self.location.prefix}sha256/"):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < cutoff:
                        Multipart.resume(self.bucket, upload["Key"], upload["UploadId"]).abort()
                        removed += 1
        return removed


async def _chunks(body: Any, length: int) -> AsyncIterator[bytes]:
    try:
        while length > 0:
            try:
                chunk = await body.read(min(CHUNK, length))
            except (BotoCoreError, OSError, TimeoutError) as exc:
                # (the answer has begun: all that is left is to cut it short, which the client sees)
                log.warning("a download was cut short, %d bytes before its end: the blob store stopped "
                            "answering (%s)", length, exc)
                raise
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        body.close()
