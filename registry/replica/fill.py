"""Every file a replica's ledger references, in its own store, whatever happened meanwhile.

The worker that follows keeps a cursor, `replica/files-cursor`: the commit up to which every file the
ledger references (at its head) is in this replica's store, durably. It walks the commits after it,
oldest first, and fetches each file a publish added that the head still references and the store
lacks (blobs.py). A restart, an outage of the primary, a crash in the middle: the next round starts
from the cursor, so the replica converges to holding every file, however it got behind. A fetch that
fails is tried again, with backoff up to RETRY_MAX (sooner when the head moves); /_/health says how
many files are missing, the cursor and the last error. On the primary's own bucket every file is
found there, and nothing is fetched.

The cursor may lag what is durable, never run ahead of it (a power cut must not leave it past a
file that isn't there):
- a file fetched here is durable when it is adopted (the data directory's store fsyncs the file and
  its directory; a bucket's PUT is durable once answered);
- a file found there already (fetched by a reader's first request, or by a round a crash cut short)
  is checked whole (its size; on this disk its sha256 too, once per process) and then fsynced with its
  directory before the cursor passes it (a torn one is fetched again);
- the cursor itself is written to a temporary file, fsynced, renamed over the old one, and its
  directory fsynced.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field

import anyio
import pygit2
from pygit2.enums import SortMode

from .. import layout
from ..audit import Action, T, action
from ..errors import RegistryError
from ..fsync import fsync_all, fsync_path, write_file
from ..ledger.commits import Commit
from ..maintenance import referenced_blobs
from ..model import UpstreamFile
from ..reads.records import get_version
from .blobs import ensure_local

log = logging.getLogger("registry.replica")
CURSOR = "files-cursor"
RETRY_FIRST, RETRY_MAX = 1.0, 10.0  # seconds between rounds while files are missing
WATCH = 0.2  # seconds between looks at the head (a stat each)
HASH_CHUNK = 2**20


@dataclass
class Round:
    cursor: str | None  # where the cursor is after the round
    missing: int = 0
    error: str | None = None
    fetched: int = 0
    found: list[str] = field(default_factory=list)  # files found whole, to sync before the cursor passes them


class Filler:
    def __init__(self, reg, follower) -> None:
        self.reg = reg
        self.follower = follower
        self.path = follower.dir / CURSOR
        self._whole: set[str] = set()  # files on this disk hashed whole by this process
        self._referenced: set[str] | None = None  # every file at the head, for commits without trailers

    # --- the cursor ------------------------------------------------------------------------------

    def cursor(self) -> str | None:
        """The cursor, if it names a commit this ledger holds (else: from the first commit)."""
        try:
            commit = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        repo = self.reg.ledger.repo()
        try:
            return commit if len(commit) == 40 and commit in repo else None
        except (ValueError, pygit2.GitError):
            return None

    def _advance(self, to: str, found: list[str]) -> None:
        """Move the cursor to ``to``, once what it vouches for is durable."""
        local = [p for p in (self.reg.blobs.local_path(sha) for sha in found) if p is not None]
        fsync_all([*local, *{p.parent for p in local}])
        temp = self.path.with_name(f"{CURSOR}.{os.getpid()}.tmp")
        write_file(temp, f"{to}\n".encode(), exclusive=False, sync=True)
        os.replace(temp, self.path)
        fsync_path(self.path.parent)

    # --- what is wanted ------------------------------------------------------------------------

    def wanted(self, cursor: str | None, head: str) -> list[tuple[str, list[tuple[str, int]]]]:
        """The commits after ``cursor`` up to ``head``, oldest first, each with the files (sha256,
        size) it published that ``head`` still references."""
        repo = self.reg.ledger.repo()
        walker = repo.walk(head, SortMode.TOPOLOGICAL | SortMode.REVERSE)
        if cursor:
            walker.hide(cursor)
        snap = self.reg.ledger.snapshot_at(head)
        self._referenced = None
        out = []
        for c in walker:
            commit = Commit.of(c)
            files = []
            if action(commit) in (Action.PUBLISH, Action.FETCH_UPSTREAM):
                for sha in commit.trailers_named(T.SHA256):
                    size = self._size_at_head(snap, commit, sha)
                    if size is not None:
                        files.append((sha, size))
            out.append((commit.id, files))
        return out

    def _size_at_head(self, snap, commit: Commit, sha: str) -> int | None:
        """The file's size if the head still references it (None: deleted since; -1: size unknown)."""
        ws, package, version = (commit.trailer(k) for k in (T.WORKSPACE, T.PACKAGE, T.VERSION))
        if action(commit) == Action.FETCH_UPSTREAM and ws and package:
            fetched = snap.get(layout.upstream_file(ws, package, commit.trailer(T.FILE) or "-"), UpstreamFile)
            return fetched.size if fetched is not None and fetched.sha256 == sha else None
        if ws and package and version:
            record = get_version(snap, ws, package, version)
            return next((f.size for f in record.files if f.sha256 == sha), None) if record else None
        if self._referenced is None:  # (a commit from before publishes named their package: look it all up once)
            self._referenced = referenced_blobs(snap)
        return -1 if sha in self._referenced else None

    def _state(self, sha: str, size: int) -> str:
        """"whole", "absent" or "torn" (there, but not what its name says)."""
        blobs = self.reg.blobs
        path = blobs.local_path(sha)
        if path is None and not blobs.remote:
            return "absent"
        if path is None:
            try:
                return "whole" if size < 0 or blobs.size(sha) == size else "torn"
            except FileNotFoundError:
                return "absent"
        try:
            if size >= 0 and path.stat().st_size != size:
                return "torn"
            if sha not in self._whole:
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    while chunk := fh.read(HASH_CHUNK):
                        digest.update(chunk)
                if digest.hexdigest() != sha:
                    return "torn"
                self._whole.add(sha)
        except FileNotFoundError:
            return "absent"
        return "whole"

    # --- a round ---------------------------------------------------------------------------------

    async def round(self) -> Round:
        """Fetch what the commits after the cursor lack, and move the cursor as far as is whole."""
        head = self.reg.ledger.head()
        cursor = await anyio.to_thread.run_sync(self.cursor)
        commits = await anyio.to_thread.run_sync(self.wanted, cursor, head)
        done = Round(cursor=cursor)
        reachable = True
        for commit_id, files in commits:
            for sha, size in files:
                state = await anyio.to_thread.run_sync(self._state, sha, size)
                if state == "whole":
                    done.found.append(sha)
                    continue
                if reachable:
                    try:
                        await ensure_local(self.reg, sha, again=state == "torn")
                        done.fetched += 1
                        continue
                    except RegistryError as exc:  # (kept going: other files may be had; the primary gone, not)
                        done.error = exc.message
                        reachable = exc.status != 503
                done.missing += 1
            if not done.missing:
                done.cursor = commit_id
        if done.cursor is not None and done.cursor != cursor:
            await anyio.to_thread.run_sync(self._advance, done.cursor, done.found)
            self._whole.clear()  # (the cursor vouches for them now)
        return done

    async def run(self) -> None:
        """Rounds for ever: at once when the head moves, and with backoff while files are missing."""
        retry, seen, due = RETRY_FIRST, None, 0.0
        while True:
            head = self.reg.ledger.head()
            if head == seen and time.monotonic() < due:
                await anyio.sleep(WATCH)
                continue
            seen = head
            try:
                done = await self.round()
            except Exception as exc:  # (a bucket that fails, say: said in /_/health, tried again)
                log.exception("replica: fetching the files the ledger references failed")
                error = f"{type(exc).__name__}: {exc}"
                await anyio.to_thread.run_sync(functools.partial(self.follower.files_seen, error=error))
                due, retry = time.monotonic() + retry, min(retry * 2, RETRY_MAX)
                continue
            await anyio.to_thread.run_sync(functools.partial(
                self.follower.files_seen, cursor=done.cursor, missing=done.missing, error=done.error))
            if done.fetched:
                log.info("replica: fetched %d file(s) from the primary; %d missing", done.fetched, done.missing)
            if done.missing:
                log.warning("replica: %d file(s) missing here (%s); trying again in %.0f s or when the ledger moves",
                            done.missing, done.error, retry)
                due, retry = time.monotonic() + retry, min(retry * 2, RETRY_MAX)
            else:
                due, retry = float("inf"), RETRY_FIRST
