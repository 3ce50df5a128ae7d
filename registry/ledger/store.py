"""The ledger: a bare git repository whose `main` branch is the registry's entire state.

Readers take a `Snapshot` (a commit and its tree); writers call `transact(build)`, where `build`
reads the snapshot at the current tip and returns a `Change` (writing.py). Writers in every process
and thread serialise on a flock, and the branch moves with a compare-and-swap once the commit's
journal record (which carries its pack and small files, see journal.py) is fsynced, so a returned
commit is durable and no commit is ever lost or duplicated. After a crash, opening replays the
journal (recovery.py); packs are folded in the background (repack.py). The ledger knows paths and
bytes, never what they mean.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pygit2
from pygit2.enums import ObjectType, SortMode

from ..cache import default_bound
from ..fsync import fsync_all, make_dirs
from . import guard
from .commits import Change, Commit, Signer, with_signature
from .journal import DamageLog, Journal
from .packs import MemoryObjects, Recent, RecentObjects
from .recovery import Recovery
from .repack import PackWatch, Repacking
from .snapshot import Snapshot
from .trees import WRITTEN, write_tree
from .writing import BRANCH, REF, Writing, _bytes

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


class Ledger(Writing, Recovery, Repacking):
    def __init__(self, path: Path, *, committer: tuple[str, str] = ("registry", "registry@localhost"),
                 signer: Signer | None = None) -> None:
        self.path = Path(path)
        self.committer = committer
        self.signer = signer  # signs every commit (None: unsigned, as before signing existed)
        self._local = threading.local()
        self._lock_path = self.path / "registry-write.lock"
        self._ref_path = self.path / REF
        self._packs_written = 0
        self._repacking = threading.Lock()
        self._writing: tuple[pygit2.Repository, MemoryObjects, PackWatch] | None = None
        self._repack_mark = self.path / "registry-repacked"  # rewritten after every repack
        self._journal = Journal(self.path / "registry-journal", self.path.parent)
        self.damage = DamageLog(self.path / "registry-damage", self.path.parent)
        self._recent = Recent()  # this process's latest objects, for its readers
        self._known_trees = WRITTEN  # the trees the last commits wrote (shared by the process's ledgers)

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def exists_at(cls, path: Path) -> bool:
        return (Path(path) / "HEAD").is_file() and (Path(path) / "objects").is_dir()

    @classmethod
    def create(cls, path: Path, first: Change, **kwargs) -> Ledger:
        """Make a ledger whose first commit is ``first`` (what an empty registry holds)."""
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
        author = pygit2.Signature(first.author[0], first.author[1], int(first.time.timestamp()), 0)
        text = repo.create_commit_string(author, ledger._committer(first, None), first.message(), tree, []).encode()
        armoured = ledger.signer(repo, None, tree, text) if ledger.signer is not None else None
        commit = repo.odb.write(ObjectType.COMMIT, with_signature(text, armoured) if armoured else text)
        ledger._sync_objects([*created, commit])
        repo.create_reference(REF, commit)
        ledger._journal.path.touch()
        # (HEAD and config too: without them whole, git itself says this is no repository)
        fsync_all([ledger._ref_path, ledger._ref_path.parent, path / "refs", ledger._journal.path, path,
                   path / "HEAD", path / "config", path / "objects" / "pack", path.parent])
        return ledger

    @classmethod
    def open(cls, path: Path, **kwargs) -> Ledger:
        if not cls.exists_at(path):
            raise FileNotFoundError(f"no ledger at {path}; run `registry init` first")
        ledger = cls(path, **kwargs)
        try:
            # What the journal's replay writes into must itself be durable, whoever made it (an
            # older release, a crash before its sync): the directories every commit relies on.
            fsync_all([ledger.path.parent, ledger.path, ledger.path / "objects", ledger.path / "objects" / "pack",
                       ledger._ref_path.parent])
            ledger.recover()
        except OSError as exc:  # a reader without write access (an auditor): the tip it sees is fine
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            log.debug("ledger at %s is read-only here: not checking the journal", path)
        return ledger

    def repo(self) -> pygit2.Repository:
        """This thread's Repository: libgit2 objects must not be used from two threads at once."""
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.path))
            repo.odb.add_backend(RecentObjects(self._recent), 0)  # below the packs: asked last
            self._local.packs = PackWatch(self)
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

    # --- reading -------------------------------------------------------------------------------

    def head(self) -> str:
        """The tip of main. Every update renames a new ref file into place, so an unchanged stat of
        that file means an unchanged tip: one stat per call, a read only when it moved."""
        try:
            st = os.stat(self._ref_path)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:  # packed by an outside `git gc`: ask libgit2 every time
            seen = None
        cached = getattr(self._local, "head", None)
        if seen is None or cached is None or cached[0] != seen:
            tip = str(self.repo().lookup_reference(REF).target)
            self._local.head = cached = (seen, tip)
        return cached[1]

    def snapshot(self) -> Snapshot:
        """The registry at the tip of main; reused while the tip has not moved."""
        tip = self.head()
        snap = getattr(self._local, "snapshot", None)
        if snap is None or snap.commit_id != tip:
            self._forget_repacked()  # once per new commit: a directory listing
            repo = self.repo()
            snap = self._local.snapshot = Snapshot(repo, repo[tip])
        return snap

    def snapshot_at(self, commit_id: str) -> Snapshot:
        repo = self.repo()
        return Snapshot(repo, repo.revparse_single(commit_id).peel(pygit2.Commit))

    def commit(self, commit_id: str) -> Commit:
        return Commit.of(self.repo()[commit_id])

    def walk(self, since: str | None = None) -> Iterator[Commit]:
        """Commits from the tip backwards, stopping before ``since`` (exclusive)."""
        repo = self.repo()
        walker = repo.walk(repo.lookup_reference(REF).target, SortMode.TOPOLOGICAL)
        if since:
            walker.hide(since)
        for c in walker:
            yield Commit.of(c)

