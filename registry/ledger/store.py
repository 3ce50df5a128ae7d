"""The ledger: a bare git repository whose `main` branch is the registry's entire state.

Readers take a `Snapshot` (a commit and its tree); writers call `transact(build)`, where `build`
reads the snapshot at the current tip and returns a `Change` (writing.py). Writers in every process
and thread serialise on a flock, and the branch moves with a compare-and-swap once the commit's
journal record (which carries its pack and small files, see journal.py) is fsynced, so a returned
commit is durable and no commit is ever lost or duplicated. After a crash, opening replays the
journal (recovery.py); packs are folded in the background (repack.py). The ledger knows paths and
bytes, never what they mean.

`Ledger` is made of parts that are each given what they use: the branch and its write lock
(`Branch`), the journal, the writer (`Writer`), checkpoints and recovery, the packs' folding
(`Repacker`); it keeps each thread's repository for reading.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import ObjectType, SortMode

from .. import metrics
from ..cache import default_bound
from ..fsync import fsync_all, make_dirs
from . import guard
from .branch import BRANCH, REF, Branch, Moves
from .commits import Change, Commit, Committed, Signer, commit_at
from .journal import DamageLog, Journal
from .packs import Recent, RecentObjects
from .recovery import Checkpoints, recover
from .repack import LOOSE_LIMIT, PACK_LIMIT, PackWatch, Repacker
from .snapshot import Snapshot
from .trees import write_tree
from .writing import Build, Writer, _bytes

log = logging.getLogger("registry.ledger")

# A commit is acknowledged only once durable. libgit2 could fsync each loose object as it writes
# it; instead `transact` writes a commit's objects as one pack (see packs.py) and makes it durable
# with one fsync of the journal record that carries it (journal.py).
pygit2.settings.enable_fsync_gitdir(False)
# libgit2 would check that every id a tree entry or ref points at exists, which for an object just
# written to a new pack means rescanning the pack directory; ours were just created, by us.
pygit2.settings.enable_strict_object_creation(False)
# Keep big trees in libgit2's object cache too (the default caches only trees under 4 KiB), in a
# cache of a size chosen for a worker's memory rather than libgit2's default 256 MiB (a setting:
# `cache_git_objects_bytes`, applied with the others by cache.configure).
pygit2.settings.cache_object_limit(ObjectType.TREE, 1 << 20)
pygit2.settings.cache_object_limit(ObjectType.BLOB, 1 << 16)
pygit2.settings.cache_max_size(default_bound("git_objects"))
# Packs are read through memory maps, which count as the worker's resident memory: libgit2's default
# would map up to 8 GiB of them. Windows of 4 MiB, at most `cache_git_mapped_bytes` mapped (least
# recently used unmapped).
pygit2.settings.mwindow_size = 4 * 2**20
pygit2.settings.mwindow_mapped_limit = default_bound("git_mapped")


class Ledger:
    """The ledger at ``path`` (a bare repository), as one process uses it: thread-safe (each thread
    reads through a repository of its own); any number of processes may open it at once."""

    def __init__(self, path: Path, *, committer: tuple[str, str] = ("registry", "registry@localhost"),
                 signer: Signer | None = None) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._branch = Branch(self.path)
        self._ref = str(self._branch.ref)  # (stat'ed often: a str, not a Path to convert each time)
        self._moves = self._branch.moves
        self._journal = Journal(self.path / "registry-journal", self.path.parent)
        self.damage = DamageLog(self.path / "registry-damage", self.path.parent)
        self._recent = Recent()  # this process's latest objects, for its readers
        self._repacker = Repacker(self.path)
        self._checkpoints = Checkpoints(self.path, self._journal, self._branch)
        self._writer = Writer(self.path, self._branch, self._checkpoints, self._recent, self._repacker,
                              committer, signer)

    @property
    def signer(self) -> Signer | None:
        """What signs every commit from the next on (None: unsigned, as before signing existed)."""
        return self._writer.signer

    @signer.setter
    def signer(self, signer: Signer | None) -> None:
        self._writer.signer = signer

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def exists_at(cls, path: Path) -> bool:
        """Whether a repository is at ``path`` (not whether it is whole)."""
        return (Path(path) / "HEAD").is_file() and (Path(path) / "objects").is_dir()

    @classmethod
    def create(cls, path: Path, first: Change, **kwargs: Any) -> Ledger:
        """Make a ledger whose first commit is ``first`` (what an empty registry holds), durably:
        the repository, its directories and its parent's listing are synced when this returns.
        FileExistsError if there is one already; ``kwargs`` as for the constructor."""
        path = Path(path)
        if cls.exists_at(path):
            raise FileExistsError(f"a ledger already exists at {path}")
        make_dirs(path.parent)
        pygit2.init_repository(str(path), bare=True, initial_head=BRANCH)
        ledger = cls(path, **kwargs)
        repo = ledger.repo()
        created: list[pygit2.Oid] = []

        def put_loose(type_: int, data: bytes) -> pygit2.Oid:
            created.append(repo.odb.write(type_, data))
            return created[-1]

        guard.check(first)
        tree = write_tree(repo, None, {p: _bytes(v) for p, v in first.writes.items()}, put_loose)
        if tree is None:
            raise ValueError("the first commit must write something (git has no empty tree to commit)")
        commit = repo.odb.write(ObjectType.COMMIT, ledger._writer.commit_object(repo, first, None, tree))
        _sync_loose(path, [*created, commit])
        repo.create_reference(REF, commit)
        ledger._journal.path.touch()
        ref = ledger._branch.ref
        # (HEAD and config too: without them whole, git itself says this is no repository)
        fsync_all([ref, ref.parent, path / "refs", ledger._journal.path, path,
                   path / "HEAD", path / "config", path / "objects" / "pack", path.parent])
        return ledger

    @classmethod
    def open(cls, path: Path, *, recover: bool = True, **kwargs: Any) -> Ledger:
        """The ledger at ``path``, recovered first if a crash left its journal to replay
        (`recover`; skipped where the process may not write, as an auditor's, or when ``recover`` is
        False). FileNotFoundError if there is none; ``kwargs`` as for the constructor."""
        if not cls.exists_at(path):
            raise FileNotFoundError(f"no ledger at {path}; run `registry init` first")
        ledger = cls(path, **kwargs)
        if not recover:
            return ledger
        try:
            # What the journal's replay writes into must itself be durable, whoever made it (an
            # older release, a crash before its sync): the directories every commit relies on.
            fsync_all([ledger.path.parent, ledger.path, ledger.path / "objects", ledger.path / "objects" / "pack",
                       ledger._branch.ref.parent])
            ledger.recover()
        except OSError as exc:  # a reader without write access (an auditor): the tip it sees is fine
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            log.debug("ledger at %s is read-only here: not checking the journal", path)
        return ledger

    # --- writing -------------------------------------------------------------------------------

    def transact(self, build: Build, *, timeout: float = 30.0) -> Committed:
        """Run ``build`` on the snapshot at the tip and commit the change it returns, atomically and
        durably (see `Writer.transact` for what it raises: whatever it raises, nothing was
        committed). Every few commits, packs are folded in the background (`maybe_repack`)."""
        with metrics.commit_timed() as result:
            committed = self._writer.transact(build, timeout=timeout)
            result[0] = "committed" if committed.commit is not None else "unchanged"
        if committed.commit is not None and self._writer.packs_written % 16 == 0:
            self.maybe_repack(background=True)
        return committed

    def write_lock(self, timeout: float) -> AbstractContextManager[None]:
        """Exclusive against every writer of every process (transactions, recovery, the collector's
        deletions): `Locked` (503) after ``timeout`` seconds."""
        return self._branch.write_lock(timeout)

    def journal_bytes(self) -> int:
        """The journal's size: what a crash now would replay (a checkpoint empties it)."""
        try:
            return self._journal.path.stat().st_size
        except FileNotFoundError:
            return 0

    def recover(self) -> str | None:
        """Replay the journal after a crash (recovery.py); the commit main was moved to, if any."""
        return recover(self.path, self._branch, self._checkpoints, self.damage)

    def checkpoint(self) -> None:
        """Make durable all the journal describes, then empty it. Callers hold the write lock."""
        self._checkpoints.checkpoint()

    # --- folding packs (repack.py) -------------------------------------------------------------

    def repack(self, *, full: bool = False, yielding: bool = False) -> None:
        """Fold packs together now (`Repacker.repack`)."""
        self._repacker.repack(full=full, yielding=yielding)

    def maybe_repack(self, pack_limit: int = PACK_LIMIT, loose_limit: int = LOOSE_LIMIT,
                     background: bool = False) -> bool:
        """Fold packs if they piled up (`Repacker.maybe_repack`); True if it did (or started to)."""
        return self._repacker.maybe_repack(pack_limit, loose_limit, background)

    def repack_lock(self) -> AbstractContextManager[int]:
        """Held while packs are folded or deleted: hold it to see them hold still (`git fsck`)."""
        return self._repacker.lock()

    def pack_count(self) -> int:
        """How many packs the ledger has now."""
        return self._repacker.pack_count()

    # --- reading -------------------------------------------------------------------------------

    def repo(self) -> pygit2.Repository:
        """This thread's Repository: libgit2 objects must not be used from two threads at once."""
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.path))
            repo.odb.add_backend(RecentObjects(self._recent), 0)  # below the packs: asked last
            self._local.packs = PackWatch(self._repacker)
        return repo

    def _forget_repacked(self) -> None:
        """libgit2 learns of new packs by itself but keeps the ones a repack deleted open forever:
        once packs may have been deleted (see PackWatch), this thread opens a fresh repository."""
        if getattr(self._local, "repo", None) is None:
            return
        if self._local.packs.gone():
            self._local.repo.free()
            self._local.repo = None
            self._local.snapshot = None

    def head(self) -> str:
        """The tip of main. While the branch's shared `Moves` bytes are as this thread last saw them
        (and for at most RECHECK seconds), main hasn't moved: no system call. Otherwise the ref file
        is stat'ed, and read only if it changed: every update renames a new ref file into place, so
        an unchanged stat means an unchanged tip."""
        moves = self._moves.seen()  # (before the ref: a move changes them after renaming it)
        cached = getattr(self._local, "head", None)  # (moves seen, until when, the ref's stat, tip)
        now = time.monotonic()
        if cached is not None and moves is not None and cached[0] == moves and now < cached[1]:
            return cached[3]
        try:
            st = os.stat(self._ref)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:  # packed by an outside `git gc`: ask libgit2 every time
            seen = None
        tip = cached[3] if seen is not None and cached is not None and cached[2] == seen else \
            str(self.repo().lookup_reference(REF).target)
        self._local.head = (moves, now + Moves.RECHECK, seen, tip)
        return tip

    def move_to(self, commit_id: str) -> None:
        """Point main at ``commit_id``, wherever it points now (a replica's follower: the head its
        primary made, fetched and checked); every process's readers see it at their next look."""
        repo = pygit2.Repository(str(self.path))
        try:
            self._branch.move(repo, None, commit_id)
        finally:
            repo.free()

    def snapshot(self) -> Snapshot:
        """The registry at the tip of main; reused while the tip has not moved. For this thread only."""
        tip = self.head()
        snap = getattr(self._local, "snapshot", None)
        if snap is None or snap.commit_id != tip:
            self._forget_repacked()  # once per new commit: a directory listing
            repo = self.repo()
            snap = self._local.snapshot = Snapshot(repo, commit_at(repo, tip))
        return snap

    def snapshot_at(self, commit_id: str) -> Snapshot:
        """The registry at ``commit_id`` (any revision git understands); KeyError if there is none."""
        repo = self.repo()
        return Snapshot(repo, repo.revparse_single(commit_id).peel(pygit2.Commit))

    def commit(self, commit_id: str) -> Commit:
        """The commit ``commit_id``; KeyError if there is none."""
        return Commit.of(commit_at(self.repo(), commit_id))

    def walk(self, since: str | None = None) -> Iterator[Commit]:
        """Commits from the tip backwards, stopping before ``since`` (exclusive)."""
        repo = self.repo()
        walker = repo.walk(repo.lookup_reference(REF).target, SortMode.TOPOLOGICAL)
        if since:
            walker.hide(since)
        for c in walker:
            yield Commit.of(c)


def _sync_loose(path: Path, oids: list[pygit2.Oid]) -> None:
    """fsync the loose files of new objects (an object already packed is durable), their fan-out
    directories and the objects directory, all at once."""
    objects = path / "objects"
    paths: list[Path] = [objects]
    for oid in oids:
        hexsha = str(oid)
        loose = objects / hexsha[:2] / hexsha[2:]
        if loose.exists():
            paths += [loose, loose.parent]
    fsync_all(paths)
