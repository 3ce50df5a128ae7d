"""After a crash: replaying the journal, and checkpoints (syncing what the journal describes, then
emptying it). See journal.py for the protocol."""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from datetime import UTC, datetime

import pygit2

from ..fsync import fsync_all
from .journal import (
    Damage,
    Entry,
    chain,
    described,
    inspect_synced,
    materialize,
    torn_before_whole,
)
from .writing import REF

log = logging.getLogger("registry.ledger")


class Recovery:
    """The recovery half of `Ledger` (a mixin: its state is set up in `Ledger.__init__`)."""

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

