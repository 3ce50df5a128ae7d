"""After a crash: replaying the journal (`recover`), and checkpoints (syncing what the journal
describes, then emptying it). See journal.py for the protocol."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pygit2

from .. import locks
from ..fsync import fsync_all
from .branch import REF, Branch
from .journal import (
    Damage,
    DamageLog,
    Entry,
    Journal,
    chain,
    described,
    inspect_synced,
    materialize,
    torn_before_whole,
)

log = logging.getLogger("registry.ledger")


class Checkpoints:
    """Making durable what the journal of the ledger at ``path`` describes, then emptying it.
    Thread-safe, and one checkpoint at a time across processes (a flock)."""

    def __init__(self, path: Path, journal: Journal, branch: Branch) -> None:
        self.path = path
        self.journal = journal
        self.branch = branch

    def checkpoint(self, entries: list[Entry] | None = None) -> None:
        """Make durable everything the journal (and a retired one) describes, and the ref, then
        empty the journal (``entries``: its records, if the caller read them already). Callers
        hold the write lock (as before deleting anything a journal replay might bring back)."""
        with self._lock():
            if entries is None:
                entries = list(self.journal.entries())
            self._sync_described(entries)
            self.journal.reset()

    def checkpoint_retired(self) -> None:
        """The background half of a checkpoint: the journal was retired under the write lock;
        sync what it describes, then delete it. Writers carry on meanwhile, in a new journal.
        Never raises: a failure is logged, and the retired journal stays for the next one."""
        try:
            with self._lock():
                self._sync_described(list(self.journal.entries(retired_only=True)))
                self.journal.retired.unlink(missing_ok=True)
        except Exception:
            log.exception("journal checkpoint failed; the retired journal stays until the next one")

    def _sync_described(self, entries: list[Entry]) -> None:
        pack_dir, base = self.path / "objects" / "pack", self.journal.base
        paths = {p for e in entries for p in described(e, pack_dir, base)}
        # (a pack a repack has folded into a new one is gone: git synced the new one)
        fsync_all([*paths, self.branch.ref, self.branch.ref.parent], missing_ok=True)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with locks.held(self.path / "registry-checkpoint.lock"):
            yield


def recover(path: Path, branch: Branch, checkpoints: Checkpoints, damage: DamageLog) -> str | None:
    """Replay the journal of the ledger at ``path`` (see journal.py) after a crash: put back what
    didn't reach the disk, move the branch to the journal's last commit, record any damage found,
    and make it all durable (a checkpoint). Returns the commit the branch was moved to, if it had
    to be. Takes the write lock (Locked after 30 s); nothing to do (no lock) if the journal is empty."""
    journal = checkpoints.journal
    if not journal.pending():
        return None
    with branch.write_lock(30.0):
        entries = list(journal.entries())
        links = chain(entries)
        repo = pygit2.Repository(str(path))  # fresh: it sees every pack on disk
        try:
            tip: str | None
            try:
                tip = str(repo.lookup_reference(REF).target)
            except (pygit2.GitError, ValueError, KeyError):  # torn by the crash
                if not links:
                    raise
                tip = None
            done, found = None, datetime.now(UTC).isoformat(timespec="seconds")
            wrongs: list[Damage] = []
            for journal_path in (journal.retired, journal.path):
                wrongs += torn_before_whole(journal_path, found)
            for entry in links:
                wrong = inspect_synced(entry, journal.base, found)
                if wrong and not entry.checks and entry is links[-1]:
                    # An older release synced big files *beside* the record: its last record
                    # may have been cut off before they were, so never acknowledged.
                    break
                # Every record that is whole is replayed, even one whose big file is damaged:
                # later records build on its commit, and they were acknowledged.
                materialize(entry, path / "objects" / "pack", journal.base, lambda c: c in repo)
                wrongs += wrong
                done = entry.commit
            damage.add(wrongs)
            # Only ever forward: the tip is torn, or an ancestor of `done` (its last moves lost).
            moved: str | None = None
            if done is not None and (tip is None or (done != tip and repo.descendant_of(done, tip))):
                branch.move(repo, None, done)
                log.warning("ledger: moved main from %s to %s, replaying the journal after a crash",
                            (tip or "(unreadable)")[:12], done[:12])
                moved = done
        finally:
            repo.free()
        checkpoints.checkpoint(entries)
        return moved
