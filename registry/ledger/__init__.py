"""The ledger: all registry state as commits in a bare git repository."""

from . import layout
from .store import Change, Commit, Ledger, Locked, Snapshot

__all__ = ["Change", "Commit", "Ledger", "Locked", "Snapshot", "layout"]
