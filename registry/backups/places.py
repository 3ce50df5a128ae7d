"""Where a backup is kept: a directory, or a bucket (`s3://BUCKET/PREFIX`) with the same layout
under its prefix. `take.py` and `restore.py` see only a `Place`, so both kinds are written and
read, and proved, the same way.

A bucket is reached with the blob store's client (blobs/bucket.py: the AWS_* environment, every call
bounded by REGISTRY_BLOBS_TIMEOUT, failures in words, never the credentials). Its objects are
whole or absent (S3 never keeps part of one), so an object already under a file's name is not sent
again; the manifest is created only if no manifest of its number is there (`If-None-Match`), and a
lock object (created the same way) keeps two backups into one prefix from interleaving.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from .. import locks
from ..errors import Conflict, NotFound, RegistryError
from ..fsync import fsync_all, fsync_path, make_dirs, write_file
from . import manifest as mf

if TYPE_CHECKING:
    from ..blobs.bucket import Bucket



class Place(Protocol):
    scratch: Path  # where files are made before they are put (a directory: on DEST's filesystem)

    def where(self, name: str) -> str:
        """``name`` (relative to the backup) as the user finds it: a path or an s3:// URL."""

    def latest(self) -> mf.Found | None: ...

    def held(self) -> Any:
        """A context: this backup alone writes here while it runs (409 if another one does)."""

    def present(self) -> dict[str, int]:
        """sha256 → size of the files there that need not be sent again."""

    def put(self, name: str, temp: Path) -> None:
        """``temp`` (in ``scratch``) becomes the file ``name``."""

    def durable(self) -> None:
        """Everything put is durable, names included (before a manifest names it)."""

    def put_manifest(self, number: int, raw: bytes, signature: bytes) -> None:
        """The signature, then the manifest: its presence says the backup is whole."""

    def fetch(self, name: str, scratch: Path) -> Path:
        """A local file holding ``name`` (FileNotFoundError if there is none)."""

    def open(self, name: str) -> BinaryIO:
        """``name``, to read (FileNotFoundError if there is none)."""


def blob_name(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def place(dest: str, *, timeout: float = 4.0, create: bool = False) -> Place:
    """The place ``dest`` names; a bucket is checked first (it exists and answers), a directory is
    made only when ``create`` (a backup's DEST)."""
    if dest.startswith("s3://") or dest.startswith("S3://"):
        return BucketPlace(dest, timeout)
    return DirectoryPlace(Path(dest), create=create)


class DirectoryPlace:
    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root
        self.scratch = root
        self._written: list[Path] = []
        if create:
            for sub in ("manifests", "bundles", "blobs/sha256"):
                make_dirs(root / sub)

    def where(self, name: str) -> str:
        return str(self.root / name)

    def latest(self) -> mf.Found | None:
        if not self.root.is_dir():
            return None
        numbers = sorted(int(m.group(1)) for p in (self.root / "manifests").glob("*.json")
                         if (m := mf.NUMBERED.fullmatch(p.name)))
        if not numbers:
            return None
        path = mf.manifest_path(self.root, numbers[-1])
        sig = mf.signature_path(self.root, numbers[-1])
        try:
            signature = sig.read_text()
        except FileNotFoundError:
            signature = None
        return mf.found(path.read_bytes(), signature, str(path), str(sig))

    @contextmanager
    def held(self) -> Iterator[None]:
        busy = Conflict(f"Another backup into {self.root} is running: wait for it to finish.")
        with locks.held(self.root / ".lock", within=0, refused=lambda: busy):
            yield

    def present(self) -> dict[str, int]:
        return {}  # (one an earlier backup cut short left: copied again, and checked, all the same)

    def put(self, name: str, temp: Path) -> None:
        target = self.root / name
        target.parent.mkdir(exist_ok=True)  # (synced with the rest, before the manifest)
        os.replace(temp, target)
        self._written.append(target)

    def durable(self) -> None:
        fsync_all([*self._written, *{p.parent for p in self._written}, self.root / "bundles",
                   self.root / "blobs" / "sha256"])

    def put_manifest(self, number: int, raw: bytes, signature: bytes) -> None:
        _write_whole(mf.signature_path(self.root, number), signature)
        _write_whole(mf.manifest_path(self.root, number), raw)

    def fetch(self, name: str, scratch: Path) -> Path:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(path)
        return path

    def open(self, name: str) -> BinaryIO:
        return open(self.root / name, "rb")


def _write_whole(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    write_file(temp, data, exclusive=False, sync=True)
    os.replace(temp, path)
    fsync_path(path.parent)


class BucketPlace:
    """A backup under ``s3://BUCKET/PREFIX``. Made only once the bucket answered (`check`)."""

    def __init__(self, url: str, timeout: float) -> None:
        from ..blobs.bucket import Bucket, Location  # (botocore: only for a backup in a bucket)

        self.location = Location.parse(url)
        self.bucket: Bucket = Bucket(self.location, timeout)
        self._tmp = tempfile.TemporaryDirectory(prefix="registry-backup-")
        self.scratch = Path(self._tmp.name)
        self._token = ""  # (the lock's, while `held`)
        self.check()

    def where(self, name: str) -> str:
        return f"{self.location}{name}"

    def _key(self, name: str) -> str:
        return f"{self.location.prefix}{name}"

    def check(self) -> None:
        from botocore.exceptions import ClientError

        from ..blobs.s3codes import missing

        with self.bucket.failing(f"when asked for bucket {self.location.bucket!r} at "
                                 f"{self.bucket.endpoint or 'AWS S3'}"):
            try:
                self.bucket.client().head_bucket(Bucket=self.location.bucket)
            except ClientError as exc:
                if missing(exc):
                    raise NotFound(f"There is no bucket {self.location.bucket!r} at "
                                   f"{self.bucket.endpoint or 'AWS S3'}: create it, or check the URL and "
                                   "AWS_ENDPOINT_URL.") from None
                raise

    def _list(self, under: str) -> Iterator[dict[str, Any]]:
        paginator = self.bucket.client().get_paginator("list_objects_v2")
        with self.bucket.failing(f"listing {self.where(under)}"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self._key(under)):
                yield from page.get("Contents", ())

    def _get(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        from ..blobs.s3codes import missing

        with self.bucket.failing(f"reading {self.where(name)}"):
            try:
                return self.bucket.client().get_object(Bucket=self.location.bucket, Key=self._key(name))["Body"].read()
            except ClientError as exc:
                if missing(exc):
                    return None
                raise

    def latest(self) -> mf.Found | None:
        numbers = sorted(int(m.group(1)) for item in self._list("manifests/")
                         if (m := mf.NUMBERED.fullmatch(item["Key"].rsplit("/", 1)[-1])))
        if not numbers:
            return None
        manifest, sig = (f"manifests/{numbers[-1]:06d}.{ext}" for ext in ("json", "sig"))
        raw = self._get(manifest)
        if raw is None:
            raise RegistryError(f"{self.where(manifest)} was removed while it was read: try again.", status=409)
        signature = self._get(sig)
        return mf.found(raw, signature.decode("utf-8", "replace") if signature is not None else None,
                        self.where(manifest), self.where(sig))

    @contextmanager
    def held(self) -> Iterator[None]:
        """The bucket's lock, an object only one backup can create. Never taken over by age: a backup
        of a large registry may run for longer than any age, and two running at once would write
        the same bundle's name. One a backup left as it died is the operator's to delete (the 409
        says which and since when); released only while it is still this backup's."""
        key = self._key(".lock")
        token = self._token = secrets.token_hex(16)
        body = f"{socket.gethostname()} {os.getpid()} {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {token}\n".encode()
        if not self._create(".lock", body):
            found = (self._get(".lock") or b"").decode("utf-8", "replace").split()
            since = f" (by {found[0]}, process {found[1]}, since {found[2]})" if len(found) >= 3 else ""
            raise Conflict(f"Another backup into {self.location} is running{since}: wait for it to finish. If none "
                           f"is (one was killed), delete the object {key} and back up again.")
        try:
            yield
        finally:
            try:
                if self.ours():
                    self._delete(".lock")
            finally:
                self._tmp.cleanup()

    def ours(self) -> bool:
        """Whether the lock is still this backup's (nobody deleted it and began another)."""
        return self._token in (self._get(".lock") or b"").decode("utf-8", "replace").split()

    def _still_ours(self, writing: str) -> None:
        if not self.ours():
            raise Conflict(f"The lock {self._key('.lock')} of {self.location} was deleted while this backup ran, "
                           f"and another may have begun: this one stops before writing {self.where(writing)}. "
                           "Back up again once no other backup runs.")

    def _head(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        from ..blobs.s3codes import missing

        with self.bucket.failing(f"looking up {self.where(name)}"):
            try:
                return self.bucket.client().head_object(Bucket=self.location.bucket, Key=self._key(name))
            except ClientError as exc:
                if missing(exc):
                    return None
                raise

    def _create(self, name: str, body: bytes) -> bool:
        """PUT if no object is there: False if one was (412)."""
        from botocore.exceptions import ClientError

        from ..blobs.s3codes import conflicting, precondition_failed

        with self.bucket.failing(f"writing {self.where(name)}"):
            try:
                self.bucket.client().put_object(Bucket=self.location.bucket, Key=self._key(name), Body=body,
                                                IfNoneMatch="*")
                return True
            except ClientError as exc:
                if precondition_failed(exc) or conflicting(exc):
                    return False
                raise

    def _delete(self, name: str) -> None:
        with self.bucket.failing(f"deleting {self.where(name)}"):
            self.bucket.client().delete_object(Bucket=self.location.bucket, Key=self._key(name))

    def present(self) -> dict[str, int]:
        from ..blobs.bucket import HEX64

        return {sha: item["Size"] for item in self._list("blobs/sha256/")
                if HEX64.fullmatch(sha := item["Key"].rsplit("/", 1)[-1])}

    def put(self, name: str, temp: Path) -> None:
        if not name.startswith("blobs/"):  # (a file's name is its hash: any backup writes the same bytes)
            self._still_ours(name)
        with open(temp, "rb") as body, self.bucket.failing(f"writing {self.where(name)}"):
            self.bucket.client().put_object(Bucket=self.location.bucket, Key=self._key(name), Body=body)
        temp.unlink()

    def durable(self) -> None:
        """(A PUT that returned is durable.)"""

    def put_manifest(self, number: int, raw: bytes, signature: bytes) -> None:
        sig = f"manifests/{number:06d}.sig"
        self._still_ours(sig)
        with self.bucket.failing(f"writing {self.where(sig)}"):
            self.bucket.client().put_object(Bucket=self.location.bucket, Key=self._key(sig), Body=signature)
        if not self._create(f"manifests/{number:06d}.json", raw):
            raise Conflict(f"{self.where(f'manifests/{number:06d}.json')} was written meanwhile by another backup: "
                           "this one is not needed. Back up again to add what is newer.")

    def fetch(self, name: str, scratch: Path) -> Path:
        from botocore.exceptions import ClientError

        from ..blobs.s3codes import missing

        target = scratch / name.replace("/", "_")
        with self.bucket.failing(f"reading {self.where(name)}"):
            try:
                answer = self.bucket.client().get_object(Bucket=self.location.bucket, Key=self._key(name))
            except ClientError as exc:
                if missing(exc):
                    raise FileNotFoundError(self.where(name)) from None
                raise
            with answer["Body"] as body, open(target, "wb") as out:
                shutil.copyfileobj(body, out, 2**20)
        return target

    def open(self, name: str) -> BinaryIO:
        from ..blobs.s3read import ObjectReader

        head = self._head(name)
        if head is None:
            raise FileNotFoundError(self.where(name))
        return ObjectReader(self.bucket, self._key(name), head["ContentLength"])

