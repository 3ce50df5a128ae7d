"""The import loop: files from a source, each checked and committed as an upload is.

A source lists `Candidate`s (a filename, where its bytes are, what the source says about them) and
fetches one into a `Staged` blob. The loop first sorts out, against one snapshot and without any
transfer, what is already here (skipped), taken by other bytes (conflict) or spent (refused); then
fetches the rest a few at a time while one thread inspects and commits them, one commit per file,
through the very `publish_file` an upload goes through. Re-running resumes where a run stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from .. import dists, layout
from ..blobs import Staged
from ..datadir import Registry
from ..errors import Conflict, FileExists, FilenameSpent, RegistryError
from ..identity import Principal
from ..model import Channel, DeletedFiles, DistFile, Package
from ..operations import create_package, publish_file
from ..permissions import repository_context
from ..reads.records import get_package, versions

CHANNEL: Channel = "import"
Status = Literal["imported", "skipped", "refused", "conflict"]


@dataclass(frozen=True)
class Candidate:
    filename: str
    location: str  # where the bytes are, as recorded: a path, or a URL without credentials
    project: str | None = None  # the normalised name, when the source or the filename tells
    hashes: dict[str, str] = field(default_factory=dict)  # hashlib name -> hex digest, as the source gives them
    upload_time: datetime | None = None  # the source's PEP 700 upload-time, in UTC
    url: str | None = None  # what to fetch, if not `location`
    size: int | None = None
    error: str | None = None  # why the source can't give this file (refused without a transfer)


@dataclass(frozen=True)
class Outcome:
    status: Status
    filename: str
    reason: str = ""
    size: int = 0


@dataclass
class Summary:
    source: str
    total: int = 0
    ignored: int = 0  # files of the source that aren't distributions
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("imported", "skipped", "refused", "conflict"), 0))
    problems: list[Outcome] = field(default_factory=list)  # refused and conflicts, in order
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.counts["refused"] == 0 and self.counts["conflict"] == 0


class Sink(Protocol):
    def write(self, chunk: bytes) -> None: ...


class Source(Protocol):
    name: str  # what the summary and errors call it

    async def candidates(self) -> tuple[list[Candidate], int]:
        """Every file to import, and how many files were ignored; RegistryError if it can't be read."""

    async def fetch(self, c: Candidate, sink: Sink) -> None:
        """Write the file's bytes into ``sink``; RegistryError (refusing this file) if it can't."""

    def sha256(self, c: Candidate) -> str | None:
        """The file's sha256 if it can be had without a transfer, to skip a file we hold already."""

    async def close(self) -> None: ...


class _Known:
    """What the ledger holds for the projects a source names, read once from one snapshot."""

    def __init__(self, reg: Registry, ws: str) -> None:
        self.snap, self.ws = reg.snapshot(), ws
        self._projects: dict[str, tuple[Package | None, dict[str, DistFile], DeletedFiles | None]] = {}

    def project(self, name: str) -> tuple[Package | None, dict[str, DistFile], DeletedFiles | None]:
        """The package of that name (if any), its files by filename, and the filenames it spent."""
        if name not in self._projects:
            files = {f.filename: f for v in versions(self.snap, self.ws, name) for f in v.files}
            self._projects[name] = (get_package(self.snap, self.ws, name), files,
                                    self.snap.get(layout.deleted_files(self.ws, name), DeletedFiles))
        return self._projects[name]


SPENT = "this filename was used by a file since deleted here; filenames are never reused"
SAME = "already here, same bytes"


def _linked_elsewhere(package: Package, repo: str) -> str | None:
    """Why a package's files can't be imported with ``repo``, if they can't."""
    return None if package.repository == repo else (
        f"package {package.name!r} exists, linked to repository {package.workspace}/{package.repository}, "
        f"not {repo}: import it with --repo {package.repository}")


def precheck(known: _Known, repo: str, c: Candidate, sha256: Callable[[Candidate], str | None]) -> Outcome | None:
    """What becomes of ``c`` without fetching it, if that can be told; None: fetch it."""
    if c.error:
        return Outcome("refused", c.filename, c.error)
    if c.project is None:
        return None
    package, files, spent = known.project(c.project)
    if package is not None and (linked := _linked_elsewhere(package, repo)):
        return Outcome("conflict", c.filename, linked)
    if spent is not None and c.filename in spent.files:
        return Outcome("refused", c.filename, SPENT)
    held = files.get(c.filename)
    if held is None:
        return None
    digest = sha256(c)
    if digest == held.sha256:
        return Outcome("skipped", c.filename, SAME)
    if digest is not None:
        return Outcome("conflict", c.filename, f"already here with other bytes (sha256 {held.sha256[:16]}..., "
                                               f"the source's {digest[:16]}...); not replaced")
    return None


def commit(reg: Registry, who: Principal, ws: str, repo: str, c: Candidate, staged: Staged) -> Outcome:
    """Inspect a fetched file and publish it as an upload would be (run on one thread only)."""
    try:
        with staged.open() as content:
            dist = dists.inspect(content, c.filename)
        package = get_package(reg.snapshot(), ws, dist.canonical_name)
        if package is None:
            try:
                package = create_package(reg, who, CHANNEL, ws, dist.name, repo)
            except Conflict:  # created meanwhile, by someone else
                package = get_package(reg.snapshot(), ws, dist.canonical_name)
        if package is not None and (linked := _linked_elsewhere(package, repo)):  # (None: deleted meanwhile)
            return Outcome("conflict", c.filename, linked)
        staged.make_durable()
        published = publish_file(reg, who, CHANNEL, ws, dist, staged, wait=60.0, upload_time=c.upload_time,
                                 source=c.location)
    except FileExists:
        return Outcome("conflict", c.filename, "already here with other bytes; not replaced")
    except FilenameSpent:
        return Outcome("refused", c.filename, SPENT)
    except RegistryError as exc:
        return Outcome("refused", c.filename, exc.message)
    if published.existing:
        return Outcome("skipped", c.filename, SAME)
    return Outcome("imported", c.filename, f"{published.package.name} {published.version.version}",
                   published.file.size)


def _verify(c: Candidate, staged: Staged, extra: dict[str, hashlib._Hash]) -> None:
    digests = staged.finish(sync=False)
    ours = {"sha256": digests.sha256, "md5": digests.md5, **{n: h.hexdigest() for n, h in extra.items()}}
    for name, value in c.hashes.items():
        if name in ours and ours[name] != value.lower():
            raise RegistryError(f"the download doesn't match the {name} the source gives ({value[:16]}..., "
                                f"got {ours[name][:16]}...): not imported")


class _Hashing:
    """A Staged that also computes the hashes the source gives that a Staged doesn't."""

    def __init__(self, staged: Staged, names: Iterable[str]) -> None:
        self.staged = staged
        self.extra = {n: hashlib.new(n) for n in names
                      if n not in ("sha256", "md5") and n in hashlib.algorithms_available}

    def write(self, chunk: bytes) -> None:
        self.staged.write(chunk)
        for h in self.extra.values():
            h.update(chunk)


async def run(reg: Registry, who: Principal, ws: str, repo: str, source: Source, *,
              concurrency: int = 4, on_start: Callable[[int], None] = lambda total: None,
              on_file: Callable[[Outcome], None] = lambda outcome: None) -> Summary:
    """Import every file ``source`` lists into workspace ``ws``, linking new packages to ``repo``.
    Bad input (no such workspace or repository, a source that can't be read) is a RegistryError
    raised before anything is committed; a file that can't be imported is an outcome."""
    summary = Summary(source=source.name)
    try:
        repository_context(reg.snapshot(), ws, repo)  # (NotFound, saying which)
        found, summary.ignored = await source.candidates()
        summary.source = source.name  # (an index's, as found: its Simple API, not the front page given)
        summary.total = len(found)
        on_start(summary.total)

        def done(outcome: Outcome) -> None:
            summary.counts[outcome.status] += 1
            summary.bytes += outcome.size
            if outcome.status in ("refused", "conflict"):
                summary.problems.append(outcome)
            on_file(outcome)

        known, wanted = _Known(reg, ws), []
        for c in found:
            outcome = precheck(known, repo, c, source.sha256)
            if outcome is None:
                wanted.append(c)
            else:
                done(outcome)
        loop = asyncio.get_running_loop()
        transfers = asyncio.Semaphore(concurrency)

        async def fetch(c: Candidate) -> Staged | Outcome:
            staged = reg.blobs.stage(reg.settings.max_upload_bytes)
            try:
                async with transfers:
                    hashing = _Hashing(staged, c.hashes)
                    await source.fetch(c, hashing)
                    _verify(c, staged, hashing.extra)
                return staged
            except BaseException as exc:
                staged.discard()
                if isinstance(exc, RegistryError):
                    return Outcome("refused", c.filename, exc.message)
                raise

        # Files are committed in the source's order (so the ledger's history reads in it), while
        # the next few are fetched: at most `4 * concurrency` wait, fetched, in memory or staged.
        ahead: deque[tuple[Candidate, asyncio.Task]] = deque()
        queue = iter(wanted)
        with ThreadPoolExecutor(1, thread_name_prefix="import-commit") as committer:
            try:
                while True:
                    while len(ahead) < 4 * concurrency and (following := next(queue, None)) is not None:
                        ahead.append((following, asyncio.create_task(fetch(following))))
                    if not ahead:
                        break
                    c, task = ahead.popleft()
                    staged = await task
                    if isinstance(staged, Outcome):
                        done(staged)
                        continue
                    with staged:
                        done(await loop.run_in_executor(committer, commit, reg, who, ws, repo, c, staged))
            finally:
                for _, task in ahead:
                    task.cancel()
    finally:
        await source.close()
    summary.elapsed = time.monotonic() - summary.started
    return summary
