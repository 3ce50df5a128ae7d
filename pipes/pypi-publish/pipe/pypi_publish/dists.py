"""The distribution files a run publishes: built fresh, or taken from DIST_DIR, grouped by release."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename


@dataclass
class Dist:
    path: Path
    name: str  # normalised project name
    version: str
    size: int
    sha256: str
    state: str = "new"  # new | identical (already on the registry) | conflict (there with other bytes)
    uploaded: bool = False  # this run sent it and the registry stored it as new

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def release(self) -> tuple[str, str]:
        return self.name, self.version


class DistError(Exception):
    pass


def is_dist(path: Path) -> bool:
    return path.is_file() and (path.name.endswith(".whl") or path.name.endswith(".tar.gz"))


def inspect(path: Path) -> Dist:
    try:
        if path.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
        else:
            name, version = parse_sdist_filename(path.name)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise DistError(f"{path.name} is not a valid distribution filename: {exc}") from None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return Dist(path, str(name), str(version), path.stat().st_size, digest.hexdigest())


def collect(directory: Path) -> list[Dist]:
    if not directory.is_dir():
        raise DistError(f"DIST_DIR {directory} does not exist: build first, or pass the build step's artifacts.")
    found = sorted(p for p in directory.iterdir() if is_dist(p))
    if not found:
        raise DistError(f"DIST_DIR {directory} has no .whl or .tar.gz files to publish.")
    return [inspect(p) for p in found]


def releases(dists: list[Dist]) -> dict[tuple[str, str], list[Dist]]:
    grouped: dict[tuple[str, str], list[Dist]] = {}
    for d in dists:
        grouped.setdefault(d.release, []).append(d)
    return grouped
