"""Writing the ledger: one transaction at a time across every process, one pack and one journal
record per commit, and a compare-and-swap of the branch (see journal.py for why one fsync is enough).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import msgspec
import pygit2
from pygit2.enums import ObjectType

from ..cache import Cache
from ..diskspace import disk_full
from ..errors import Busy
from ..fsync import fsync_all
from . import codec, guard
from .branch import REF, Branch, RefMoved
from .commits import Change, Commit, Committed, NoChange, Signer, commit_at, with_signature
from .journal import CHECKPOINT_AT, COPY_LIMIT, Entry, Journal
from .packs import MemoryObjects, Recent, write_pack
from .recovery import Checkpoints
from .repack import PackWatch, Repacker
from .snapshot import Snapshot
from .trees import WRITTEN, write_tree

log = logging.getLogger("registry.ledger")
Build = Callable[[Snapshot], Change | NoChange | None]


class Writer:
    """Makes the ledger's commits: each under the write lock (`Branch`), its objects as one pack,
    made durable by one journal record (`Journal`), then the branch moved. Thread-safe (writers
    of every thread and process take turns); the committer and signer may be changed between
    transactions."""

    def __init__(self, path: Path, branch: Branch, checkpoints: Checkpoints, recent: Recent, repacker: Repacker,
                 committer: tuple[str, str], signer: Signer | None) -> None:
        self.path = path
        self.branch = branch
        self.checkpoints = checkpoints
        self.journal: Journal = checkpoints.journal
        self.committer = committer
        self.signer = signer  # signs every commit (None: unsigned, as before signing existed)
        self.packs_written = 0  # by this process's transactions
        self._recent = recent  # this process's latest objects, for its readers
        self._repacker = repacker  # (whose mark tells the writer's repository to start afresh)
        self._writing: tuple[pygit2.Repository, MemoryObjects, PackWatch] | None = None
        self._known_trees: Cache = WRITTEN  # the trees the last commits wrote (shared by the process's ledgers)

    def transact(self, build: Build, *, timeout: float = 30.0) -> Committed:
        """Run ``build`` on the snapshot at the tip and commit its change, atomically.

        ``build`` runs under the write lock, so what it checked still holds when the commit lands;
        it may also do I/O that must precede the commit (moving an uploaded blob into the store).
        Returns the new commit (None when ``build`` returned NoChange or None, or changed nothing)
        with the change's ``result``. The commit is durable when this returns. Raises what
        ``build`` raises, `Locked` (503) after ``timeout`` seconds waiting for the lock, `Busy`
        (503) if the branch kept moving under it (an outside git), `Unwritable` (400) for a change
        the ledger could not read back, and OSError (a full disk: `disk_full`) leaving no trace of
        the commit. Whatever it raises, nothing was committed.
        """
        with self.branch.write_lock(timeout):
            repo, memory = self._writer()
            try:
                committed = self._commit(repo, memory, build)
            except BaseException:
                self._drop_writer()  # start the next transaction from what is on disk
                raise
            finally:
                memory.clear()  # whatever a failed attempt wrote is garbage
            if committed.commit is None:
                return committed
        self.packs_written += 1
        return committed

    def commit_object(self, repo: pygit2.Repository, change: Change, parent: pygit2.Commit | None,
                      tree: pygit2.Oid) -> bytes:
        """The commit of ``change`` on ``parent`` (None: the first), as git stores it: signed by the
        signer, if there is one, over exactly the rest of it."""
        author = pygit2.Signature(change.author[0], change.author[1], int(change.time.timestamp()), 0)
        parents: list[str | pygit2.Oid] = [parent.id] if parent is not None else []
        # (pygit2's stub says it returns an Oid: it returns the commit's text)
        text = cast(str, repo.create_commit_string(author, self._committer(change, parent), change.message(),
                                                   tree, parents)).encode()
        # Signed over exactly that text; the signature goes in as its gpgsig header, which
        # makes the commit (and so its id, its pack and its journal record) the signed one.
        armoured = self.signer(repo, parent, tree, text) if self.signer is not None else None
        return with_signature(text, armoured) if armoured else text

    def _commit(self, repo: pygit2.Repository, memory: MemoryObjects, build: Build) -> Committed:
        for attempt in range(10):
            memory.clear()
            tip = repo.lookup_reference(REF).target
            parent = commit_at(repo, tip)
            change = build(Snapshot(repo, parent))
            if not isinstance(change, Change):
                return Committed(None, change.result if change is not None else None)
            guard.check(change)  # (before anything is written: what can't be read back never lands)
            tree = write_tree(repo, parent.tree_id, {p: _bytes(v) for p, v in change.writes.items()}, memory.put,
                              self._known_trees)
            if tree == parent.tree_id:
                return Committed(None, change.result)
            if tree is None:  # (git has no empty tree to commit: every registry holds its settings)
                raise ValueError("a change may not remove everything the ledger holds")
            commit_id = memory.put(ObjectType.COMMIT, self.commit_object(repo, change, parent, tree))
            committed = Commit.of(commit_at(repo, commit_id))
            # The journal record carries the pack and the small files the commit needs: one fsync of
            # it makes the commit durable. Big files are made durable first: a record must never
            # be durable before what it points to.
            objects = memory.take()
            written = write_pack(objects, self.path / "objects" / "pack")
            small = [n for n in change.needs if n.size <= COPY_LIMIT]
            big = [n for n in change.needs if n.size > COPY_LIMIT]
            start = None
            try:
                if big:
                    fsync_all([p for n in big for p in ((n.path.parent,) if n.durable else (n.path, n.path.parent))])
                start = self.journal.append(Entry(
                    str(tip), str(commit_id), written.name, written.pack_data, written.idx_data,
                    copies={self.journal.relative(n.path): n.path.read_bytes() for n in small},
                    synced=tuple(self.journal.relative(n.path) for n in big),
                    checks={self.journal.relative(n.path): (n.size, n.sha256) for n in big}))
                self.journal.sync()
                try:
                    self.branch.move(repo, str(tip), str(commit_id))
                except (RefMoved, OSError) as exc:
                    if disk_full(exc):
                        raise
                    log.warning("ledger tip moved or ref locked (attempt %d): %s", attempt + 1, exc)
                    self.branch.clear_stale_lock()
                    continue
            except OSError as exc:
                if not disk_full(exc):
                    raise
                # A full disk: the commit is not made, and nothing of it stays (its record would
                # make it at the next replay, its pack is garbage). The caller answers 507.
                if start is not None:
                    self.journal.cut(start)
                written.pack.unlink(missing_ok=True)
                written.idx.unlink(missing_ok=True)
                raise
            self._recent.add(objects)
            if self.journal.size() > CHECKPOINT_AT and self.journal.retire():
                threading.Thread(target=self.checkpoints.checkpoint_retired, name="ledger-checkpoint",
                                 daemon=True).start()
            return Committed(committed, change.result, str(tip))
        raise Busy("The ledger could not be updated after 10 attempts; try again.")

    def _committer(self, change: Change, parent: pygit2.Commit | None) -> pygit2.Signature:
        """The registry, at the change's fixed time if it has one, else now; never before the parent
        (a clock set back must not make a commit look older than the one it follows)."""
        now = int(change.committed.timestamp()) if change.committed else int(time.time())
        if parent is not None:
            now = max(now, parent.committer.time)
        return pygit2.Signature(self.committer[0], self.committer[1], now, 0)

    def _writer(self) -> tuple[pygit2.Repository, MemoryObjects]:
        """The repository transactions write through (only ever used under the write lock): new
        objects go to memory, then out as one pack. Kept warm between transactions, and replaced
        once a repack has deleted a pack it may hold open (libgit2 would keep that open forever)."""
        if self._writing is not None and (self._writing[2].gone() or self.packs_written % 256 == 0):
            self._drop_writer()  # (and now and then anyway: a pack may come and go unlisted)
        if self._writing is None:
            repo = pygit2.Repository(str(self.path))
            memory = MemoryObjects()
            repo.odb.add_backend(memory, 1000)  # above the loose and packed backends: it takes every write
            self._writing = (repo, memory, PackWatch(self._repacker))
        return self._writing[0], self._writing[1]

    def _drop_writer(self) -> None:
        if self._writing is not None:
            self._writing[0].free()
            self._writing = None


def _bytes(value: msgspec.Struct | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return codec.encode(value)
