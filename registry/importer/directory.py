"""A directory of distribution files as a source for `registry import`."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import parse_sdist_filename, parse_wheel_filename

from ..errors import RegistryError
from .core import Candidate, Sink

# What may be a distribution: dists.inspect decides whether it is one we accept (anything else,
# like signatures, `.metadata` files or a devpi export's JSON, is not looked at).
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz", ".tar", ".egg", ".exe", ".msi")
IGNORED_SUFFIXES = (".doc.zip",)  # devpi's documentation archives


class DirectorySource:
    """A directory of files, searched recursively (a pypiserver package directory, a `pip
    download` directory, a devpi export): hidden files and directories are left out, as pypiserver
    does. A file's time says nothing reliable about when it was uploaded (a copy or a `pip download`
    sets it to now), so none is kept, unless ``mtime_is_upload_time`` says it does (pypiserver's
    own package directory: it writes each file as it is uploaded, and the copy kept the times)."""

    def __init__(self, root: Path, *, mtime_is_upload_time: bool = False) -> None:
        self.root = Path(root).absolute()
        self.name = str(self.root)
        self.mtime_is_upload_time = mtime_is_upload_time

    async def candidates(self) -> tuple[list[Candidate], int]:
        if not self.root.is_dir():
            raise RegistryError(f"{self.root} is not a directory: give a directory of distribution files, "
                                "or --index-url URL to import from another index.")
        found, ignored = [], 0
        for top, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(top) / name
                if name.startswith(".") or not name.endswith(DIST_SUFFIXES) or name.endswith(IGNORED_SUFFIXES):
                    ignored += 1
                    continue
                stamp = None
                if self.mtime_is_upload_time:
                    stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                found.append(Candidate(filename=name, location=str(path), project=project_of(name), upload_time=stamp))
        return found, ignored

    async def fetch(self, c: Candidate, sink: Sink) -> None:
        def read() -> None:
            with open(c.location, "rb") as fh:
                while chunk := fh.read(2**20):
                    sink.write(chunk)

        try:
            await asyncio.to_thread(read)
        except OSError as exc:
            raise RegistryError(f"can't read {c.location}: {exc.strerror}") from None

    def sha256(self, c: Candidate) -> str | None:
        digest = hashlib.sha256()
        try:
            with open(c.location, "rb") as fh:
                while chunk := fh.read(2**20):
                    digest.update(chunk)
        except OSError:
            return None
        return digest.hexdigest()

    async def close(self) -> None:
        pass


def project_of(filename: str) -> str | None:
    """The normalised project name a wheel's or sdist's filename gives, if it parses."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[0]
        return parse_sdist_filename(filename)[0]
    except ValueError:  # (packaging's Invalid*Filename errors are ValueErrors)
        return None
