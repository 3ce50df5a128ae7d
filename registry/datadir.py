"""An opened data directory: the ledger, the blob store, and the history index derived from them."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from . import cache, layout
from .audit import Action, T
from .blobs import BlobStore, MissingBlobs, open_store
from .config import Settings
from .diskspace import DiskSpace, disk_full, met
from .errors import RegistryError
from .history import History
from .identity import operator
from .ledger import Change, Commit, Committed, Ledger, NoChange, Snapshot
from .model import LedgerInfo, brace_uuid
from .trust.keys import KeyStore, LedgerSigner, new_keys

FORMAT = 1  # of the ledger: ledger.json says which
log = logging.getLogger("registry")
# The commits made while serving one request (the front door sets a list; threads share it), so
# that its answer can name them (X-Registry-Commit: what a replica waits for before answering).
COMMITS: ContextVar[list[str] | None] = ContextVar("registry_commits", default=None)
# Called with every commit this process makes, once it is durable (a served worker's event log:
# web/eventlog.py). A hook must not raise: the commit is made, whatever it does.
COMMITTED: list[Callable[[Commit], None]] = []


class Registry:
    """What every verb and every read works on. Writes go through `transact`, which also indexes
    the new commit (its package history and its place in the audit trail: a few inserts) so that no
    reader has to catch up with it. Every commit is signed with the data directory's keys (trust/keys.py)."""

    def __init__(self, settings: Settings, ledger: Ledger, blobs: BlobStore) -> None:
        self.settings = settings
        cache.configure(settings)  # (every cache's bound, from these settings: the process's caches are shared)
        self.ledger = ledger
        self.blobs = blobs
        self.keys = KeyStore(settings.keys_path)
        if ledger.signer is None:
            ledger.signer = LedgerSigner(self.keys)
        self.history = History(ledger, settings.cache_path / "history.sqlite3")
        self.missing = MissingBlobs(settings.blobs_missing_path)  # (damage: files the store lacks)
        self.disk = DiskSpace(settings.data_path, settings.min_free_bytes)
        self._catching_up = threading.Lock()
        marker = settings.replica_of_path
        self.primary = marker.read_text().strip() if marker.exists() else None  # a replica's: it never commits

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False, recover: bool = True) -> Registry:
        """``recover``: False for a process beside a running server (a worker's walk apart): the
        server recovered the ledger when it started, and its journal now holds commits in flight."""
        if create and not Ledger.exists_at(settings.ledger_path):
            return cls.created(settings, create_ledger(settings), open_store(settings))
        ledger = Ledger.open(settings.ledger_path, committer=_committer(settings), recover=recover)
        reg = cls(settings, ledger, open_store(settings))
        if reg.primary is None and recover:
            reg.adopt_keys()
        return reg

    def adopt_keys(self) -> None:
        """A ledger from before signing gets its keys, in a commit they sign (once, by whoever
        opens it first with write access; the commits before it stay unsigned)."""
        signer = self.ledger.signer
        if not isinstance(signer, LedgerSigner):  # (a ledger signed by no keys of a data directory's)
            return
        if self.snapshot().exists(layout.SIGNING_KEYS) or not os.access(self.ledger.path, os.W_OK):
            return
        who = operator()

        def build(snap: Snapshot) -> Change | NoChange:
            if snap.exists(layout.SIGNING_KEYS):
                return NoChange()
            info = ledger_info(snap)
            record = new_keys(self.keys, self.settings.committer_email, info.registry, who.provenance("system"))
            signer.introducing = record
            return Change(summary="adopt signing keys: every commit from here on is signed",
                          author=who.author, time=record.keys[0].added.at, writes={layout.SIGNING_KEYS: record},
                          trailers=((T.ACTOR, who.actor), (T.CHANNEL, "system"), (T.ACTION, Action.ADOPT_KEYS),
                                    *((T.KEY, k.fingerprint) for k in record.keys)))

        try:
            self.transact(build)
        finally:
            signer.introducing = None

    @classmethod
    def created(cls, settings: Settings, ledger: Ledger, blobs: BlobStore | None) -> Registry:
        """A registry on a ledger just made: its first commit is the first the index holds."""
        reg = cls(settings, ledger, blobs)  # type: ignore[arg-type]  # (None: bootstrap's, which commits no file)
        reg.history.record(ledger.commit(ledger.head()), None)
        return reg

    def snapshot(self) -> Snapshot:
        return self.ledger.snapshot()

    def snapshot_at(self, commit_id: str) -> Snapshot:
        return self.ledger.snapshot_at(commit_id)

    def transact(self, build: Callable[[Snapshot], Change | NoChange | None], *, timeout: float = 30.0) -> Committed:
        if self.primary is not None:
            raise RegistryError(f"This data directory is a read replica of {self.primary}: it never commits. Make the "
                                "change on the primary (its CLI, its API, or through the replica's web server).",
                                status=503)
        self.disk.check()  # (507 while the disk is all but full: before anything is written)
        try:
            done = self.ledger.transact(build, timeout=timeout)
        except OSError as exc:
            if not disk_full(exc):
                raise
            raise met(exc) from None  # (undone: ledger/writing.py, fsync.write_file)
        if done.commit is not None:
            made = COMMITS.get()
            if made is not None:
                made.append(done.commit.id)
            for hook in COMMITTED:
                hook(done.commit)
            if not self.history.record(done.commit, done.parent):
                self.catch_up_history(background=True)  # (the index was behind: not this caller's wait)
        return done

    def catch_up_history(self, *, background: bool = False, steps: int | None = None) -> None:
        """Bring the history index to the tip in bounded steps (each a short transaction), here or
        in a thread; at most one catch-up at a time in this process."""
        def run() -> None:
            with self._catching_up:
                done = 0
                try:
                    while (steps is None or done < steps) and self.history.catch_up():
                        done += 1
                except Exception as exc:  # derived: the next catch-up tries again
                    log.warning("history index: catching up failed (%s)", exc)

        if background:
            threading.Thread(target=run, name="history-catch-up", daemon=True).start()
        else:
            run()


def ledger_info(snap: Snapshot) -> LedgerInfo:
    """The ledger's own record (its format, the registry's id), which its first commit wrote."""
    info = snap.get(layout.LEDGER_INFO, LedgerInfo)
    if info is None:  # (damage: nothing a registry commits removes it)
        raise RegistryError(f"The ledger has no {layout.LEDGER_INFO}: it is damaged, or was not made by `registry "
                            "init`. The operator should run `registry verify`.", status=500)
    return info


def first_commit(keys: KeyStore | None = None, principal: str = "registry@localhost") -> Change:
    """What an empty registry's ledger holds: its format and id, a README for auditors, and (given
    where to keep them) its first signing keys, which sign this commit already."""
    info = LedgerInfo(format=FORMAT, registry=brace_uuid(), created=datetime.now(UTC))
    writes: dict[str, msgspec.Struct | bytes | None] = {layout.LEDGER_INFO: info,
                                                        layout.README: layout.LEDGER_README.encode()}
    trailers = [(T.CHANNEL, "system"), (T.ACTION, Action.INIT)]
    if keys is not None:
        record = new_keys(keys, principal, info.registry, operator().provenance("system"))
        writes[layout.SIGNING_KEYS] = record
        trailers += [(T.KEY, k.fingerprint) for k in record.keys]
    return Change(summary="init ledger", author=("registry", "registry@localhost"), time=info.created,
                  writes=writes, trailers=tuple(trailers))


def create_ledger(settings: Settings, path: Path | None = None) -> Ledger:
    """A new, signed ledger at ``path`` (default: the data directory's), its keys in the data directory."""
    keys = KeyStore(settings.keys_path)
    return Ledger.create(path or settings.ledger_path, first_commit(keys, settings.committer_email),
                         committer=_committer(settings), signer=LedgerSigner(keys))


def _committer(settings: Settings) -> tuple[str, str]:
    return settings.committer_name, settings.committer_email


# What to do next with a ledger `create_ledger` made (`registry init`): it holds no one yet.
NEXT_STEPS = """\
  registry --data {data} user create EMAIL
  registry --data {data} workspace create SLUG [--uuid BITBUCKET_WORKSPACE_UUID]
  registry --data {data} grant SLUG EMAIL admin
  registry --data {data} token create EMAIL"""
