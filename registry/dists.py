"""What a distribution file says about itself, checked the way installers read it.

What would break an installer or is unsafe is refused: a name or version that disagrees between
filename and metadata, an unreadable archive, members outside it, a zip bomb. Oddities that the
public index hosts by the million and that pip and uv install (legacy sdist names, .zip sdists,
non-normalised wheel names, fields newer than the declared Metadata-Version) are accepted and
recorded as warnings. The core metadata rules live in coremetadata.py.

Everything is read from the file (wheel METADATA, sdist PKG-INFO) within a `Budget` proportional to
the file's size: a zip or gzip bomb is refused once it has cost what an honest file of its size
could, and never more memory than the metadata. Filenames hold only what a real distribution's
name can (they end up in HTTP headers, URLs and pages).
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
from .errors import Invalid, size
from .model import PackageKind

METADATA_LIMIT = 10 * 2**20  # bytes of core metadata we are willing to read, whatever the file's size
EARLIER_SCAN_LIMIT, EARLIER_MEMBER_LIMIT = 2 * 2**30, 200_000  # the fixed bounds before budgets
# The budget per byte of the file, from what build backends produce (measured on the public index's
# newest sdists of attrs, babel, certifi, django, httpx, packaging, poetry-core, pydantic, pytz,
# requests and tzdata, and on the 124 wheels this project's test environment installs):
# - a .tar.gz sdist expands 2.2 to 9.4 times (tzdata, a zoneinfo tarball: many small files), and
#   hatchling, flit and poetry-core write PKG-INFO last, so the whole tar is read to find it;
#   a wheel expands at most 8.5 times. 50, the public index's own zip-bomb ratio, is 5 times that.
# - an sdist's member costs 250 compressed bytes or more (tzdata: 294), a wheel's 440: one member
#   per 64 bytes is 4 times that. (A tar member costs ~20 us to parse, a zip member ~8 us.)
# - a wheel's METADATA was at most 1.3 times the whole wheel (the largest: 109 KiB); prose deflates
#   ~4 times, so a wheel that is nothing but its METADATA stays under 8 times. (Parsing metadata
#   costs 8 ms per MiB of description, up to 0.6 s per MiB of Requires-Dist: the costliest byte.)
# The floors are what a tiny file may always cost (a tar pads to 10 KiB records; a README of 100 KiB
# is common): 10 ms decompressing, 20 ms of members, at worst 80 ms parsing metadata.
EXPANSION, EXPANSION_FLOOR = 50, 4 * 2**20
ZIP_BOMB_FROM = 64 * 2**20  # a zip's compressed size from which its declared expansion is checked (the public index's)
BYTES_PER_MEMBER, MEMBER_FLOOR = 64, 1000
METADATA_RATIO, METADATA_FLOOR = 8, 128 * 2**10
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
# What a real distribution's filename holds (binary distribution format; PEP 625 and older sdists):
# a project name (PEP 508: letters, digits, '.', '-', '_'), a version (PEP 440: also '+' and '!'),
# a wheel's build tag, and its tags: each of interpreter, ABI and platform a '.'-joined set of tags
# of ASCII letters, digits and '_' (cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64).
_WHEEL_NAME = re.compile(r"[A-Za-z0-9._]+")
_VERSION = re.compile(r"[A-Za-z0-9.+!_]+")
_BUILD = re.compile(r"[0-9][A-Za-z0-9_.]*")
_TAG_SET = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_SDIST_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*-[A-Za-z0-9.+!_]+")


@dataclass(frozen=True)
class Budget:
    """What inspecting one file may cost: decompressed bytes, archive members, core metadata parsed."""

    file_size: int
    expanded: int
    members: int
    metadata: int

    @classmethod
    def of(cls, size: int) -> Budget:
        """The budget of a file of ``size`` bytes (see EXPANSION above for the numbers)."""
        return cls(size, expanded=max(EXPANSION_FLOOR, EXPANSION * size),
                   members=max(MEMBER_FLOOR, size // BYTES_PER_MEMBER),
                   metadata=min(METADATA_LIMIT, max(METADATA_FLOOR, METADATA_RATIO * size)))

    @classmethod
    def recorded(cls, size: int) -> Budget:
        """For a file the ledger already holds, read again: bounds at least as loose as it was accepted
        within, by this release or an earlier one (fixed bounds, before budgets)."""
        budget = cls.of(size)
        return cls(size, expanded=max(EARLIER_SCAN_LIMIT, budget.expanded),
                   members=max(EARLIER_MEMBER_LIMIT, budget.members), metadata=METADATA_LIMIT)

    def refusal(self, filename: str, what: str, rule: str, remedy: str) -> Invalid:
        return Invalid(f"Invalid distribution file {filename!r}: {what}, over its inspection budget ({rule}, for "
                       f"a file of {size(self.file_size)}); {remedy} A decompression bomb is refused this way.")

    def too_expanded(self, filename: str, what: str) -> Invalid:
        return self.refusal(filename, f"{what} more than {size(self.expanded)}",
                            f"{EXPANSION} times the file's size, at least {size(EXPANSION_FLOOR)}",
                            "real distributions expand 2 to 10 times: leave large, highly compressible data out "
                            "of it (generate it at build or install time) and rebuild.")

    def too_many_members(self, filename: str) -> Invalid:
        return self.refusal(filename, f"it has more than {self.members} members",
                            f"one per {BYTES_PER_MEMBER} bytes of the file, at least {MEMBER_FLOOR}",
                            "leave the many tiny files out of it (or pack them into one) and rebuild.")

    def too_much_metadata(self, filename: str, member: str, length: int) -> Invalid:
        return self.refusal(filename, f"{member} is {size(length)}",
                            f"{METADATA_RATIO} times the file's size, at least {size(METADATA_FLOOR)}, at most "
                            f"{size(METADATA_LIMIT)}", "shorten its long description (the README it is read from) "
                            "and rebuild.")


@dataclass(frozen=True)
class DistInfo:
    filename: str
    packagetype: PackageKind
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


def check_filename(filename: str) -> PackageKind:
    """Refuse a filename a real distribution can't have (one that could escape a directory, confuse
    a client, or rewrite a header or page it appears in); return the packagetype."""
    kind = _kind(filename)
    if kind == "bdist_wheel":
        _check_wheel_filename(filename)
    else:
        _check_sdist_filename(filename)
    return kind


def _kind(filename: str) -> PackageKind:
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


def _check_wheel_filename(filename: str) -> None:
    parts = filename.removesuffix(".whl").split("-")
    rule = None
    if len(parts) not in (5, 6):
        rule = "a wheel's filename is name-version[-build]-python-abi-platform.whl"
    elif not _WHEEL_NAME.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[1]):
        rule = "its name and version are ASCII letters, digits, '.', '_' (and '+', '!' in a version)"
    elif len(parts) == 6 and not _BUILD.fullmatch(parts[2]):
        rule = "a build tag starts with a digit and holds ASCII letters, digits, '.' and '_'"
    elif bad := [part for part in parts[-3:] if not _TAG_SET.fullmatch(part)]:
        rule = (f"{bad[0]!r} is not a set of tags: each of python, abi and platform is one or more tags of ASCII "
                "letters, digits and '_', joined by '.' (as in cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64)")
    if rule is None:
        try:
            parse_wheel_filename(filename)
            return
        except InvalidWheelFilename as exc:
            rule = str(exc)
    raise Invalid(f"Invalid wheel filename {filename!r}: {rule} (binary distribution format). "
                  "Upload the wheel under the name its build tool gave it.")


def _check_sdist_filename(filename: str) -> None:
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz")
    rule = None
    if not _SDIST_STEM.fullmatch(stem):
        rule = ("a source distribution's filename is name-version.tar.gz, its name of ASCII letters, digits, '.', "
                "'-' and '_', its version of ASCII letters, digits, '.', '_', '+' and '!'")
    else:
        try:
            parse_sdist_filename(filename)
            return
        except InvalidSdistFilename as exc:
            rule = str(exc)
    raise Invalid(f"Invalid source distribution filename {filename!r}: {rule}. "
                  "Upload it under the name its build tool gave it.")


def same_wheel(a: str, b: str) -> bool:
    """Whether two wheel filenames are one wheel spelt two ways (e.g. ``Foo_Bar-1.0-...`` and ``foo_bar-1.0-...``):
    installers would see two copies of the same name, version, build and tags."""
    try:
        return a != b and parse_wheel_filename(a) == parse_wheel_filename(b)
    except InvalidWheelFilename:  # an sdist, or nothing we'd have accepted
        return False


def inspect(source: Path | BinaryIO, filename: str, *, recorded: bool = False) -> DistInfo:
    """Read and validate ``source`` (a path or a seekable binary file), a distribution uploaded as
    ``filename``, within the budget its size allows. ``recorded``: a file the ledger already holds,
    read again (for its metadata), by the fixed bounds alone and whatever its name."""
    packagetype = _kind(filename) if recorded else check_filename(filename)
    length = source.stat().st_size if isinstance(source, Path) else source.seek(0, io.SEEK_END)
    if not isinstance(source, Path):
        source.seek(0)
    budget = (Budget.recorded if recorded else Budget.of)(length)
    if packagetype == "bdist_wheel":
        return _inspect_wheel(source, filename, budget)
    return _inspect_sdist(source, filename, budget)


def _inspect_wheel(source: Path | BinaryIO, filename: str, budget: Budget) -> DistInfo:
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise Invalid(f"Invalid wheel filename {filename!r}: {exc}") from None
    name_part, version_part = filename.split("-")[:2]
    archive = _open_zip(source, filename, budget)
    with archive:
        dist_info = _dist_info_dir(archive, filename, name)
        members = {i.filename: i for i in archive.infolist()}
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{dist_info}/{required}" not in members:
                raise Invalid(f"Invalid distribution file {filename!r}: {dist_info}/{required} is missing.")
        data = _read_member(archive, members[f"{dist_info}/METADATA"], filename, budget)
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
        warnings.append(f"The filename's version {version_part!r} is not in normal form ({str(meta.version)!r}, "
                        "PEP 440).")
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


def _inspect_sdist(source: Path | BinaryIO, filename: str, budget: Budget) -> DistInfo:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        raise Invalid(f"Invalid source distribution filename {filename!r}: {exc}") from None
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz")
    read = _zip_pkg_info if filename.endswith(".zip") else _tar_pkg_info
    top, data = read(source, filename, budget)
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


def _tar_pkg_info(source: Path | BinaryIO, filename: str, budget: Budget) -> tuple[str, bytes]:
    """(top-level directory, PKG-INFO) of a .tar.gz sdist, reading no further than PKG-INFO."""
    try:
        with gzip.open(source, "rb") as raw:
            reader = _Bounded(raw, budget.expanded, lambda: budget.too_expanded(filename, "it decompresses to"))
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                for count, member in enumerate(archive, 1):
                    if count > budget.members:
                        raise budget.too_many_members(filename)
                    top = _pkg_info_top(member.name)
                    if top is not None and member.isfile():
                        _check_metadata_size(filename, "PKG-INFO", member.size, budget)
                        fh = archive.extractfile(member)
                        if fh is not None:
                            return top, fh.read(budget.metadata + 1)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise Invalid(f"Invalid distribution file {filename!r}: not a readable .tar.gz archive ({exc}).") from None
    raise _no_pkg_info(filename)


def _zip_pkg_info(source: Path | BinaryIO, filename: str, budget: Budget) -> tuple[str, bytes]:
    archive = _open_zip(source, filename, budget)
    with archive:
        for info in archive.infolist():
            top = _pkg_info_top(info.filename)
            if top is not None and not info.is_dir():
                return top, _read_member(archive, info, filename, budget)
    raise _no_pkg_info(filename)


def _pkg_info_top(member: str) -> str | None:
    """The top-level directory of an sdist member that is its PKG-INFO (``<top>/PKG-INFO``), else None."""
    parts = member.removeprefix("./").split("/")
    return parts[0] if len(parts) == 2 and parts[1] == "PKG-INFO" and parts[0] not in ("", ".", "..") else None


def _no_pkg_info(filename: str) -> Invalid:
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz")
    return Invalid(f"Invalid distribution file {filename!r}: {stem}/PKG-INFO is missing (an sdist holds one "
                   "top-level directory with its PKG-INFO; build it with python -m build or uv build).")


def _open_zip(source: Path | BinaryIO, filename: str, budget: Budget) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(source)  # (its central directory: at least 46 bytes an entry, read whole)
    except (zipfile.BadZipFile, OSError):
        raise Invalid(f"Invalid distribution file {filename!r}: it is not a zip archive.") from None
    try:
        if len(archive.infolist()) > budget.members:
            raise budget.too_many_members(filename)
        # What an installer would unpack: the public index's zip-bomb rule. (Only the metadata member is
        # ever decompressed here, within the metadata budget: the rest costs the registry nothing.)
        compressed = sum(i.compress_size for i in archive.infolist())
        if compressed >= ZIP_BOMB_FROM and sum(i.file_size for i in archive.infolist()) > EXPANSION * compressed:
            raise Invalid(f"Invalid distribution file {filename!r}: it expands more than {EXPANSION} times (a zip "
                          "bomb?); leave large, highly compressible data out of it and rebuild.")
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


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str, budget: Budget) -> bytes:
    _check_metadata_size(filename, info.filename, info.file_size, budget)
    try:
        with archive.open(info) as fh:  # (zipfile stops at the size the entry declares)
            return fh.read(budget.metadata + 1)
    # (zipfile raises NotImplementedError for a compression or encryption it lacks: a bad upload, not a crash)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise Invalid(f"Invalid distribution file {filename!r}: {info.filename} can't be read ({exc}).") from None


def _check_metadata_size(filename: str, member: str, length: int, budget: Budget) -> None:
    if length > METADATA_LIMIT:
        raise Invalid(f"Invalid distribution file {filename!r}: {member} is larger than {METADATA_LIMIT} bytes.")
    if length > budget.metadata:
        raise budget.too_much_metadata(filename, member, length)


def _check_name_version(meta: coremetadata.CoreMetadata, filename: str, name: str, version: Version) -> None:
    if canonicalize_name(meta.name) != canonicalize_name(name):
        raise Invalid(f"Filename {filename!r} names project {name!r} but its metadata says {meta.name!r}.")
    if meta.version != version:
        raise Invalid(f"Version in filename should be {str(meta.version)!r} not {str(version)!r}.")


def _info(filename: str, packagetype: PackageKind, meta: coremetadata.CoreMetadata, data: bytes, python_version: str,
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


class _Bounded(io.RawIOBase):
    """A reader that refuses (with ``refusal()``) to produce more than ``limit`` decompressed bytes."""

    def __init__(self, inner, limit: int, refusal) -> None:
        self.inner, self.left, self.refusal = inner, limit, refusal

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise self.refusal()
        view = memoryview(buffer)[: self.left]
        data = self.inner.read(len(view))
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)
