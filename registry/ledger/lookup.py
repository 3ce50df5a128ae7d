"""A tree's entry by path, without keeping the path alive forever.

pygit2 1.21 keeps a reference to every path a tree is asked for (`tree[path]`, `path in tree`: its
`pgit_borrow_fsdefault` never releases what `PyOS_FSPath` returns), so each path string built for a
lookup, a few per record read, lived as long as the process: a worker grew with every request that
read the ledger and every publish. Whether this pygit2 does is checked once, on a string of our
own; if it does, each lookup gives back the reference it took.
"""

from __future__ import annotations

import ctypes
import sys
import threading

import pygit2

_release = ctypes.pythonapi.Py_DecRef
_release.argtypes = [ctypes.py_object]
_release.restype = None
_leaks: list[bool] = []
_probing = threading.Lock()


def _keeps_paths(tree: pygit2.Tree) -> bool:
    if not _leaks:
        with _probing:
            if not _leaks:
                probe = "".join(("registry-probe/", "path"))  # (a string nobody else holds)
                before = sys.getrefcount(probe)
                probe in tree  # noqa: B015
                kept = sys.getrefcount(probe) > before
                if kept:
                    _release(probe)
                _leaks.append(kept)
    return _leaks[0]


def entry(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    """The object at ``path`` under ``tree``, or None (a path with a NUL names nothing: pygit2 would
    read it as the part before the NUL)."""
    if "\0" in path:
        return None
    len(tree)  # (loads the tree first: the reference is taken only once it is loaded, and a failed load raises here)
    try:
        return tree[path]
    except KeyError:
        return None
    finally:
        if isinstance(path, str) and _keeps_paths(tree):
            _release(path)


def holds(tree: pygit2.Tree, path: str) -> bool:
    """Whether ``path`` names an entry of ``tree`` (False for a path no git tree can hold)."""
    if "\0" in path:
        return False
    len(tree)
    try:
        return path in tree
    finally:
        if isinstance(path, str) and _keeps_paths(tree):
            _release(path)
