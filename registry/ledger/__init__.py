"""The ledger: all registry state as commits in a bare git repository. It stores paths and bytes
and knows nothing of what they mean: that is registry/layout.py (paths) and registry/audit.py
(what a commit says)."""

from .branch import BRANCH, REF, Locked
from .commits import Change, Commit, Committed, NoChange, Signer, parse_trailers, with_signature
from .snapshot import Snapshot
from .store import Ledger

__all__ = ["BRANCH", "REF", "Change", "Commit", "Committed", "Ledger", "Locked", "NoChange", "Signer", "Snapshot",
           "parse_trailers", "with_signature"]
