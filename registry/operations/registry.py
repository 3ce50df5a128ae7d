"""An opened data directory."""

from __future__ import annotations

from ..blobs import FileBlobStore
from ..config import Settings
from ..ledger import Ledger, Snapshot


class Registry:
    """An opened data directory: the ledger, the blob store and the settings they were opened with."""

    def __init__(self, settings: Settings, ledger: Ledger, blobs: FileBlobStore) -> None:
        self.settings = settings
        self.ledger = ledger
        self.blobs = blobs

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Registry:
        kwargs = dict(committer=(settings.committer_name, settings.committer_email), cache_dir=settings.cache_path)
        if create and not Ledger.exists_at(settings.ledger_path):
            ledger = Ledger.create(settings.ledger_path, **kwargs)
        else:
            ledger = Ledger.open(settings.ledger_path, **kwargs)
        return cls(settings, ledger, FileBlobStore(settings.blobs_path))

    def snapshot(self) -> Snapshot:
        return self.ledger.snapshot()

    def snapshot_at(self, commit_id: str) -> Snapshot:
        return self.ledger.snapshot_at(commit_id)
