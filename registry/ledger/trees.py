"""Trees: git's directory objects, kept in git's order, and rewriting only the trees a change touches."""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Mapping

import pygit2
from pygit2.enums import ObjectType

from ..cache import Cache

# The trees the last commits wrote, by raw id: the next commit starts from them (content-addressed,
# so every ledger of the process may share them; a cached tree is copied before it is changed).
WRITTEN = Cache("written-trees", "trees the last commits wrote, parsed, for the next commit")


BLOB_MODE, TREE_MODE = b"100644", b"40000"


class Tree:
    """A tree object's entries, kept in git's order beside their encoded form, so that changing an
    entry and encoding the tree again costs a bisect and a join rather than a sort: a commit's cost
    stays flat as directories grow. Entries are `<octal mode> <name> NUL <20-byte id>`; git orders
    them by name, a directory's name as if it ended with '/'."""

    __slots__ = ("entries", "_keys", "_chunks")

    def __init__(self) -> None:
        self.entries: dict[bytes, tuple[bytes, bytes]] = {}  # name: (mode, raw id)
        self._keys: list[bytes] = []
        self._chunks: list[bytes] = []

    @classmethod
    def parse(cls, data: bytes) -> Tree:
        tree = cls()
        pos, end = 0, len(data)
        while pos < end:
            space = data.index(b" ", pos)
            nul = data.index(b"\0", space)
            name, mode = data[space + 1:nul], data[pos:space]
            tree.entries[name] = (mode, data[nul + 1:nul + 21])
            tree._keys.append(_key(name, mode))
            tree._chunks.append(data[pos:nul + 21])
            pos = nul + 21
        return tree

    def copy(self) -> Tree:
        tree = Tree()
        tree.entries, tree._keys, tree._chunks = dict(self.entries), self._keys.copy(), self._chunks.copy()
        return tree

    def set(self, name: bytes, mode: bytes, raw_id: bytes) -> None:
        self.remove(name)
        key = _key(name, mode)
        at = bisect.bisect_left(self._keys, key)
        self._keys.insert(at, key)
        self._chunks.insert(at, b"%s %s\0%s" % (mode, name, raw_id))
        self.entries[name] = (mode, raw_id)

    def remove(self, name: bytes) -> None:
        old = self.entries.pop(name, None)
        if old is not None:
            at = bisect.bisect_left(self._keys, _key(name, old[0]))
            del self._keys[at], self._chunks[at]

    def encode(self) -> bytes:
        return b"".join(self._chunks)

    def nbytes(self) -> int:
        """What it keeps alive: per entry its name, sort key, chunk, id and mode (about 3 copies of
        the chunk's bytes and 200 bytes of object headers), and its three containers."""
        return (sys.getsizeof(self.entries) + sys.getsizeof(self._keys) + sys.getsizeof(self._chunks)
                + sum(3 * len(chunk) + 200 for chunk in self._chunks))


def _key(name: bytes, mode: bytes) -> bytes:
    return name + b"/" if mode == TREE_MODE else name


def write_tree(repo: pygit2.Repository, tree: pygit2.Tree | None, writes: Mapping[str, bytes | None],
                put: Callable[[int, bytes], pygit2.Oid], known: Cache | None = None) -> pygit2.Oid | None:
    """Apply ``writes`` (relative paths) to ``tree``, rewriting only the trees on their paths, with
    ``put(type, data) -> id`` creating each new object. Returns the new tree id, or None if the
    result is empty (git has no empty directories). ``known`` caches trees' entries by raw id: the
    next commit starts from the trees this one wrote."""
    return rewrite(repo, tree.id.raw if tree is not None else None, writes, put, known)


def rewrite(repo: pygit2.Repository, tree_id: bytes | None, writes: Mapping[str, bytes | None],
             put: Callable[[int, bytes], pygit2.Oid], known: Cache | None) -> pygit2.Oid | None:
    here: dict[bytes, bytes | None] = {}
    below: dict[bytes, dict[str, bytes | None]] = {}
    for path, data in writes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(head.encode(), {})[rest] = data
        else:
            here[head.encode()] = data
    if tree_id is None:
        tree = Tree()
    else:
        cached = known.get(tree_id) if known is not None else None
        tree = cached.copy() if cached is not None else Tree.parse(repo[pygit2.Oid(raw=tree_id)].read_raw())
    for name, data in here.items():
        if data is None:
            tree.remove(name)
        else:
            tree.set(name, BLOB_MODE, put(ObjectType.BLOB, data).raw)
    for name, sub in below.items():
        existing = tree.entries.get(name)
        subtree = existing[1] if existing is not None and existing[0] == TREE_MODE else None
        new = rewrite(repo, subtree, sub, put, known)
        if new is None:
            tree.remove(name)
        else:
            tree.set(name, TREE_MODE, new.raw)
    if not tree.entries:
        return None
    oid = put(ObjectType.TREE, tree.encode())
    if known is not None:
        known.put(oid.raw, tree, tree.nbytes())
    return oid
