"""Writing the ledger: one transaction at a time across every process, one pack and one journal
record per commit, and a compare-and-swap of the branch (see journal.py for why one fsync is enough).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pygit2
from pygit2.enums import ObjectType

from ..diskspace import disk_full
from ..errors import Busy
from ..fsync import fsync_all
from . import codec, guard
from .commits import Change, Commit, Committed, NoChange, with_signature
from .journal import CHECKPOINT_AT, COPY_LIMIT, Entry
from .packs import MemoryObjects, write_pack
from .repack import PackWatch
from .snapshot import Snapshot
from .trees import write_tree

log = logging.getLogger("registry.ledger")
BRANCH = "main"
REF = f"refs/heads/{BRANCH}"


class Writing:
    """The write half of `Ledger` (a mixin: its state is set up in `Ledger.__init__`)."""

    def transact(self, build: Callable[[Snapshot], Change | NoChange | None], *, timeout: float = 30.0) -> Committed:
        """Run ``build`` on the snapshot at the tip and commit its change, atomically.

        ``build`` runs under the write lock, so what it checked still holds when the commit lands;
        it may also do I/O that must precede the commit (moving an uploaded blob into the store).
        Returns the new commit (None when ``build`` returned NoChange or None, or changed nothing)
        with the change's ``result``.
        """
        with self.write_lock(timeout):
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
        self._packs_written += 1
        if self._packs_written % 16 == 0:
            self.maybe_repack(background=True)
        return committed

    def _commit(self, repo: pygit2.Repository, memory: MemoryObjects, build) -> Committed:
        for attempt in range(10):
            memory.clear()
            tip = repo.lookup_reference(REF).target
            parent = repo[tip]
            change = build(Snapshot(repo, parent))
            if not isinstance(change, Change):
                return Committed(None, change.result if change is not None else None)
            guard.check(change)  # (before anything is written: what can't be read back never lands)
            tree = write_tree(repo, parent.tree_id, {p: _bytes(v) for p, v in change.writes.items()}, memory.put,
                              self._known_trees)
            if tree == parent.tree_id:
                return Committed(None, change.result)
            author = pygit2.Signature(change.author[0], change.author[1], int(change.time.timestamp()), 0)
            committer = self._committer(change, parent)
            text = repo.create_commit_string(author, committer, change.message(), tree, [parent.id]).encode()
            # Signed over exactly that text; the signature goes in as its gpgsig header, which
            # makes the commit (and so its id, its pack and its journal record) the signed one.
            armoured = self.signer(repo, parent, tree, text) if self.signer is not None else None
            commit_id = memory.put(ObjectType.COMMIT, with_signature(text, armoured) if armoured else text)
            committed = Commit.of(repo[commit_id])
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
                start = self._journal.append(Entry(
                    str(tip), str(commit_id), written.name, written.pack_data, written.idx_data,
                    copies={self._journal.relative(n.path): n.path.read_bytes() for n in small},
                    synced=tuple(self._journal.relative(n.path) for n in big),
                    checks={self._journal.relative(n.path): (n.size, n.sha256) for n in big}))
                self._journal.sync()
                try:
                    self._move_branch(repo, str(tip), str(commit_id))
                except (RefMoved, OSError) as exc:
                    if disk_full(exc):
                        raise
                    log.warning("ledger tip moved or ref locked (attempt %d): %s", attempt + 1, exc)
                    self._clear_stale_ref_lock()
                    continue
            except OSError as exc:
                if not disk_full(exc):
                    raise
                # A full disk: the commit is not made, and nothing of it stays (its record would
                # make it at the next replay, its pack is garbage). The caller answers 507.
                if start is not None:
                    self._journal.cut(start)
                written.pack.unlink(missing_ok=True)
                written.idx.unlink(missing_ok=True)
                raise
            self._recent.add(objects)
            if self._journal.size() > CHECKPOINT_AT and self._journal.retire():
                threading.Thread(target=self._checkpoint_retired, name="ledger-checkpoint", daemon=True).start()
            return Committed(committed, change.result, str(tip))
        raise Busy("The ledger could not be updated after 10 attempts; try again.")

    def _committer(self, change: Change, parent: pygit2.Commit | None) -> pygit2.Signature:
        """The registry, at the change's fixed time if it has one, else now; never before the parent
        (a clock set back must not make a commit look older than the one it follows)."""
        now = int(change.committed.timestamp()) if change.committed else int(time.time())
        if parent is not None:
            now = max(now, parent.committer.time)
        return pygit2.Signature(self.committer[0], self.committer[1], now, 0)

    def _move_branch(self, repo: pygit2.Repository, expected: str | None, new: str) -> None:
        """Compare-and-swap of main, by git's own protocol: create `main.lock` exclusively (any
        git that respects ref locks now waits), check the branch still points at ``expected``
        (None: don't), then rename the lock over the ref. Not synced here (see journal.py)."""
        lock = self._ref_path.with_name(self._ref_path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if expected is not None:
                try:
                    current = self._ref_path.read_text().strip()
                except FileNotFoundError:  # packed by an outside `git gc`
                    current = str(repo.lookup_reference(REF).target)
            if expected is not None and current != expected:
                raise RefMoved(f"main is at {current[:12]}, not {expected[:12]}")
            data = f"{new}\n".encode()
            try:
                # Allocated up front, ext4 doesn't flush the file's data when it is renamed over the
                # old ref (its guard for renames of unsynced files), which costs more than the rest.
                os.posix_fallocate(fd, 0, len(data))
            except OSError:
                pass
            os.write(fd, data)
            os.close(fd)
            fd = -1
            os.rename(lock, self._ref_path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise

    def _writer(self) -> tuple[pygit2.Repository, MemoryObjects]:
        """The repository transactions write through (only ever used under the write lock): new
        objects go to memory, then out as one pack. Kept warm between transactions, and replaced
        once a repack has deleted a pack it may hold open (libgit2 would keep that open forever)."""
        if self._writing is not None and (self._writing[2].gone() or self._packs_written % 256 == 0):
            self._drop_writer()  # (and now and then anyway: a pack may come and go unlisted)
        if self._writing is None:
            repo = pygit2.Repository(str(self.path))
            memory = MemoryObjects()
            repo.odb.add_backend(memory, 1000)  # above the loose and packed backends: it takes every write
            self._writing = (repo, memory, PackWatch(self))
        return self._writing[0], self._writing[1]

    def _drop_writer(self) -> None:
        if self._writing is not None:
            self._writing[0].free()
            self._writing = None

    def _sync_objects(self, oids: list[pygit2.Oid], extra: tuple[Path, ...] = ()) -> None:
        """fsync the loose files of new objects (an object already packed is durable), their
        fan-out directories and the objects directory, plus ``extra``, all at once."""
        objects = self.path / "objects"
        paths: list[Path] = [objects]
        for oid in oids:
            hexsha = str(oid)
            loose = objects / hexsha[:2] / hexsha[2:]
            if loose.exists():
                paths += [loose, loose.parent]
        fsync_all([*paths, *extra])

    @contextmanager
    def write_lock(self, timeout: float):
        """Exclusive against every writer: transactions, repacks, blob collection."""
        # flock is per open file description: threads of one process exclude each other too, and
        # the kernel drops it when a process dies, so this lock itself is never stale.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            delay = 0.0005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Locked(f"The ledger has been locked by another writer for over {timeout:.0f}s; try again.") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.02)
            self._clear_stale_ref_lock()
            yield
        finally:
            os.close(fd)  # releases the flock

    def _clear_stale_ref_lock(self) -> None:
        """Holding our flock, any git ref lock on main was left by a writer that died mid-update."""
        stale = self.path / f"{REF}.lock"
        if stale.exists():
            log.warning("removing stale %s left by a killed writer", stale)
            stale.unlink(missing_ok=True)


class Locked(Busy):
    """Another writer held the write lock for longer than the caller would wait (maybe not at all)."""


class RefMoved(Exception):
    """The branch moved between reading it and updating it (an outside git wrote it)."""


def _bytes(value: msgspec.Struct | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return codec.encode(value)
