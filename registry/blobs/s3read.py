"""Reading an object as a seekable file: what zipfile and tarfile need to inspect a distribution, and
what verify hashes. A read continues the open GET where it is (one request for a whole pass);
a seek elsewhere starts a new ranged GET from there to the end. A bucket that fails or stalls is
the store's 503 (`Unavailable`), never an OSError: whoever reads the archive (dists.py) would take
that for a damaged file."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import ClientError

from .bucket import Bucket
from .s3codes import Unavailable, missing

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BUFFER = 256 * 1024


class _Raw(io.RawIOBase):
    def __init__(self, bucket: Bucket, key: str, size: int) -> None:
        self._bucket, self._key, self._size = bucket, key, size
        self._pos = 0
        self._body: Any = None  # the open GET's streaming body
        self._body_pos = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        if self._pos >= self._size:
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._drop()
            with self._bucket.failing("reading a file"):
                try:
                    answer = self._bucket.client().get_object(Bucket=self._bucket.location.bucket, Key=self._key,
                                                              Range=f"bytes={self._pos}-")
                except ClientError as exc:
                    if missing(exc):  # (deleted since it was opened)
                        raise self._bucket.missing(self._key.rsplit("/", 1)[-1], "a file") from None
                    raise
            self._body, self._body_pos = answer["Body"], self._pos
        with self._bucket.failing("reading a file"):
            data = self._body.read(min(len(view), self._size - self._pos))
        if not data:
            raise Unavailable(f"The blob store {self._bucket.location} ended {self._key} at {self._pos} bytes, not "
                              f"{self._size}. Nothing was changed; try again in a moment.")
        n = len(data)
        view[:n] = data
        self._pos += n
        self._body_pos += n
        return n

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()  # (a GET read only in part: its connection is dropped, not reused)
            self._body = None

    def close(self) -> None:
        self._drop()
        super().close()


def ObjectReader(bucket: Bucket, key: str, size: int) -> BinaryIO:  # noqa: N802 (a file, as open() gives)
    """The object ``key`` of ``size`` bytes, as a buffered, seekable binary file (nothing is asked of
    the bucket until the first read). Reads raise `Unavailable` (503) if the bucket fails or stalls,
    and the store's `Missing` (503) if the object is gone."""
    return io.BufferedReader(_Raw(bucket, key, size), BUFFER)
