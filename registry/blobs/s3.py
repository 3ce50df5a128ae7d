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

Every call is bounded (`_bounded`): a bucket that stalls is a 503 after `REGISTRY_BLOBS_TIMEOUT`
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

import asyncio
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from ..diskspace import DiskSpace
from ..disposition import attachment
from ..errors import RegistryError
from ..fsync import Needed, make_dirs
from .claims import Claims
from .files import CHUNK, FileBlobStore
from .s3codes import Missing, Unavailable, conflicting, missing, precondition_failed
from .s3read import ObjectReader
from .s3upload import Multipart, S3Staged
from .staged import Staged

log = logging.getLogger("registry.blobs")
PRESIGN_SECONDS = 300  # how long a redirect's URL stays valid
TIMEOUT = 4.0  # seconds a call waits for the bucket (REGISTRY_BLOBS_TIMEOUT)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


_process: tuple[int, object, ThreadPoolExecutor] | None = None
_process_lock = threading.Lock()


def _shared() -> tuple[object, ThreadPoolExecutor]:
    """One botocore session (its service model loaded once) and one pool of part senders per process."""
    global _process
    with _process_lock:
        if _process is None or _process[0] != os.getpid():
            import botocore.session

            pool = ThreadPoolExecutor(8, thread_name_prefix="s3-parts")
            _process = (os.getpid(), botocore.session.get_session(), pool)
        return _process[1], _process[2]


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> Location:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not _BUCKET.fullmatch(bucket):
            raise RegistryError(f"{url!r} is not an S3 location: write s3://BUCKET or s3://BUCKET/PREFIX "
                                "(a bucket name is 3-63 lowercase letters, digits, dots and hyphens).")
        prefix = "/".join(p for p in prefix.split("/") if p)
        return cls(bucket, prefix + "/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def endpoint_and_region() -> tuple[str | None, str]:
    """From the environment, as the AWS tools read them."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return endpoint, region


class S3BlobStore:
    remote = True

    def __init__(self, location: Location, local: Path, cache: Path, timeout: float = TIMEOUT,
                 disk: DiskSpace | None = None) -> None:
        self.location = location
        self.disk = disk  # (the local copies of uploads are refused before they fill it)
        self.endpoint, self.region = endpoint_and_region()
        self.timeout = timeout
        self.staging = Path(local)  # incoming files spill here, as they do for files
        make_dirs(self.staging)
        self.claims = Claims(self.staging.with_name(self.staging.name + "-claims"))  # (s3-staging-claims)
        self._cache = FileBlobStore(cache)
        self._lock = threading.Lock()
        self._client = None
        self._pid = None
        self._aclients: dict[asyncio.AbstractEventLoop, tuple] = {}

    @classmethod
    def from_url(cls, url: str, *, local: Path, cache: Path, timeout: float = TIMEOUT,
                 disk: DiskSpace | None = None) -> S3BlobStore:
        return cls(Location.parse(url), local, cache, timeout, disk)

    # --- clients ---------------------------------------------------------------------------------

    def _kwargs(self) -> dict:
        from botocore.config import Config

        config = Config(region_name=self.region, signature_version="s3v4",
                        retries={"mode": "standard", "max_attempts": 5},  # (fewer in time: see _bounded)
                        s3={"addressing_style": "path"} if self.endpoint else {},  # (a custom endpoint: no DNS per bucket)
                        max_pool_connections=16, connect_timeout=self.timeout, read_timeout=self.timeout,
                        tcp_keepalive=True,
                        # (our own sha256 checks content: CRC trailers only trip up S3-compatible stores)
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        return dict(endpoint_url=self.endpoint, region_name=self.region, config=config)

    def client(self):
        """botocore's client, for calls from threads (made again in a forked worker)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                session = _shared()[0]
                with _process_lock:  # (a botocore session is not thread-safe)
                    self._client = session.create_client("s3", **self._kwargs())
                _bounded(self._client.meta.events, self.timeout)
                self._pid = os.getpid()
            return self._client

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads that send parts (shared by every store of the process)."""
        return _shared()[1]

    async def _aclient(self):
        loop = asyncio.get_running_loop()
        if loop not in self._aclients:
            from aiobotocore.session import get_session

            context = get_session().create_client("s3", **self._kwargs())
            client = await context.__aenter__()
            _bounded(client.meta.events, self.timeout)
            if loop in self._aclients:  # (another request made one meanwhile)
                await context.__aexit__(None, None, None)
            else:
                self._aclients[loop] = (context, client)
        return self._aclients[loop][1]

    async def aopen(self) -> None:
        """Make this event loop's async client now (at the app's start), not at the first download."""
        await self._aclient()

    async def aclose(self) -> None:
        """Close this event loop's async client (at the app's shutdown)."""
        entry = self._aclients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].__aexit__(None, None, None)

    @contextmanager
    def failing(self, doing: str):
        """S3 errors as a 503 that says what failed (a 404 is the caller's to catch first)."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise Unavailable(f"The blob store {self.location} failed {doing}: {error.get('Code', '?')} "
                              f"{error.get('Message', '')}".rstrip() + ". Nothing was changed; try again. If it "
                              "persists, check REGISTRY_BLOBS, AWS_ENDPOINT_URL and the credentials.") from None
        except BotoCoreError as exc:
            silent = (f"it did not answer within {self.timeout:g}s"
                      if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)) else str(exc))
            raise Unavailable(f"The blob store {self.location} could not be reached {doing} ({silent}). Nothing "
                              "was changed; try again in a moment. If it persists, check that it is up "
                              f"({self.endpoint or 'AWS S3'}), REGISTRY_BLOBS, AWS_ENDPOINT_URL and the "
                              "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).") from None

    def missing(self, sha256: str, what: str) -> Missing:
        """The 503 for a referenced object the bucket lacks: what it is, and what the operator does."""
        return Missing(f"The content of {what} is missing from the blob store {self.location} (object "
                       f"{self.key(sha256)}): the ledger records it, the bucket doesn't hold it. Nothing is wrong "
                       "with this request; the registry's operator must put it back: if the files were moved to "
                       "the bucket, run `registry blobs migrate --to "
                       f"{str(self.location).rstrip('/')}` again where the old files are (it sends what is missing); "
                       "`registry verify` lists every missing file.")

    def key(self, sha256: str) -> str:
        if not _HEX64.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{self.location.prefix}sha256/{sha256[:2]}/{sha256}"

    def check(self) -> None:
        """Fail now, in words, if the bucket can't be used (`registry serve` checks at start)."""
        with self.failing(f"when asked for bucket {self.location.bucket!r} at {self.endpoint or 'AWS'}"):
            self.client().head_bucket(Bucket=self.location.bucket)

    # --- writing ---------------------------------------------------------------------------------

    def stage(self, limit: int | None = None) -> Staged:
        return S3Staged(self, limit)

    def adopt(self, staged: Staged, defer: list[Needed] | None = None) -> str:
        """Make ``staged`` visible under its hash with one conditional request (every part of a big
        file was sent before): stored, and durable, when this returns; ``defer`` is left alone.
        Within `placed` (a publish: under the ledger's lock) it was stored already, and this only
        marks it as named by the commit being written."""
        assert isinstance(staged, S3Staged), "an S3 store adopts what it staged"
        if not staged.stored:
            staged.make_durable()
            with self.claims.hold(staged.digests.sha256, wait=60):
                self._store(staged, exclusive=True)
        staged.adopted = True
        return staged.digests.sha256

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
            with self.failing("removing a file no commit names"):
                self.client().delete_object(Bucket=self.location.bucket, Key=self.key(sha256))
        except Unavailable as exc:  # (an orphan: the collector frees it after its grace period)
            log.warning("%s", exc.message)

    def _store(self, staged: S3Staged, *, exclusive: bool) -> None:
        data = staged.in_memory
        if data is not None:
            staged.created = self._put(self.key(staged.digests.sha256), data, exclusive=exclusive)
        else:
            staged.created = staged.upload.complete(exclusive=exclusive)
        staged.stored = True
        staged.discard()  # (the local copy: no longer needed)

    def repair(self, staged: Staged) -> bool:
        """Replace the stored copy if it is missing or not whole (an object's size says: S3 never
        keeps part of one)."""
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
            with self.failing("storing a file"):
                try:
                    self.client().put_object(Bucket=self.location.bucket, Key=key, Body=data, **extra)
                    return True
                except ClientError as exc:
                    if precondition_failed(exc):
                        return False
                    if not conflicting(exc) or attempt == 4:
                        raise
            time.sleep(0.05 * (attempt + 1))  # (AWS: another conditional write of it is under way)
        return False

    def put_bytes(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        self._put(self.key(sha256), data, exclusive=True)
        return sha256

    def put_cache(self, data: bytes) -> str:
        return self._cache.put_cache(data)

    def delete(self, sha256: str) -> None:
        with self.failing("deleting a file"):
            self.client().delete_object(Bucket=self.location.bucket, Key=self.key(sha256))
        self._cache.delete(sha256)

    # --- reading ---------------------------------------------------------------------------------

    def _head(self, sha256: str) -> dict | None:
        with self.failing("looking up a file"):
            try:
                return self.client().head_object(Bucket=self.location.bucket, Key=self.key(sha256))
            except ClientError as exc:
                if missing(exc):
                    return None
                raise

    def exists(self, sha256: str) -> bool:
        return self._cache.exists(sha256) or self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        head = self._head(sha256)
        return head["ContentLength"] if head is not None else self._cache.size(sha256)

    def open(self, sha256: str) -> BinaryIO:
        """Seekable, reading by ranged GETs (a wheel's METADATA costs two or three)."""
        if self._cache.exists(sha256):
            return self._cache.open(sha256)
        head = self._head(sha256)
        if head is None:
            raise FileNotFoundError(f"{self.location}{self.key(sha256)[len(self.location.prefix):]}")
        return ObjectReader(self, self.key(sha256), head["ContentLength"])

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as fh:
            return fh.read()

    def local_path(self, sha256: str) -> Path | None:
        return self._cache.local_path(sha256)  # (only the cache is local)

    async def open_stream(self, sha256: str, offset: int, length: int) -> AsyncIterator[bytes]:
        """The bytes ``offset`` to ``offset + length``, streamed on the event loop; FileNotFoundError
        before anything is sent if the object is missing."""
        client = await self._aclient()
        with self.failing("reading a file"):
            try:
                answer = await client.get_object(Bucket=self.location.bucket, Key=self.key(sha256),
                                                 Range=f"bytes={offset}-{offset + max(length, 1) - 1}")
            except ClientError as exc:
                if missing(exc):
                    raise FileNotFoundError(self.key(sha256)) from None
                raise
        return _chunks(answer["Body"], length)

    def url(self, sha256: str, filename: str) -> str | None:
        """A presigned GET, valid for PRESIGN_SECONDS (signed locally: no round trip)."""
        return self.client().generate_presigned_url(
            "get_object", ExpiresIn=PRESIGN_SECONDS,
            Params={"Bucket": self.location.bucket, "Key": self.key(sha256),
                    "ResponseContentDisposition": attachment(filename)})

    def _objects(self) -> Iterator[dict]:
        paginator = self.client().get_paginator("list_objects_v2")
        with self.failing("listing the bucket"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=f"{self.location.prefix}sha256/"):
                for item in page.get("Contents", ()):
                    if _HEX64.fullmatch(item["Key"].rsplit("/", 1)[-1]):
                        yield item

    def list(self) -> Iterator[tuple[str, float]]:
        """Every object under the prefix with its LastModified, then the cached core metadata."""
        for item in self._objects():
            yield item["Key"].rsplit("/", 1)[-1], item["LastModified"].timestamp()
        yield from self._cache.list()

    def inventory(self) -> Iterator[tuple[str, int]]:
        """Every object under the prefix with its size."""
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
        paginator = self.client().get_paginator("list_multipart_uploads")
        with self.failing("listing unfinished uploads"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=f"{self.location.prefix}sha256/"):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() < cutoff:
                        Multipart.resume(self, upload["Key"], upload["UploadId"]).abort()
                        removed += 1
        return removed


def _bounded(events, timeout: float) -> None:
    """Bound every call of a client to answer within twice ``timeout``: each attempt waits at most
    ``timeout`` for the bucket (the client's connect and read timeouts), and botocore retries a
    failed one (a refused connection, a 500, a timeout) only while the retry, its backoff included,
    starts within ``timeout`` of the call's start. So a bucket that stops answering costs one
    ``timeout``; one that fails fast is retried two or three times."""
    def started(context, **_) -> None:
        context["registry-started"] = time.monotonic()

    def past_deadline(attempts, request_dict, **_) -> bool | None:
        began = request_dict.get("context", {}).get("registry-started")
        backoff = min(2 ** (attempts - 1), 20)  # (the most botocore's standard mode waits before the next)
        if began is not None and time.monotonic() - began + backoff > timeout:
            return False  # (the first answer that isn't None decides: no retry)
        return None

    events.register("before-call.s3", started)
    events.register_first("needs-retry.s3", past_deadline)


async def _chunks(body, length: int) -> AsyncIterator[bytes]:
    try:
        while length > 0:
            try:
                chunk = await body.read(min(CHUNK, length))
            except (BotoCoreError, OSError, asyncio.TimeoutError) as exc:
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
