"""The ledger: a bare git repository whose `main` branch is the registry's entire state.

Readers take a `Snapshot` (a commit and its tree); writers call `transact(build)`, where `build`
reads the snapshot at the current tip and returns a `Change`. Writers in every process and thread
serialise on a flock, and the branch moves with a compare-and-swap once the commit's journal
record (which carries its pack and small files, see journal.py) is fsynced, so a returned commit
is durable and no commit is ever lost or duplicated.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec
import pygit2
from pygit2.enums import ObjectType, SortMode

from ..errors import Busy
from ..fsync import Needed, fsync_all, make_dirs
from ..model import LedgerInfo, Provenance, brace_uuid
from . import codec, layout
from .history import History
from .journal import (CHECKPOINT_AT, COPY_LIMIT, Damage, DamageLog, Entry, Journal, chain, described,
                      inspect_synced, materialize, torn_before_whole)
from .packs import BLOB_MODE, TREE_MODE, MemoryObjects, Recent, RecentObjects, Tree, write_pack, write_replacing
from .repack import GIT_ABOVE, fold, roll_up

log = logging.getLogger("registry.ledger")

T = TypeVar("T")
BRANCH = "main"
KNOWN_TREES = 4096  # trees whose entries the writer keeps (those on recently written paths)
PACK_LIMIT = 48  # packs before a (geometric, background) repack folds them
LOOSE_LIMIT = 6700  # loose objects (git's own gc.auto) before a repack packs them
RELIST_SECONDS = 10.0  # how long the repack mark alone answers "were packs deleted?" (see PackWatch)
REF = f"refs/heads/{BRANCH}"
FORMAT = 1

# A commit is acknowledged only once durable. libgit2 could fsync each loose object as it writes
# it; instead `transact` writes a commit's objects as one pack (see packs.py) and makes it durable
# with one fsync of the journal record that carries it (journal.py).
pygit2.settings.enable_fsync_gitdir(False)
# libgit2 would check that every id a tree entry or ref points at exists, which for an object just
# written to a new pack means rescanning the pack directory; ours were just created, by us.
pygit2.settings.enable_strict_object_creation(False)
# Keep big trees in libgit2's object cache too (the default caches only trees under 4 KiB).
pygit2.settings.cache_object_limit(ObjectType.TREE, 1 << 20)
pygit2.settings.cache_object_limit(ObjectType.BLOB, 1 << 16)


@dataclass(frozen=True)
class Change:
    """One state change: becomes exactly one commit.

    ``writes`` maps ledger paths to a record (written canonically), raw bytes, or ``None`` (delete).
    ``facts`` become commit trailers after the standard ones (Actor, Channel, Token-Id, pipeline ids).
    """

    summary: str
    provenance: Provenance
    author: tuple[str, str]  # (name, email)
    writes: Mapping[str, msgspec.Struct | bytes | None]
    facts: tuple[tuple[str, str], ...] = ()
    body: str = ""
    needs: tuple[Needed, ...] = ()  # files outside the ledger the commit depends on (blobs): durable first

    def message(self) -> str:
        p = self.provenance
        trailers: list[tuple[str, str]] = [("Actor", p.by), ("Channel", p.channel)]
        if p.token:
            trailers.append(("Token-Id", p.token))
        if p.pipeline:
            run = p.pipeline
            trailers += [
                ("Pipeline-Uuid", run.pipeline_uuid),
                ("Step-Uuid", run.step_uuid),
                ("Repository-Uuid", run.repository_uuid),
                ("Workspace-Uuid", run.workspace_uuid),
            ]
            if run.branch is not None:
                trailers.append(("Branch", run.branch))
            if run.environment_uuid:
                trailers.append(("Environment-Uuid", run.environment_uuid))
            if run.url:
                trailers.append(("Pipeline-Run-Url", run.url))
        trailers += self.facts
        lines = [self.summary.replace("\n", " ").strip(), ""]
        if self.body:
            lines += [self.body.rstrip(), ""]
        lines += [f"{k}: {_one_line(v)}" for k, v in trailers]
        return "\n".join(lines) + "\n"


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


@dataclass(frozen=True)
class Commit:
    """A ledger commit as an auditor sees it."""

    id: str
    time: datetime
    author_name: str
    author_email: str
    summary: str
    trailers: tuple[tuple[str, str], ...] = field(default=())

    def trailer(self, key: str) -> str | None:
        return next((v for k, v in self.trailers if k == key), None)

    @classmethod
    def of(cls, commit: pygit2.Commit) -> Commit:
        return cls(
            id=str(commit.id),
            time=datetime.fromtimestamp(commit.author.time, UTC),
            author_name=commit.author.name,
            author_email=commit.author.email,
            summary=commit.message.split("\n", 1)[0],
            trailers=tuple(parse_trailers(commit.message)),
        )


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The trailer block: the last paragraph, if every line in it is `Key: value`."""
    paragraphs = message.strip().split("\n\n")
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key.replace("-", "").isalnum():
            return []
        out.append((key, value))
    return out


class Snapshot:
    """The registry as of one commit. Cheap to make; use it from the thread that made it."""

    __slots__ = ("commit_id", "tree", "_repo")

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit) -> None:
        self._repo = repo
        self.commit_id = str(commit.id)
        self.tree = commit.tree

    def _entry(self, path: str) -> pygit2.Object | None:
        try:
            return self.tree[path]
        except KeyError:
            return None

    def get(self, path: str, type_: type[T]) -> T | None:
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        key = entry.id.raw
        hit = codec.cached(key, type_)
        if hit is not None:
            return hit
        return codec.remember(key, type_, codec.decode(self._repo[entry.id].data, type_))

    def raw(self, path: str) -> bytes | None:
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        return self._repo[entry.id].data

    def exists(self, path: str) -> bool:
        return path in self.tree

    def tree_id(self, path: str) -> str | None:
        """The git id of the directory at ``path``: changes exactly when something under it changes."""
        entry = self._entry(path)
        return str(entry.id) if entry is not None and entry.type == ObjectType.TREE else None

    def names(self, path: str) -> list[str]:
        entry = self._entry(path) if path else self.tree
        if entry is None or entry.type != ObjectType.TREE:
            return []
        return [e.name for e in self._repo[entry.id]]

    def files(self, path: str) -> Iterator[str]:
        """Every file path under the directory ``path``, recursively (shards included)."""
        entry = self._entry(path) if path else self.tree
        if entry is None or entry.type != ObjectType.TREE:
            return
        stack = [(path, self._repo[entry.id])]
        while stack:
            prefix, tree = stack.pop()
            for e in tree:
                sub = f"{prefix}/{e.name}" if prefix else e.name
                if e.type == ObjectType.TREE:
                    stack.append((sub, self._repo[e.id]))
                else:
                    yield sub

    def records(self, path: str, type_: type[T]) -> Iterator[T]:
        for sub in self.files(path):
            if sub.endswith(".json"):
                record = self.get(sub, type_)
                if record is not None:
                    yield record


class Ledger:
    def __init__(self, path: Path, *, committer: tuple[str, str] = ("registry", "registry@localhost"),
                 cache_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.committer = committer
        self._local = threading.local()
        self._lock_path = self.path / "registry-write.lock"
        self._ref_path = self.path / REF
        self._packs_written = 0
        self._repacking = threading.Lock()
        self._history = None
        self._cache_dir = cache_dir
        self._writing: tuple[pygit2.Repository, MemoryObjects, PackWatch] | None = None
        self._repack_mark = self.path / "registry-repacked"  # rewritten after every repack
        self._journal = Journal(self.path / "registry-journal", self.path.parent)
        self.damage = DamageLog(self.path / "registry-damage", self.path.parent)
        self._recent = Recent()  # this process's latest objects, for its readers
        self._known_trees: dict[bytes, Tree] = {}  # see _write_tree; only used under the write lock

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def exists_at(cls, path: Path) -> bool:
        return (Path(path) / "HEAD").is_file() and (Path(path) / "objects").is_dir()

    @classmethod
    def create(cls, path: Path, **kwargs) -> Ledger:
        """Make an empty ledger: one commit holding ledger.json and a README for auditors."""
        path = Path(path)
        if cls.exists_at(path):
            raise FileExistsError(f"a ledger already exists at {path}")
        make_dirs(path.parent)
        pygit2.init_repository(str(path), bare=True, initial_head=BRANCH)
        ledger = cls(path, **kwargs)
        repo = ledger.repo()
        info = LedgerInfo(format=FORMAT, registry=brace_uuid(), created=datetime.now(UTC))
        created: list[pygit2.Oid] = []

        def put_loose(type_: int, data: bytes) -> pygit2.Oid:
            created.append(repo.odb.write(type_, data))
            return created[-1]

        tree = _write_tree(repo, None, {
            layout.LEDGER_INFO: codec.encode(info),
            layout.README: layout.LEDGER_README.encode(),
        }, put_loose)
        sig = pygit2.Signature(*ledger.committer)
        commit = repo.create_commit(None, sig, sig, "init ledger\n\nChannel: system\n", tree, [])
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

    def recover(self) -> str | None:
        """Replay the journal (see journal.py) after a crash: put back what didn't reach the disk,
        move the branch to the journal's last commit, and make it all durable. Returns the commit
        the branch was moved to, if it had to be."""
        if not self._journal.pending():
            return None
        with self.write_lock(30.0):
            entries = list(self._journal.entries())
            links = chain(entries)
            repo = pygit2.Repository(str(self.path))  # fresh: it sees every pack on disk
            try:
                try:
                    tip = str(repo.lookup_reference(REF).target)
                except (pygit2.GitError, ValueError, KeyError):  # torn by the crash
                    if not links:
                        raise
                    tip = None
                done, found = None, datetime.now(UTC).isoformat(timespec="seconds")
                damage: list[Damage] = []
                for path in (self._journal.retired, self._journal.path):
                    damage += torn_before_whole(path, found)
                for entry in links:
                    wrong = inspect_synced(entry, self._journal.base, found)
                    if wrong and not entry.checks and entry is links[-1]:
                        # An older release synced big files *beside* the record: its last record
                        # may have been cut off before they were, so never acknowledged.
                        break
                    # Every record that is whole is replayed, even one whose big file is damaged:
                    # later records build on its commit, and they were acknowledged.
                    materialize(entry, self.path / "objects" / "pack", self._journal.base, lambda c: c in repo)
                    damage += wrong
                    done = entry.commit
                self.damage.add(damage)
                # Only ever forward: the tip is torn, or an ancestor of `done` (its last moves lost).
                if done is not None and (tip is None or (done != tip and repo.descendant_of(done, tip))):
                    self._move_branch(repo, None, done)
                    log.warning("ledger: moved main from %s to %s, replaying the journal after a crash",
                                (tip or "(unreadable)")[:12], done[:12])
                    moved = done
                else:
                    moved = None
            finally:
                repo.free()
            self.checkpoint(entries)
            return moved

    def checkpoint(self, entries: list[Entry] | None = None) -> None:
        """Make durable everything the journal (and a retired one) describes, and the ref, then
        empty the journal. Callers hold the write lock (as before deleting anything a journal
        replay might bring back)."""
        with self._checkpoint_lock():
            if entries is None:
                entries = list(self._journal.entries())
            self._sync_described(entries)
            self._journal.reset()

    def _checkpoint_retired(self) -> None:
        """The background half of a checkpoint: the journal was retired under the write lock;
        sync what it describes, then delete it. Writers carry on meanwhile, in a new journal."""
        try:
            with self._checkpoint_lock():
                self._sync_described(list(self._journal.entries(retired_only=True)))
                self._journal.retired.unlink(missing_ok=True)
        except Exception:
            log.exception("journal checkpoint failed; the retired journal stays until the next one")

    def _sync_described(self, entries: list[Entry]) -> None:
        pack_dir, base = self.path / "objects" / "pack", self._journal.base
        paths = {p for e in entries for p in described(e, pack_dir, base)}
        # (a pack a repack has folded into a new one is gone: git synced the new one)
        fsync_all([*paths, self._ref_path, self._ref_path.parent], missing_ok=True)

    @contextmanager
    def _checkpoint_lock(self):
        fd = os.open(self.path / "registry-checkpoint.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def repo(self) -> pygit2.Repository:
        """This thread's Repository: libgit2 objects must not be used from two threads at once."""
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.path))
            repo.odb.add_backend(RecentObjects(self._recent), 0)  # below the packs: asked last
            self._local.packs = PackWatch(self)
        return repo

    def _packs(self) -> set[str]:
        # (not git's temporary `tmp_*` files: one seen and then renamed must not look like a deletion)
        return {n for n in os.listdir(self.path / "objects" / "pack") if n.startswith("pack-") and n.endswith(".pack")}

    def _forget_repacked(self) -> None:
        """libgit2 learns of new packs by itself but keeps the ones a repack deleted open forever:
        once packs may have been deleted (see PackWatch), this thread opens a fresh repository."""
        if getattr(self._local, "repo", None) is None:
            return
        if self._local.packs.gone():
            self._local.repo.free()
            self._local.repo = None
            self._local.snapshot = None

    @property
    def history(self):
        if self._history is None:
            cache_dir = self._cache_dir or self.path.parent / "cache"
            self._history = History(self, cache_dir / "history.sqlite3")
        return self._history

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

    # --- writing -------------------------------------------------------------------------------

    def transact(self, build: Callable[[Snapshot], Change | None], *, timeout: float = 30.0) -> Commit | None:
        """Run ``build`` on the snapshot at the tip and commit its change, atomically.

        ``build`` runs under the write lock, so what it checked still holds when the commit lands;
        it may also do I/O that must precede the commit (moving an uploaded blob into the store).
        Returns the new commit, or None when ``build`` returned None or changed nothing.
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
            if committed is None:
                return None
        # The history index is not written here: it is derived, and whoever reads it first brings
        # it up to the tip (History.sync), so a publish doesn't wait for it.
        self._packs_written += 1
        if self._packs_written % 16 == 0:
            self.maybe_repack(background=True)
        return committed

    def _commit(self, repo: pygit2.Repository, memory: MemoryObjects, build) -> Commit | None:
        for attempt in range(10):
            memory.clear()
            tip = repo.lookup_reference(REF).target
            parent = repo[tip]
            change = build(Snapshot(repo, parent))
            if change is None:
                return None
            tree = _write_tree(repo, parent.tree, {p: _bytes(v) for p, v in change.writes.items()}, memory.put,
                               self._known_trees)
            if tree == parent.tree.id:
                return None
            author = pygit2.Signature(change.author[0], change.author[1], int(change.provenance.at.timestamp()), 0)
            committer = pygit2.Signature(*self.committer)
            text = repo.create_commit_string(author, committer, change.message(), tree, [parent.id])
            commit_id = memory.put(ObjectType.COMMIT, text.encode())
            committed = Commit.of(repo[commit_id])
            # The journal record carries the pack and the small files the commit needs: one fsync of
            # it makes the commit durable. Big files are made durable first: a record must never
            # be durable before what it points to.
            objects = memory.take()
            written = write_pack(objects, self.path / "objects" / "pack")
            small = [n for n in change.needs if n.size <= COPY_LIMIT]
            big = [n for n in change.needs if n.size > COPY_LIMIT]
            if big:
                fsync_all([p for n in big for p in ((n.path.parent,) if n.durable else (n.path, n.path.parent))])
            self._journal.append(Entry(
                str(tip), str(commit_id), written.name, written.pack_data, written.idx_data,
                copies={self._journal.relative(n.path): n.path.read_bytes() for n in small},
                synced=tuple(self._journal.relative(n.path) for n in big),
                checks={self._journal.relative(n.path): (n.size, n.sha256) for n in big}))
            self._journal.sync()
            try:
                self._move_branch(repo, str(tip), str(commit_id))
            except (RefMoved, OSError) as exc:
                log.warning("ledger tip moved or ref locked (attempt %d): %s", attempt + 1, exc)
                self._clear_stale_ref_lock()
                continue
            self._recent.add(objects)
            if self._journal.size() > CHECKPOINT_AT and self._journal.retire():
                threading.Thread(target=self._checkpoint_retired, name="ledger-checkpoint", daemon=True).start()
            return committed
        raise Busy("The ledger could not be updated after 10 attempts; try again.")

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

    # --- maintenance ---------------------------------------------------------------------------

    def loose_objects_estimate(self) -> int:
        """Like `git gc --auto`: count one fan-out directory and scale up."""
        try:
            return len(os.listdir(self.path / "objects" / "17")) * 256
        except FileNotFoundError:
            return 0

    def pack_count(self) -> int:
        return sum(1 for e in os.scandir(self.path / "objects" / "pack") if e.name.endswith(".pack"))

    def repack(self, *, full: bool = False, yielding: bool = False) -> None:
        """Fold packs together, with git itself.

        Default: geometric, cheap: only the small packs are rewritten (see repack.py), and loose
        objects (libgit2 never packs them) once they pile up. `full`: one pack, and unreachable
        objects older than an hour pruned. Never blocks writers: a repack only deletes packs whose
        every object is in the pack it wrote, and readers fall back on a miss."""
        git = shutil.which("git")
        if git is None:
            log.warning("git is not installed: the ledger's packs can't be folded together")
            return
        with self.repack_lock() as fd:
            # In the background it runs niced: on a small machine it would otherwise take CPU from
            # the very requests whose commits it folds. git fsyncs the packs it writes before
            # deleting the ones they replace. It inherits the lock: a repack outliving a killed
            # registry process still excludes the next.
            nice = shutil.which("nice") if yielding else None
            prefix = [*([nice, "-n", "10"] if nice else []), git, "-C", str(self.path),
                      "-c", "core.fsync=objects,derived-metadata,reference", "-c", "core.fsyncMethod=fsync"]
            try:
                if full:
                    subprocess.run([*prefix, "repack", "-a", "-d", "-q"], check=True, pass_fds=(fd,))
                    subprocess.run([*prefix, "prune", "--expire=1.hour.ago"], check=True, pass_fds=(fd,))
                    return
                victims = roll_up(self.path / "objects" / "pack")
                if self.loose_objects_estimate() >= LOOSE_LIMIT or sum(p.objects for p in victims) >= GIT_ABOVE:
                    subprocess.run([*prefix, "repack", "-d", "-q", "--geometric=2"], check=True, pass_fds=(fd,))
                elif victims:
                    fold(self.path, victims, prefix, pass_fds=(fd,))
            finally:  # (even a failed repack may have deleted packs)
                write_replacing(self._repack_mark, f"{time.time_ns()}\n".encode())

    @contextmanager
    def repack_lock(self):
        """Held by whoever folds or deletes packs (one at a time, across processes), and by whoever
        must see them hold still (`git fsck`). Yields the lock's file descriptor."""
        fd = os.open(self.path / "registry-repack.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def maybe_repack(self, pack_limit: int = PACK_LIMIT, loose_limit: int = LOOSE_LIMIT, background: bool = False) -> bool:
        """Repack when packs or loose objects pile up (as `git gc --auto` would): every lookup
        of an object consults each pack's index until it is found."""
        if self.pack_count() < pack_limit and self.loose_objects_estimate() < loose_limit:
            return False
        if background:
            if not self._repacking.acquire(blocking=False):
                return False

            def run() -> None:
                try:
                    self.repack(yielding=True)
                except Exception:
                    log.exception("background repack failed")
                finally:
                    self._repacking.release()

            threading.Thread(target=run, name="ledger-repack", daemon=True).start()
        else:
            self.repack(yielding=True)
        return True


class PackWatch:
    """Tells when a repository may hold packs that have since been deleted (see `_forget_repacked`).

    Listing the pack directory on every commit costs more than it seems (a directory that has seen
    thousands of packs come and go stays large). Every repack rewrites a mark instead: once it has
    changed, the repository is suspect. A `git gc` run by hand leaves no mark, so the directory is
    listed now and then too, and a pack listed before and gone now also makes it suspect."""

    __slots__ = ("_ledger", "_mark", "_seen", "_listed")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._mark = self._read_mark()
        self._seen = ledger._packs()
        self._listed = time.monotonic()

    def _read_mark(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._ledger._repack_mark)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def gone(self) -> bool:
        if self._read_mark() != self._mark:
            return True
        if time.monotonic() - self._listed < RELIST_SECONDS:
            return False
        now, self._listed = self._ledger._packs(), time.monotonic()
        gone = not self._seen <= now
        self._seen = now
        return gone


class Locked(Busy):
    """Another writer held the write lock for longer than the caller would wait (maybe not at all)."""


class RefMoved(Exception):
    """The branch moved between reading it and updating it (an outside git wrote it)."""


def _bytes(value: msgspec.Struct | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return codec.encode(value)


def _write_tree(repo: pygit2.Repository, tree: pygit2.Tree | None, writes: Mapping[str, bytes | None],
                put: Callable[[int, bytes], pygit2.Oid], known: dict[bytes, Tree] | None = None) -> pygit2.Oid | None:
    """Apply ``writes`` (relative paths) to ``tree``, rewriting only the trees on their paths, with
    ``put(type, data) -> id`` creating each new object. Returns the new tree id, or None if the
    result is empty (git has no empty directories). ``known`` caches trees' entries by raw id: the
    next commit starts from the trees this one wrote."""
    return _rewrite(repo, tree.id.raw if tree is not None else None, writes, put, {} if known is None else known)


def _rewrite(repo: pygit2.Repository, tree_id: bytes | None, writes: Mapping[str, bytes | None],
             put: Callable[[int, bytes], pygit2.Oid], known: dict[bytes, Tree]) -> pygit2.Oid | None:
    here: dict[bytes, bytes | None] = {}
    below: dict[bytes, dict[str, bytes | None]] = {}
    for path, data in writes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head.encode(), {})[rest] = data
        else:
            here[head.encode()] = data
    if tree_id is None:
        tree = Tree()
    else:
        cached = known.get(tree_id)
        tree = cached.copy() if cached is not None else Tree.parse(repo[pygit2.Oid(raw=tree_id)].read_raw())
    for name, data in here.items():
        if data is None:
            tree.remove(name)
        else:
            tree.set(name, BLOB_MODE, put(ObjectType.BLOB, data).raw)
    for name, sub in below.items():
        existing = tree.entries.get(name)
        subtree = existing[1] if existing is not None and existing[0] == TREE_MODE else None
        new = _rewrite(repo, subtree, sub, put, known)
        if new is None:
            tree.remove(name)
        else:
            tree.set(name, TREE_MODE, new.raw)
    if not tree.entries:
        return None
    oid = put(ObjectType.TREE, tree.encode())
    if len(known) >= KNOWN_TREES:
        known.clear()
    known[oid.raw] = tree
    return oid
