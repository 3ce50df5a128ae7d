"""Core metadata (a wheel's METADATA, an sdist's PKG-INFO), read as leniently as installers read it.

packaging's validation is the reference, applied field by field. What an installer depends on is
refused when invalid: Name, Version, Requires-Dist, Requires-Python and a Metadata-Version of a
major version we know. Everything else it objects to becomes a warning on the file record: a field
newer than the declared Metadata-Version (setuptools 56-76 and hatchling < 1.22 write License-File
under 2.1), an unknown field, a malformed Description-Content-Type... pip and uv ignore those,
and the public index hosts millions of such files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

# packaging keeps these private; the public index imports them too. The suite would catch a rename.
from packaging.metadata import (
    _EMAIL_TO_RAW_MAPPING,
    _RAW_TO_EMAIL_MAPPING,
    _VALID_METADATA_VERSIONS,
    InvalidMetadata,
    Metadata,
    RawMetadata,
    parse_email,
)
from packaging.version import Version

from . import bounds
from .errors import Invalid

SPEC = "See packaging.python.org/specifications/core-metadata."
NEWEST = _VALID_METADATA_VERSIONS[-1]
# The Metadata-Version each field appeared in, as packaging dates them.
_ADDED = {key: Metadata.__dict__[key].added for key in _RAW_TO_EMAIL_MAPPING if key in Metadata.__dict__}

# Invalid values of these break installers, so they are refused (each with what to do). Checked on
# this pip and uv: both refuse a file whose Requires-Dist they can't parse; for Requires-Python pip
# warns and ignores it, but uv refuses the file ('3.6', 'foo') or guesses ('>=3.4.*'), so the two
# would install different things. Name and Version: pip >= 24.1 and uv accept only PEP 508/440.
_WHAT_TO_DO = {
    "name": "use letters, digits, '.', '-' and '_', starting and ending with a letter or digit, and rebuild",
    "version": "pip and uv install only PEP 440 versions (such as 1.0, 1.0.post1, 2.0rc1): rebuild with one",
    "requires-dist": "pip and uv refuse to install a file whose requirements they can't parse: "
                     "fix the requirement (PEP 508) and rebuild",
    "requires-python": "pip ignores an invalid Requires-Python while uv refuses the file or guesses at it, so "
                       "they would install different things: use a specifier such as '>=3.8' and rebuild",
}


@dataclass(frozen=True)
class CoreMetadata:
    metadata_version: str  # as declared
    name: str
    version: Version
    requires_python: str | None
    summary: str
    license_files: tuple[str, ...]
    warnings: tuple[str, ...]


def read(data: bytes, filename: str) -> CoreMetadata:
    """Parse ``data``, the core metadata of ``filename``; refuse what breaks installers, warn of the rest."""
    raw, unparsed = parse_email(data)
    _check_required(raw, unparsed, filename)
    warnings: list[str] = []
    refusals: list[str] = []
    declared = raw["metadata_version"]
    dated_as = _dating_version(declared, filename, warnings)
    for key in raw:
        added = _ADDED.get(key)
        if added and Version(added) > Version(dated_as):
            warnings.append(f"{_RAW_TO_EMAIL_MAPPING[key].title()} is a Metadata-Version {added} field; "
                            f"this file declares {declared}.")
    for key in unparsed:
        if key in _EMAIL_TO_RAW_MAPPING:
            warnings.append(f"{key.title()} could not be read (given more than once, malformed or not UTF-8); "
                            "it was ignored.")
        else:
            warnings.append(f"{key!r} is not a core metadata field; installers ignore it.")

    # Every value is checked as the newest Metadata-Version, so a field newer than the declared
    # version is still validated (packaging alone would skip it after saying it is too new).
    newest = {**raw, "metadata_version": NEWEST}
    try:
        Metadata.from_raw(newest, validate=True)  # type: ignore[arg-type]
    except* InvalidMetadata as group:
        for exc in _leaves(group):
            if exc.field in _WHAT_TO_DO:
                refusals.append(f"{exc}: {_WHAT_TO_DO[exc.field]}")
            elif exc.field == "license-file" and _escapes(raw.get("license_files", [])):
                refusals.append(f"{exc}: a License-File is a path inside the distribution; fix it and rebuild")
            else:
                warnings.append(f"{_sentence(str(exc))}; installers ignore it.")
    if refusals:
        raise _invalid(filename, refusals)
    meta = Metadata.from_raw(newest, validate=False)  # type: ignore[arg-type]
    summary = (raw.get("summary") or "").splitlines()
    return CoreMetadata(
        metadata_version=declared,
        name=meta.name,
        version=meta.version,
        requires_python=str(meta.requires_python) if meta.requires_python is not None else None,
        summary=(summary[0] if summary else "")[:512],
        license_files=tuple(raw.get("license_files", [])),
        warnings=tuple(warnings),
    )


def _leaves(group: BaseExceptionGroup[InvalidMetadata]) -> Iterator[InvalidMetadata]:
    """The errors a group holds, however they are nested."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _check_required(raw: RawMetadata, unparsed: dict[str, list[str]], filename: str) -> None:
    refusals = []
    for field in ("name", "version", "metadata-version"):
        if field in unparsed:
            refusals.append(f"{field.title()} is given more than once or isn't valid UTF-8, so installers can't "
                            "tell which is meant: fix it and rebuild")
        elif not raw.get(_EMAIL_TO_RAW_MAPPING[field]):
            refusals.append(f"{field.title()} is missing: every build backend writes it; rebuild the file")
    if len(raw.get("version") or "") > bounds.VERSION:  # (before packaging parses it: Python refuses huge ints)
        refusals.append(f"Versions are at most {bounds.VERSION} characters; this one has {len(raw['version'])}")
    if refusals:
        raise _invalid(filename, refusals)


def _dating_version(declared: str, filename: str, warnings: list[str]) -> str:
    """The Metadata-Version whose fields ``declared`` is read with (the same, when packaging knows it)."""
    if declared in _VALID_METADATA_VERSIONS:
        return declared
    match = re.fullmatch(r"(\d+)\.(\d+)", declared)
    newest_major, newest_minor = map(int, NEWEST.split("."))
    if match and (int(match[1]), int(match[2])) == (2, 0):
        # Written by bdist_wheel from 2013 to 2018, meaning what 2.1 later standardised.
        warnings.append("Metadata-Version 2.0 was never standardised (PEP 426 was withdrawn); "
                        "the file's fields were read as Metadata-Version 2.1 fields.")
        return "2.1"
    if match and int(match[1]) == newest_major and int(match[2]) > newest_minor:
        # The spec: a newer minor version only adds fields, which tools should warn of and ignore.
        warnings.append(f"Metadata-Version {declared} is newer than this registry knows ({NEWEST}); "
                        f"the file's fields were read as Metadata-Version {NEWEST} fields.")
        return NEWEST
    if match and int(match[1]) > newest_major:
        # The spec: tools must refuse a major version they don't know; its fields may mean other things.
        raise _invalid(filename, [f"Metadata-Version {declared} is a major version this registry doesn't know "
                                  f"(it reads up to {NEWEST}), and the core metadata specification says to "
                                  "refuse such files: build it with a backend that writes Metadata-Version 2.x"])
    raise _invalid(filename, [f"Metadata-Version {declared!r} is not a metadata version (they are "
                              f"{', '.join(_VALID_METADATA_VERSIONS)}): rebuild the file"])


def _escapes(paths: list[str]) -> bool:
    """Whether a License-File points outside the distribution: unsafe for tools that open it."""
    for path in paths:
        if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
            return True
        if ".." in PureWindowsPath(path).parts:  # splits on both '/' and '\'
            return True
    return False


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _invalid(filename: str, reasons: list[str]) -> Invalid:
    return Invalid(f"Invalid core metadata in {filename!r}: {'; '.join(reasons)}. {SPEC}")
