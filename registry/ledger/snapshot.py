"""A read-only view of the ledger at one commit: records by path, trees by id.

Reads go through libgit2. A tree it can't parse (an older release wrote a name over 65,535 bytes
into it) is read with our own parser instead, its unreadable entries left out, and a record that
doesn't decode as its type reads as missing: either is logged once, and `registry verify` names it.
One bad record never makes a page fail for everyone else.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import NamedTuple, TypeVar

import msgspec
import pygit2
from pygit2.enums import ObjectType

from . import codec, lookup, trees
from .guard import segment_problem

T = TypeVar("T")
log = logging.getLogger("registry.ledger")
_reported: set[bytes] = set()  # ids of what was logged as unreadable (once per process each)


# What a tree entry's mode says it is, as libgit2 reads it (a gitlink names a commit: never ours to read)
_BY_MODE = {trees.TREE_MODE: ObjectType.TREE, trees.GITLINK_MODE: ObjectType.COMMIT}


class _Entry(NamedTuple):
    id: pygit2.Oid
    type: int


class Snapshot:
    """The registry as of one commit. Cheap to make; use it from the thread that made it (its
    repository is that thread's). Paths are relative, '/'-separated; a path that names nothing
    (or can't name anything: a NUL, a lone surrogate) reads as missing, never as an error."""

    __slots__ = ("commit_id", "tree", "_repo", "_keeps")

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit) -> None:
        self._repo = repo
        self.commit_id = str(commit.id)
        self.tree = commit.tree
        self._keeps = True  # decoded records go into the shared cache (see `scanning`)

    def scanning(self) -> Snapshot:
        """This snapshot, for a walk through every record (a check of the blob store, a collection):
        it uses what the records cache holds but adds nothing to it. A walk would only push out what
        requests use, and the records it left behind, scattered among its garbage, keep whole arenas
        of Python's heap alive: after a collection at 100,000 versions, 47 MiB more of them than
        before it when the walk kept its records, 22 MiB when it keeps none."""
        scan = copy.copy(self)
        scan._keeps = False
        return scan

    def _entry(self, path: str) -> pygit2.Object | _Entry | None:
        try:
            return lookup.entry(self.tree, path)
        except (ValueError, TypeError):  # a lone surrogate: no entry has one (lookup refuses a NUL)
            return None
        except pygit2.GitError:  # a tree on the way libgit2 can't parse
            return self._entry_by_hand(path)

    def _entry_by_hand(self, path: str) -> _Entry | None:
        here = _Entry(self.tree.id, ObjectType.TREE)
        for segment in path.split("/"):
            if here.type != ObjectType.TREE:
                return None
            found = self._children(here.id).get(segment)
            if found is None:
                return None
            here = found
        return here

    def _children(self, tree_id: pygit2.Oid) -> dict[str, _Entry]:
        """A tree's entries by name; one libgit2 can't parse is read by hand, without its bad entries."""
        try:
            return {name: _Entry(e.id, e.type) for e in _tree(self._repo, tree_id) if (name := e.name) is not None}
        except pygit2.GitError:
            return self._children_by_hand(tree_id)

    def _children_by_hand(self, tree_id: pygit2.Oid) -> dict[str, _Entry]:
        out = {}
        for name, (mode, raw_id) in trees.read(self._repo, tree_id).entries.items():
            if segment_problem(name) is not None:
                _report(raw_id, f"tree {tree_id} holds an entry git can't read ({segment_problem(name)}): left out")
                continue
            out[trees.name_text(name)] = _Entry(pygit2.Oid(raw=raw_id), _BY_MODE.get(mode, ObjectType.BLOB))
        return out

    def get(self, path: str, type_: type[T]) -> T | None:
        """The record at ``path``, or None if there is none, or none that decodes as ``type_`` (logged).
        Decoded records are cached by content and shared: never change one."""
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        return self._record(entry.id, path, type_)

    def _record(self, blob_id: pygit2.Oid, path: str, type_: type[T]) -> T | None:
        """The record in blob ``blob_id`` (found at ``path``, for a report), as `get` gives it."""
        key = blob_id.raw
        hit = codec.cached(key, type_)
        if hit is not None:
            return hit
        data = _blob(self._repo, blob_id)
        try:
            record = codec.decode(data, type_)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            _report(key, f"{path} is not a readable {type_.__name__} ({exc}): read as missing")
            return None
        return codec.remember(key, type_, record, len(data)) if self._keeps else record

    def raw(self, path: str) -> bytes | None:
        """The bytes of the file at ``path``, or None if there is none."""
        entry = self._entry(path)
        if entry is None or entry.type != ObjectType.BLOB:
            return None
        return _blob(self._repo, entry.id)

    def exists(self, path: str) -> bool:
        """Whether anything (a file or a directory) is at ``path``."""
        return self._entry(path) is not None

    def tree_id(self, path: str) -> str | None:
        """The git id of the directory at ``path``: changes exactly when something under it changes."""
        entry = self._entry(path)
        return str(entry.id) if entry is not None and entry.type == ObjectType.TREE else None

    def object_id(self, path: str) -> str | None:
        """The git id of what is at ``path`` (a record or a directory): changes exactly when it does."""
        entry = self._entry(path)
        return str(entry.id) if entry is not None else None

    def names(self, path: str) -> list[str]:
        """The names in the directory at ``path`` ("": the top), in git's order; [] if there is none."""
        entry = self._entry(path) if path else self.tree
        if entry is None or entry.type != ObjectType.TREE:
            return []
        try:
            return [name for e in _tree(self._repo, entry.id) if (name := e.name) is not None]
        except pygit2.GitError:
            return list(self._children_by_hand(entry.id))

    def files(self, path: str) -> Iterator[str]:
        """Every file path under the directory ``path``, recursively (shards included)."""
        return (sub for sub, _, _ in self._files(path))

    def _files(self, path: str) -> Iterator[tuple[str, pygit2.Oid, int]]:
        """`files`, each with its object's id and type (a blob; a submodule's commit, never ours)."""
        entry = self._entry(path) if path else self.tree
        if entry is None or entry.type != ObjectType.TREE:
            return
        stack = [(path, entry.id)]
        while stack:
            prefix, tree_id = stack.pop()
            entries: list[tuple[str, int, pygit2.Oid]]
            try:
                entries = [(name, e.type, e.id) for e in _tree(self._repo, tree_id) if (name := e.name) is not None]
            except pygit2.GitError:
                entries = [(name, e.type, e.id) for name, e in self._children_by_hand(tree_id).items()]
            for name, type_, oid in entries:
                sub = f"{prefix}/{name}" if prefix else name
                if type_ == ObjectType.TREE:
                    stack.append((sub, oid))
                else:
                    yield sub, oid, type_

    def walk(self) -> Iterator[trees.Found]:
        """Every entry of the snapshot, read by our own parser, each bad one named (trees.walk)."""
        return trees.walk(self._repo, self.tree.id)

    def records(self, path: str, type_: type[T]) -> Iterator[T]:
        """Every record of ``type_`` in a `.json` file under ``path`` (as `files` finds them); those
        that don't decode are left out (and logged). Each is read by the id its tree gave, not
        looked up again from the top: more than half of a walk through every version went to that."""
        for sub, object_id, object_type in self._files(path):
            if sub.endswith(".json") and object_type == ObjectType.BLOB:
                record = self._record(object_id, sub, type_)
                if record is not None:
                    yield record


def _tree(repo: pygit2.Repository, tree_id: pygit2.Oid) -> pygit2.Tree:
    tree = repo[tree_id]
    if not isinstance(tree, pygit2.Tree):
        raise TypeError(f"{tree_id} is not a tree")
    return tree


def _blob(repo: pygit2.Repository, blob_id: pygit2.Oid) -> bytes:
    # (straight from the object database, through libgit2's object cache: `repo[id]` would make a
    # Blob object only for its bytes to be copied out)
    type_, data = repo.odb.read(blob_id)
    if type_ != ObjectType.BLOB:
        raise TypeError(f"{blob_id} is not a blob")
    return data


def _report(key: bytes, problem: str) -> None:
    if key not in _reported:
        if len(_reported) > 10_000:
            _reported.clear()
        _reported.add(key)
        log.warning("ledger: %s; `registry verify` names it, `registry repair` removes it", problem)
