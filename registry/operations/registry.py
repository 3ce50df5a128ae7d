"""An opened data directory: the ledger, the blob store, and the history index derived from them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from .. import layout
from ..audit import Action, T
from ..blobs import BlobStore, open_store
from ..config import Settings
from ..history import History
from ..ledger import Change, Committed, Ledger, NoChange, Snapshot
from ..model import LedgerInfo, brace_uuid

FORMAT = 1  # of the ledger: ledger.json says which
log = logging.getLogger("registry")


class Registry:
    """What every verb and every read works on. Writes go through `transact`, which also indexes
    the new commit's history (one insert) so that no reader has to catch up with it."""

    def __init__(self, settings: Settings, ledger: Ledger, blobs: BlobStore) -> None:
        self.settings = settings
        self.ledger = ledger
        self.blobs = blobs
        self.history = History(ledger, settings.cache_path / "history.sqlite3")
        self._catching_up = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Registry:
        kwargs = dict(committer=(settings.committer_name, settings.committer_email))
        if create and not Ledger.exists_at(settings.ledger_path):
            return cls.created(settings, Ledger.create(settings.ledger_path, first_commit(), **kwargs),
                               open_store(settings))
        return cls(settings, Ledger.open(settings.ledger_path, **kwargs), open_store(settings))

    @classmethod
    def created(cls, settings: Settings, ledger: Ledger, blobs: BlobStore | None) -> Registry:
        """A registry on a ledger just made: its first commit is the first the index holds."""
        reg = cls(settings, ledger, blobs)
        reg.history.record(ledger.commit(ledger.head()), None)
        return reg

    def snapshot(self) -> Snapshot:
        return self.ledger.snapshot()

    def snapshot_at(self, commit_id: str) -> Snapshot:
        return self.ledger.snapshot_at(commit_id)

    def transact(self, build: Callable[[Snapshot], Change | NoChange | None], *, timeout: float = 30.0) -> Committed:
        done = self.ledger.transact(build, timeout=timeout)
        if done.commit is not None and not self.history.record(done.commit, done.parent):
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


def first_commit() -> Change:
    """What an empty registry's ledger holds: its format and id, and a README for auditors."""
    info = LedgerInfo(format=FORMAT, registry=brace_uuid(), created=datetime.now(UTC))
    return Change(summary="init ledger", author=("registry", "registry@localhost"), time=info.created,
                  writes={layout.LEDGER_INFO: info, layout.README: layout.LEDGER_README.encode()},
                  trailers=((T.CHANNEL, "system"), (T.ACTION, Action.INIT)))
