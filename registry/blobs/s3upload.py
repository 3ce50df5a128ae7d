"""How an upload reaches the bucket: streamed as it arrives, made visible by one conditional request.

- While the body arrives, an upload whose form announced its sha256 before the file (twine, uv and
  poetry send `sha256_digest` first: `Staged.expect`) streams as PART-sized parts of a multipart
  upload to its content address once it is past SPOOL, at most IN_FLIGHT parts at a time, from
  buffers it reuses, so memory stays bounded. A local
  copy is staged as for files (in memory while small), for the checks that read the archive; it is
  never fsynced: the bucket holds the durable copy. Content that doesn't hash as announced has its
  upload aborted. Without an announcement, the parts are sent from the staged copy once it is
  hashed (`make_durable`, called before the ledger's lock).
- `S3BlobStore.placed`, once every check has passed and before the ledger's lock is taken, makes
  the object visible with ONE request with If-None-Match: * (CompleteMultipartUpload, or a PUT for
  what stayed in memory): a 412 means the same bytes are there already, and they are never
  overwritten. (The registry's own such requests for one object never overlap, each being made
  under the object's claim, claims.py: some stores, SeaweedFS 4.48 among them, check If-None-Match
  on CompleteMultipartUpload non-atomically, and let two truly simultaneous completes both succeed;
  AWS S3 answers the second 412, or 409 while the first runs.)
- A refused or abandoned upload leaves nothing: its multipart upload is aborted (and one a crash
  left behind is aborted by `sweep_staging`); an object it made visible before its commit was
  refused is deleted again (one a crash left is an orphan the collector frees).
"""

from __future__ import annotations

import string
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..diskspace import DiskSpace
from .bucket import Bucket
from .s3codes import precondition_failed
from .staged import Digests, Staged

PART = 6 * 2**20  # S3 wants parts of 5 MiB at least (but the last)
IN_FLIGHT = 2  # parts being sent at once, per upload: with the one filling, 3 buffers of PART, reused


class Multipart:
    """One multipart upload: parts sent by the bucket's threads, completed conditionally. Used by one
    thread at a time (its parts are sent from the pool)."""

    def __init__(self, bucket: Bucket, key: str, upload_id: str | None = None) -> None:
        """Start an upload to ``key`` (one round trip; `Unavailable` if the bucket fails), or take up
        the unfinished one ``upload_id``."""
        self.bucket, self.key = bucket, key
        self._futures: list[Future[dict[str, Any]]] = []
        self._spares: list[bytearray] = []  # buffers whose part has been sent, to fill again
        self.closed = False
        if upload_id is None:
            with bucket.failing("starting an upload"):
                upload_id = bucket.client().create_multipart_upload(Bucket=bucket.location.bucket, Key=key)["UploadId"]
        self.id: str = upload_id

    @classmethod
    def resume(cls, bucket: Bucket, key: str, upload_id: str) -> Multipart:
        """The unfinished upload ``upload_id`` (found listed), to abort it."""
        return cls(bucket, key, upload_id)

    def buffer(self) -> bytearray:
        """A PART-sized buffer to fill: one whose part was sent, or a new one (at most IN_FLIGHT + 1
        per upload, so memory stays bounded and big buffers aren't allocated again and again)."""
        return self._spares.pop() if self._spares else bytearray(PART)

    def send(self, buffer: bytearray, length: int) -> None:
        """Queue the next part (``buffer``'s first ``length`` bytes); wait first while IN_FLIGHT are
        being sent (and fail with theirs). A full buffer is sent as it is, then handed back."""
        while True:
            running = [f for f in self._futures if not f.done()]
            for f in self._futures:
                if f.done():
                    f.result()
            if len(running) < IN_FLIGHT:
                break
            wait(running, return_when=FIRST_COMPLETED)
        data = buffer if length == len(buffer) else bytes(memoryview(buffer)[:length])
        future = self.bucket.pool.submit(self._part, len(self._futures) + 1, data)
        future.add_done_callback(lambda _: self._spares.append(buffer))
        self._futures.append(future)

    def _part(self, number: int, data: bytes | bytearray) -> dict[str, Any]:
        with self.bucket.failing("sending a part of a file"):
            answer = self.bucket.client().upload_part(Bucket=self.bucket.location.bucket, Key=self.key,
                                                     UploadId=self.id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def wait(self) -> list[dict[str, Any]]:
        """Every part sent, in order (their numbers and ETags); raises the first part's failure."""
        return [f.result() for f in self._futures]

    def complete(self, *, exclusive: bool = True) -> bool:
        """Make the object visible; with ``exclusive``, only if none is there (False: one was, and
        it stays as it is; this upload is aborted)."""
        parts = self.wait()
        with self.bucket.failing("storing a file"):
            try:
                self.bucket.client().complete_multipart_upload(
                    Bucket=self.bucket.location.bucket, Key=self.key, UploadId=self.id,
                    MultipartUpload={"Parts": parts}, **({"IfNoneMatch": "*"} if exclusive else {}))
            except ClientError as exc:
                if not precondition_failed(exc):
                    raise
                self.abort()
                return False
        self.closed = True
        return True

    def abort(self, *, background: bool = False) -> None:
        """Abort the upload (once; what fails is left to `sweep_staging`), here or, ``background``,
        from the pool."""
        if self.closed:
            return
        self.closed = True

        def run() -> None:
            try:
                for f in self._futures:
                    f.exception()  # (a part still being sent would outlive the abort)
                self.bucket.client().abort_multipart_upload(Bucket=self.bucket.location.bucket, Key=self.key,
                                                           UploadId=self.id)
            except Exception:  # (sweep_staging aborts what is left over)
                pass

        if background:  # (a refusal's cleanup must not hold up its answer, nor the event loop)
            self.bucket.pool.submit(run)
        else:
            run()


class S3Staged(Staged):
    """An upload on its way to ``bucket``: staged locally in ``directory`` as `Staged` is, and streamed
    to its address as it arrives when its sha256 was announced (see the module's docstring)."""

    def __init__(self, bucket: Bucket, directory: Path, limit: int | None = None,
                 disk: DiskSpace | None = None) -> None:
        super().__init__(directory, limit, disk=disk)
        self._bucket = bucket
        self._expected: str | None = None
        self._part: bytearray | None = None  # the part being filled, and how far
        self._fill = 0
        self.upload: Multipart | None = None
        self.ready = False  # every part sent (or the content is in memory): only the final request is left
        self.stored = False  # visible at its address
        self.created = False  # by this upload's request (False: the same bytes were there already)
        self.adopted = False  # named by a commit being written: never removed again

    def expect(self, sha256: str) -> None:
        """As `Staged.expect`; a digest that is not 64 hex digits, or one announced after the content
        began, is ignored."""
        sha256 = sha256.strip().lower()
        if self._size == 0 and len(sha256) == 64 and all(c in string.hexdigits for c in sha256):
            self._expected = sha256

    def write(self, chunk: bytes) -> None:
        """As `Staged.write`; once spilled, with an announced sha256, each full PART is sent as it
        fills (waiting while IN_FLIGHT are on their way; `Unavailable` if the bucket fails)."""
        held = self._buffer if self._expected is not None and not self.spilled else None
        super().write(chunk)
        if self._expected is None or not self.spilled:
            return  # (small so far: in memory, and maybe never more than one PUT)
        if held is not None:  # it spilled just now: what was held in memory goes first
            self._feed(held)
        self._feed(chunk)

    def _feed(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            if self._part is None:
                self._part, self._fill = self.upload.buffer() if self.upload else bytearray(PART), 0
            n = min(len(view), PART - self._fill)
            self._part[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == PART:
                self._send_part(self._part)

    def _send_part(self, part: bytearray) -> None:
        if self.upload is None:
            self.upload = Multipart(self._bucket, self._bucket.key(self._expected or self.finish().sha256))
        self.upload.send(part, self._fill)
        self._part, self._fill = None, 0

    def finish(self, sync: bool = True) -> Digests:
        """As `Staged.finish`, never syncing; content that doesn't hash as announced has its upload
        aborted (in the background)."""
        digests = super().finish(sync=False)  # (never synced: the bucket's copy is the durable one)
        if self._expected is not None and digests.sha256 != self._expected:
            self._expected, self._part = None, None  # (the checks refuse it; nothing was visible)
            if self.upload is not None:
                self.upload.abort(background=True)
                self.upload = None
        return digests

    def make_durable(self) -> None:
        """Send every part (before the ledger's lock); `adopt` then makes it visible."""
        if self.ready:
            return
        digests = self.finish()
        if self.path is not None:  # (spilled)
            if self.upload is None and self._part is None:  # nothing streamed: send the staged file
                upload = self.upload = Multipart(self._bucket, self._bucket.key(digests.sha256))
                with open(self.path, "rb") as fh:
                    while (n := fh.readinto(buffer := upload.buffer())) > 0:
                        upload.send(buffer, n)
            elif self._part is not None and self._fill:
                self._send_part(self._part)  # (the last part, smaller)
            assert self.upload is not None  # (every part was sent: the last one just now)
            self.upload.wait()
        self.ready = True

    def discard(self) -> None:
        """As `Staged.discard`; an upload not yet visible is aborted (in the background)."""
        super().discard()
        self._part = None
        if self.upload is not None and not self.stored:
            self.upload.abort(background=True)
