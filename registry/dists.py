"""What a distribution file says about itself, checked the way installers read it.

What would break an installer or is unsafe is refused: a name or version that disagrees between
filename and metadata, an unreadable archive, members outside it, a zip bomb. Oddities that the
public index hosts by the million and that pip and uv install (legacy sdist names, .zip sdists,
non-normalised wheel names, fields newer than the declared Metadata-Version) are accepted and
recorded as warnings. The core metadata rules live in coremetadata.py.

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
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from . import coremetadata
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
    warnings: tuple[str, ...] = ()  # what was odd but accepted, one sentence each

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
    if filename.endswith((".tar.gz", ".zip")):  # .zip: what older tools wrote; pip and uv install it
        return "sdist"
    if filename.endswith((".tar.bz2", ".tgz", ".tar", ".egg", ".exe", ".msi", ".rpm", ".dmg", ".deb")):
        raise Invalid(
            f"Invalid file extension in {filename!r}: only wheels (.whl) and source distributions (.tar.gz, "
            "or .zip) are accepted (PEP 527). Rebuild with a current build tool (python -m build, uv build)."
        )
    raise Invalid(f"Invalid file extension in {filename!r}: use .whl for wheels or .tar.gz for source distributions.")


def same_wheel(a: str, b: str) -> bool:
    """Whether two wheel filenames are one wheel spelt two ways (e.g. ``Foo_Bar-1.0-...`` and ``foo_bar-1.0-...``):
    installers would see two copies of the same name, version, build and tags."""
    try:
        return a != b and parse_wheel_filename(a) == parse_wheel_filename(b)
    except InvalidWheelFilename:  # an sdist, or nothing we'd have accepted
        return False


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
    archive = _open_zip(source, filename)
    with archive:
        dist_info = _dist_info_dir(archive, filename, name)
        members = {i.filename: i for i in archive.infolist()}
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{dist_info}/{required}" not in members:
                raise Invalid(f"Invalid distribution file {filename!r}: {dist_info}/{required} is missing.")
        data = _read_member(archive, members[f"{dist_info}/METADATA"], filename)
    meta = coremetadata.read(data, filename)
    _check_name_version(meta, filename, name, version)
    warnings = list(meta.warnings)
    expected = canonicalize_name(meta.name).replace("-", "_")
    if name_part != expected:
        # The public index refuses these for new uploads; older tools wrote them (setuptools 69 still
        # does for a dotted name), and many are published.
        warnings.append(f"Wheel filenames carry the normalised project name ({expected!r}, binary distribution "
                        f"format); this one has {name_part!r}. pip and uv read either.")
    if version_part != str(meta.version):
        warnings.append(f"The filename's version {version_part!r} is not in normal form ({str(meta.version)!r}, PEP 440).")
    if dist_info != f"{name_part}-{version_part}.dist-info":
        warnings.append(f"The wheel's metadata directory is {dist_info!r}, not {name_part}-{version_part}.dist-info "
                        "as its filename implies.")
    if Version(meta.metadata_version) >= Version("2.4"):
        for path in meta.license_files:
            if f"{dist_info}/licenses/{path}" not in members:
                warnings.append(f"License-File {path} is not in the wheel at {dist_info}/licenses/{path} "
                                "(Metadata-Version 2.4).")
    python_version = ".".join(sorted({t.interpreter for t in tags}))
    return _info(filename, "bdist_wheel", meta, data, python_version, warnings)


def _inspect_sdist(source: Path | BinaryIO, filename: str) -> DistInfo:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise Invalid(f"Invalid source distribution filename {filename!r}: {exc}") from None
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz")
    top, data = _zip_pkg_info(source, filename) if filename.endswith(".zip") else _tar_pkg_info(source, filename)
    meta = coremetadata.read(data, filename)
    _check_name_version(meta, filename, name, version)
    warnings = list(meta.warnings)
    expected = f"{canonicalize_name(meta.name).replace('-', '_')}-{meta.version}.tar.gz"
    if filename != expected:
        # Refused by the public index for new uploads since PEP 625; millions of older ones are there.
        what = "a .zip" if filename.endswith(".zip") else "a legacy name"
        warnings.append(f"Source distribution filenames are {expected!r} since PEP 625 (normalised name, .tar.gz); "
                        f"this one is {filename!r}, {what} as older tools wrote. pip and uv install it, and it is "
                        "served under the name it was uploaded with.")
    if top != stem:
        warnings.append(f"PKG-INFO is in {top + '/'!r}, not in {stem + '/'!r} as the filename implies.")
    return _info(filename, "sdist", meta, data, "source", warnings)


def _tar_pkg_info(source: Path | BinaryIO, filename: str) -> tuple[str, bytes]:
    """(top-level directory, PKG-INFO) of a .tar.gz sdist, reading no further than PKG-INFO."""
    try:
        with gzip.open(source, "rb") as raw:
            reader = _Bounded(raw, SDIST_SCAN_LIMIT, filename)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                for count, member in enumerate(archive):
                    if count > SDIST_MEMBER_LIMIT:
                        break
                    top = _pkg_info_top(member.name)
                    if top is not None and member.isfile():
                        if member.size > METADATA_LIMIT:
                            raise Invalid(f"Invalid distribution file {filename!r}: PKG-INFO is larger than {METADATA_LIMIT} bytes.")
                        fh = archive.extractfile(member)
                        if fh is not None:
                            return top, fh.read(METADATA_LIMIT + 1)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise Invalid(f"Invalid distribution file {filename!r}: not a readable .tar.gz archive ({exc}).") from None
    raise _no_pkg_info(filename)


def _zip_pkg_info(source: Path | BinaryIO, filename: str) -> tuple[str, bytes]:
    archive = _open_zip(source, filename)
    with archive:
        for count, info in enumerate(archive.infolist()):
            if count > SDIST_MEMBER_LIMIT:
                break
            top = _pkg_info_top(info.filename)
            if top is not None and not info.is_dir():
                return top, _read_member(archive, info, filename)
    raise _no_pkg_info(filename)


def _pkg_info_top(member: str) -> str | None:
    """The top-level directory of an sdist member that is its PKG-INFO (``<top>/PKG-INFO``), else None."""
    parts = member.removeprefix("./").split("/")
    return parts[0] if len(parts) == 2 and parts[1] == "PKG-INFO" and parts[0] not in ("", ".", "..") else None


def _no_pkg_info(filename: str) -> Invalid:
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz")
    return Invalid(f"Invalid distribution file {filename!r}: {stem}/PKG-INFO is missing (an sdist holds one "
                   "top-level directory with its PKG-INFO; build it with python -m build or uv build).")


def _open_zip(source: Path | BinaryIO, filename: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise Invalid(f"Invalid distribution file {filename!r}: it is not a zip archive.") from None
    try:
        _check_zip_ratio(archive, filename)
        _check_member_paths(archive, filename)
    except Invalid:
        archive.close()
        raise
    return archive


def _dist_info_dir(archive: zipfile.ZipFile, filename: str, name: str) -> str:
    """The wheel's one top-level ``.dist-info`` directory, named for the project (pip's and uv's rule)."""
    found = sorted({i.filename.split("/", 1)[0] for i in archive.infolist()
                    if "/" in i.filename and i.filename.split("/", 1)[0].endswith(".dist-info")})
    if len(found) != 1:
        what = "none" if not found else ", ".join(found)
        raise Invalid(f"Invalid distribution file {filename!r}: a wheel has exactly one top-level .dist-info "
                      f"directory (found {what}); pip and uv refuse it otherwise. Rebuild the wheel.")
    project = found[0].removesuffix(".dist-info").rsplit("-", 1)[0]
    if canonicalize_name(project) != name:
        raise Invalid(f"Invalid distribution file {filename!r}: its metadata directory {found[0]!r} is not "
                      f"for project {name!r}; pip and uv refuse it. Rebuild the wheel.")
    return found[0]


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str) -> bytes:
    if info.file_size > METADATA_LIMIT:
        raise Invalid(f"Invalid distribution file {filename!r}: {info.filename} is larger than {METADATA_LIMIT} bytes.")
    try:
        with archive.open(info) as fh:
            return fh.read(METADATA_LIMIT + 1)
    # (zipfile raises NotImplementedError for a compression or encryption it lacks: a bad upload, not a crash)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise Invalid(f"Invalid distribution file {filename!r}: {info.filename} can't be read ({exc}).") from None


def _check_name_version(meta: coremetadata.CoreMetadata, filename: str, name: str, version: Version) -> None:
    if canonicalize_name(meta.name) != canonicalize_name(name):
        raise Invalid(f"Filename {filename!r} names project {name!r} but its metadata says {meta.name!r}.")
    if meta.version != version:
        raise Invalid(f"Version in filename should be {str(meta.version)!r} not {str(version)!r}.")


def _info(filename: str, packagetype: str, meta: coremetadata.CoreMetadata, data: bytes, python_version: str,
          warnings: list[str]) -> DistInfo:
    return DistInfo(
        filename=filename,
        packagetype=packagetype,
        name=meta.name,
        version=str(meta.version),
        python_version=python_version,
        requires_python=meta.requires_python,
        metadata_version=meta.metadata_version,
        summary=meta.summary,
        metadata=data,
        warnings=tuple(warnings),
    )


def _check_member_paths(archive: zipfile.ZipFile, filename: str) -> None:
    # pip and uv refuse to unpack a member outside the target directory; so do we, at upload.
    for info in archive.infolist():
        path = PureWindowsPath(info.filename)  # splits on '/' and '\\' alike
        if path.is_absolute() or path.drive or info.filename.startswith(("/", "\\")) or ".." in path.parts:
            raise Invalid(f"Invalid distribution file {filename!r}: member {info.filename!r} points outside the "
                          "archive (an absolute path or '..'); installers refuse to unpack it. Rebuild the file.")


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
