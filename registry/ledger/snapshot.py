"""A read-only view of the ledger at one commit: records by path, trees by id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pygit2
from pygit2.enums import ObjectType

from . import codec, lookup

T = TypeVar("T")


class Snapshot:
    """The registry as of one commit. Cheap to make; use it from the thread that made it."""

    __slots__ = ("commit_id", "tree", "_repo")

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit) -> None:
        self._repo = repo
        self.commit_id = str(commit.id)
        self.tree = commit.tree

    def _entry(self, path: str) -> pygit2.Object | None:
        return lookup.entry(self.tree, path)

    def get(self, path: str, type_: type[T]) -> T | None:
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        key = entry.id.raw
        hit = codec.cached(key, type_)
        if hit is not None:
            return hit
        data = self._repo[entry.id].data
        return codec.remember(key, type_, codec.decode(data, type_), len(data))

    def raw(self, path: str) -> bytes | None:
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        return self._repo[entry.id].data

    def exists(self, path: str) -> bool:
        return lookup.holds(self.tree, path)

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
