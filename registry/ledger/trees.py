"""Trees: git's directory objects, kept in git's order, and rewriting only the trees a change touches."""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pygit2
from pygit2.enums import ObjectType

from ..cache import Cache
from .guard import segment_problem

# The trees the last commits wrote, by raw id: the next commit starts from them (content-addressed,
# so every ledger of the process may share them; a cached tree is copied before it is changed).
WRITTEN = Cache("written-trees", "trees the last commits wrote, parsed, for the next commit")


BLOB_MODE, TREE_MODE = b"100644", b"40000"
GITLINK_MODE = b"160000"  # (a submodule's commit: git can hold one; the registry never writes one)


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


def read(repo: pygit2.Repository, tree_id: bytes | pygit2.Oid) -> Tree:
    """A tree's entries from its raw object, by our own parser: this reads a tree libgit2 refuses
    to (one an older release wrote with a name over 65,535 bytes), so it can still be changed."""
    oid = tree_id if isinstance(tree_id, pygit2.Oid) else pygit2.Oid(raw=tree_id)
    return Tree.parse(repo.odb.read(oid)[1])


def write_tree(repo: pygit2.Repository, tree_id: pygit2.Oid | None, writes: Mapping[str, bytes | None],
                put: Callable[[int, bytes], pygit2.Oid], known: Cache | None = None) -> pygit2.Oid | None:
    """Apply ``writes`` (relative paths) to the tree ``tree_id``, rewriting only the trees on their
    paths, with ``put(type, data) -> id`` creating each new object. Returns the new tree id, or None
    if the result is empty (git has no empty directories). ``known`` caches trees' entries by raw id:
    the next commit starts from the trees this one wrote."""
    return rewrite(repo, tree_id.raw if tree_id is not None else None, writes, put, known)


def rewrite(repo: pygit2.Repository, tree_id: bytes | None, writes: Mapping[str, bytes | None],
             put: Callable[[int, bytes], pygit2.Oid], known: Cache | None) -> pygit2.Oid | None:
    here: dict[bytes, bytes | None] = {}
    below: dict[bytes, dict[str, bytes | None]] = {}
    for path, data in writes.items():
        head, sep, rest = path.partition("/")
        if sep:
            below.setdefault(name_bytes(head), {})[rest] = data
        else:
            here[name_bytes(head)] = data
    if tree_id is None:
        tree = Tree()
    else:
        cached = known.get(tree_id) if known is not None else None
        tree = cached.copy() if cached is not None else read(repo, tree_id)
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


# --- names as paths: a tree entry's name is bytes, a ledger path is text ---------------------------


def name_text(name: bytes) -> str:
    """An entry's name as a path segment; bytes that aren't UTF-8 survive the round trip (name_bytes)."""
    return name.decode("utf-8", "surrogateescape")


def name_bytes(segment: str) -> bytes:
    return segment.encode("utf-8", "surrogateescape")


SEGMENT_SHOWN = 48  # characters of a long path segment `shown` keeps


def shown(path: str) -> str:
    """A path as a person can read it: a long segment cut short (with its size), a strange one quoted."""
    return "/".join(_segment(s) for s in path.split("/"))


def _segment(name: str) -> str:
    size = len(name_bytes(name))
    cut = name if len(name) <= SEGMENT_SHOWN else f"{name[:SEGMENT_SHOWN]}...[{size} bytes]"
    return cut if cut.isprintable() else ascii(cut)


def changes(repo: pygit2.Repository, old: pygit2.Oid | None, new: pygit2.Oid | None,
            prefix: str = "") -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """Every file that differs between two trees: (path, its old blob's raw id or None, its new
    one's or None), read with our own parser, so it works where libgit2 can't parse a tree."""
    before = read(repo, old).entries if old is not None else {}
    after = read(repo, new).entries if new is not None else {}
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        path = prefix + name_text(name)
        old_tree, new_tree = (pygit2.Oid(raw=e[1]) if e is not None and e[0] == TREE_MODE else None for e in (was, now))
        if old_tree is not None or new_tree is not None:
            yield from changes(repo, old_tree, new_tree, path + "/")
        files = [e[1] if e is not None and e[0] != TREE_MODE else None for e in (was, now)]
        if any(files) and files[0] != files[1]:
            yield path, files[0], files[1]


@dataclass(frozen=True)
class Found:
    """An entry met by `walk`: its path, mode and id; ``problem`` if the tree holding it, or the
    entry itself, can't be read by libgit2 or created by a checkout (guard.segment_problem)."""

    path: str
    mode: bytes
    id: bytes
    problem: str | None = None

    @property
    def is_tree(self) -> bool:
        return self.mode == TREE_MODE


def walk(repo: pygit2.Repository, tree_id: pygit2.Oid, prefix: str = "") -> Iterator[Found]:
    """Every entry under the tree, depth first, read with our own parser: it never fails on an entry
    libgit2 can't parse, and names each such entry (and any tree it can't read at all) by its path.
    A bad entry is reported and not descended into."""
    try:
        tree = read(repo, tree_id)
    except (KeyError, ValueError) as exc:  # missing, or not a tree git could ever have written
        yield Found(prefix, TREE_MODE, tree_id.raw, f"its tree {tree_id} can't be read ({exc})")
        return
    for name, (mode, raw_id) in tree.entries.items():
        path = f"{prefix}/{name_text(name)}" if prefix else name_text(name)
        problem = segment_problem(name)
        if problem is None and mode not in (BLOB_MODE, TREE_MODE):
            kind = mode.decode("ascii", "replace")
            problem = f"an entry of mode {kind} (the ledger holds files and directories only)"
        yield Found(path, mode, raw_id, problem)
        if problem is None and mode == TREE_MODE:
            yield from walk(repo, pygit2.Oid(raw=raw_id), path)
