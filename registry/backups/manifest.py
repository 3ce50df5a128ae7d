"""A backup's layout (in a directory, or under a bucket's prefix: places.py), and the manifest that
makes it checkable.

    DEST/manifests/000001.json      the first backup's manifest; 000001.sig its SSH signature
    DEST/bundles/000001.bundle      its commits, as a git bundle (the whole history up to its head)
    DEST/manifests/000002.json      the next: its bundle holds only the commits since 000001's head
    DEST/blobs/sha256/ab/<sha256>   every file any of them names, once (the data directory's layout)

Each manifest is whole on its own: it lists every bundle of the chain (in order, each with its
sha256 and size) and every file backed up so far (sha256, size, and the backup that added it), so the
latest one, once its signature checks, vouches for everything a restore reads. It is written last,
after everything it names is synced: a backup cut short leaves no manifest, and the next one starts
from the last whole one. It is signed by the ledger's commit key current at its head, in the SSH
signature namespace `registry-backup` (so no backup signature can pass for a commit's); the public
key is the one the ledger records in signing-keys.json at that head, which is in the bundle itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from ..errors import RegistryError

FORMAT = 1
NAMESPACE = "registry-backup"  # the SSH signature namespace: never "git", which commits are signed in
NUMBERED = re.compile(r"(\d{6})\.json")


class Bundle(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    file: str  # relative to the backup directory
    sha256: str
    size: int
    head: str
    previous: str | None  # the commit it starts after (None: it holds the whole history)
    commits: int


class Blob(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sha256: str
    size: int
    backup: int  # the number of the backup that added it


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    registry: str  # ledger.json's id: a backup directory holds one registry's history
    number: int
    head: str
    previous: str | None  # the previous backup's head
    created: datetime
    key: str  # the fingerprint of the commit key that signed it
    bundles: list[Bundle]
    blobs: list[Blob]


def manifest_path(dest: Path, number: int) -> Path:
    return dest / "manifests" / f"{number:06d}.json"


def signature_path(dest: Path, number: int) -> Path:
    return dest / "manifests" / f"{number:06d}.sig"


def bundle_name(number: int) -> str:
    return f"bundles/{number:06d}.bundle"


def blob_path(root: Path, sha256: str) -> Path:
    """Where a file is kept, in a backup or in a data directory's `blobs/` (the same layout)."""
    return root / "sha256" / sha256[:2] / sha256


@dataclass(frozen=True)
class Found:
    manifest: Manifest
    raw: bytes  # the bytes signed
    signature: str
    where: str  # the manifest's path or s3:// URL, for messages
    signature_where: str


def found(raw: bytes, signature: str | None, where: str, signature_where: str) -> Found:
    """A manifest read from ``where``, and its signature (None: there was none)."""
    try:
        decoded = msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise RegistryError(f"{where} is not a backup manifest ({exc}): it was altered or cut short.") from None
    if decoded.format != FORMAT:
        raise RegistryError(f"{where} is a backup of format {decoded.format}; this release reads format {FORMAT}.")
    if signature is None:
        raise RegistryError(f"{signature_where} is missing: the manifest {where} can't be checked without its "
                            "signature.")
    return Found(decoded, raw, signature, where, signature_where)


def latest(dest: Path) -> Found | None:
    """The newest manifest in the directory ``dest`` (None if it holds none yet)."""
    from .places import DirectoryPlace

    return DirectoryPlace(dest, create=False).latest()


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=1) + b"\n"
