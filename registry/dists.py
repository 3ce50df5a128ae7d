"""What a distribution file says about itself, checked the way the public index checks it.

Everything is read from the file (wheel METADATA, sdist PKG-INFO) with bounded reads: a zip or gzip
bomb costs at most a bounded number of bytes decompressed, and never more memory than the metadata.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packaging.metadata import InvalidMetadata, Metadata, parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from .errors import Invalid

METADATA_LIMIT = 10 * 2**20  # bytes of core metadata we are willing to read
SDIST_SCAN_LIMIT = 2 * 2**30  # decompressed bytes we read looking for PKG-INFO
SDIST_MEMBER_LIMIT = 200_000
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class DistInfo:
    filename: str
    packagetype: str  # "sdist" | "bdist_wheel"
    name: str  # as the metadata spells it
    version: str  # normalised
    python_version: str
    requires_python: str | None
    metadata_version: str
    summary: str
    metadata: bytes  # the raw core metadata file

    @property
    def canonical_name(self) -> str:
        return canonicalize_name(self.name)


def check_filename(filename: str) -> str:
    """Refuse filenames that could escape a directory or confuse a client; return the packagetype."""
    if not filename or len(filename) > 255 or _BAD_CHARS.search(filename) or filename.startswith("."):
        raise Invalid(
            f"Invalid filename {filename!r}: a distribution filename has no path separators, "
            "control characters or leading dot."
        )
    if filename.endswith(".whl"):
        return "bdist_wheel"
    if filename.endswith(".tar.gz"):
        return "sdist"
    if filename.endswith((".zip", ".tar.bz2", ".tgz", ".tar", ".egg", ".exe", ".msi", ".rpm", ".dmg", ".deb")):
        raise Invalid(
            f"Invalid file extension in {filename!r}: only wheels (.whl) and .tar.gz source distributions "
            "are accepted (PEP 527, PEP 625). Rebuild with a current build tool (python -m build, uv build)."
        )
    raise Invalid(f"Invalid file extension in {filename!r}: use .whl for wheels or .tar.gz for source distributions.")


def inspect(source: Path | BinaryIO, filename: str) -> DistInfo:
    """Read and validate ``source`` (a path or a binary file), a distribution uploaded as ``filename``."""
    packagetype = check_filename(filename)
    if packagetype == "bdist_wheel":
        return _inspect_wheel(source, filename)
    return _inspect_sdist(source, filename)


def _inspect_wheel(source: Path | BinaryIO, filename: str) -> DistInfo:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise Invalid(f"Invalid wheel filename {filename!r}: {exc}") from None
    name_part, version_part = filename.split("-")[:2]
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise Invalid(f"Invalid distribution file {filename!r}: it is not a zip archive.") from None
    with archive:
        _check_zip_ratio(archive, filename)
        dist_info = f"{name_part}-{version_part}.dist-info"
        members = {i.filename: i for i in archive.infolist()}
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{dist_info}/{required}" not in members:
                raise Invalid(f"Invalid distribution file {filename!r}: {dist_info}/{required} is missing.")
        info = members[f"{dist_info}/METADATA"]
        if info.file_size > METADATA_LIMIT:
            raise Invalid(f"Invalid distribution file {filename!r}: METADATA is larger than {METADATA_LIMIT} bytes.")
        try:
            with archive.open(info) as fh:
                data = fh.read(METADATA_LIMIT + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise Invalid(f"Invalid distribution file {filename!r}: METADATA can't be read ({exc}).") from None
    meta = _parse_metadata(data, filename)
    _check_name_version(meta, filename, name, version)
    expected = canonicalize_name(meta.name).replace("-", "_")
    if name_part != expected:
        raise Invalid(f"Filename {filename!r} should contain the normalized project name {expected!r}, not {name_part!r}.")
    python_version = ".".join(sorted({t.interpreter for t in tags}))
    return _info(filename, "bdist_wheel", meta, data, python_version)


def _inspect_sdist(source: Path | BinaryIO, filename: str) -> DistInfo:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise Invalid(f"Invalid source distribution filename {filename!r}: {exc}") from None
    top = filename[: -len(".tar.gz")]
    wanted = f"{top}/PKG-INFO"
    data = None
    try:
        with gzip.open(source, "rb") as raw:
            reader = _Bounded(raw, SDIST_SCAN_LIMIT, filename)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                for count, member in enumerate(archive):
                    if count > SDIST_MEMBER_LIMIT:
                        break
                    if member.name.lstrip("./") == wanted and member.isfile():
                        if member.size > METADATA_LIMIT:
                            raise Invalid(f"Invalid distribution file {filename!r}: PKG-INFO is larger than {METADATA_LIMIT} bytes.")
                        fh = archive.extractfile(member)
                        data = fh.read(METADATA_LIMIT + 1) if fh else None
                        break
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise Invalid(f"Invalid distribution file {filename!r}: not a readable .tar.gz archive ({exc}).") from None
    if data is None:
        raise Invalid(f"Invalid distribution file {filename!r}: {wanted} is missing.")
    meta = _parse_metadata(data, filename)
    _check_name_version(meta, filename, name, version)
    expected = f"{canonicalize_name(meta.name).replace('-', '_')}-{meta.version}.tar.gz"
    if filename != expected:
        raise Invalid(f"Filename {filename!r} is invalid, should be {expected!r} (PEP 625).")
    return _info(filename, "sdist", meta, data, "source")


def _parse_metadata(data: bytes, filename: str) -> Metadata:
    if len(data) > METADATA_LIMIT:
        raise Invalid(f"Invalid distribution file {filename!r}: core metadata is larger than {METADATA_LIMIT} bytes.")
    raw, _unparsed = parse_email(data)
    try:
        return Metadata.from_raw(raw, validate=True)
    except* InvalidMetadata as group:
        reasons = "; ".join(str(e) for e in group.exceptions)
        raise Invalid(
            f"Invalid core metadata in {filename!r}: {reasons}. "
            "See the core metadata specification (packaging.python.org/specifications/core-metadata)."
        ) from None


def _check_name_version(meta: Metadata, filename: str, name: str, version: Version) -> None:
    if canonicalize_name(meta.name) != canonicalize_name(name):
        raise Invalid(f"Filename {filename!r} names project {name!r} but its metadata says {meta.name!r}.")
    if meta.version != version:
        raise Invalid(f"Version in filename should be {str(meta.version)!r} not {str(version)!r}.")


def _info(filename: str, packagetype: str, meta: Metadata, data: bytes, python_version: str) -> DistInfo:
    return DistInfo(
        filename=filename,
        packagetype=packagetype,
        name=meta.name,
        version=str(meta.version),
        python_version=python_version,
        requires_python=str(meta.requires_python) if meta.requires_python else None,
        metadata_version=meta.metadata_version,
        summary=(meta.summary or "")[:512],
        metadata=data,
    )


def _check_zip_ratio(archive: zipfile.ZipFile, filename: str) -> None:
    # The public index's zip-bomb rule: big archives that expand over 50x are refused.
    compressed = sum(i.compress_size for i in archive.infolist())
    expanded = sum(i.file_size for i in archive.infolist())
    if compressed >= 64 * 2**20 and expanded > 50 * compressed:
        raise Invalid(f"Invalid distribution file {filename!r}: it expands more than 50 times (a zip bomb?).")


class _Bounded(io.RawIOBase):
    """A reader that refuses to produce more than ``limit`` decompressed bytes."""

    def __init__(self, inner, limit: int, filename: str) -> None:
        self.inner, self.left, self.filename = inner, limit, filename

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise Invalid(f"Invalid distribution file {self.filename!r}: PKG-INFO not found within {SDIST_SCAN_LIMIT} bytes.")
        view = memoryview(buffer)[: self.left]
        data = self.inner.read(len(view))
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)
