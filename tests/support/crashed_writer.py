"""A writer that crashed between its commit and indexing it in the history index (the ledger has
the commit, the index doesn't until a catch-up): tests make commits through it to see what readers
are shown while the index is behind."""

from __future__ import annotations


class Unindexed:
    """The registry, with `transact` as the ledger alone does it: committed, never indexed."""

    def __init__(self, reg) -> None:
        self._reg = reg

    def __getattr__(self, name):
        return getattr(self._reg, name)

    def transact(self, build, **kwargs):
        return self._reg.ledger.transact(build, **kwargs)
