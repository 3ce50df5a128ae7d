"""Every cache the registry keeps in memory: one kind, an LRU bounded in bytes, each named, its
bound a setting (`cache_<name>_bytes`).

An entry is weighed once, when it is put: its value by what it keeps alive (a page's body, a
record's encoded size times what decoding costs), plus its key and the entry's own bookkeeping.
cachetools' LRUCache keeps the order and the sum; around it, a lock (worker threads share the
caches), the key's weight (cachetools weighs values only), an entry larger than the whole bound
left out (cachetools raises), and a bound that settings can change (cachetools' is fixed).

`caches()` names every cache there is, so none escapes the sum: with libgit2's and SQLite's bounds,
an idle worker and the requests in flight, it is a worker's ceiling (`ceiling`; the README's "Memory").
"""

from __future__ import annotations

import functools
import sys
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import cachetools
import msgspec

T = TypeVar("T")
MiB = 2**20

# What one entry costs besides its key and value: cachetools keeps it in three dicts and an
# OrderedDict (a slot in each, a linked-list node, the size as an int), and (value, size) is a tuple.
ENTRY_OVERHEAD = 320
# Python objects decoded from JSON take about twice its bytes (1.7 to 2.1 for the ledger's records,
# measured); weighed at three times, so an estimate never falls short (tests/adversarial checks it).
DECODED_PER_BYTE = 3
# What a value weighed from its JSON costs besides its bytes: an object header (a str's is 49 bytes,
# an int's 28, a datetime's 48) and the slot or dict entry that holds it (the test checks the sum).
PER_VALUE = 64
# An idle worker: the interpreter, the libraries and the app on an empty registry, before any
# request (66 to 67 MiB resident measured; see the README's "Memory").
IDLE_WORKER = 68 * MiB
# What the requests in flight hold, and what the allocator keeps of it after them.
WORKING_MEMORY = 16 * MiB
# libgit2 keeps the delta bases it resolved, up to 16 MiB for each pack it reads deltas from (a
# constant of libgit2's, no setting): reads go to the big pack the last full repack made.
GIT_DELTA_BASES = 16 * MiB

NAMES: dict[str, str] = {}  # every kind of cache declared: name -> what it holds
_live: weakref.WeakSet[Cache] = weakref.WeakSet()  # every cache there is (a worker has one of each)
_settings: list = []  # the settings last configured (none: every bound its default)


class Cache:
    """An LRU bounded in bytes: ``put(key, value, nbytes)`` with what the value keeps alive."""

    def __init__(self, name: str, what: str) -> None:
        if NAMES.setdefault(name, what) != what:
            raise ValueError(f"a cache named {name!r} holds something else already ({NAMES[name]})")
        self.name, self.what = name, what
        self._lock = threading.Lock()
        self._lru = _lru(getattr(_settings[0], self.setting) if _settings else default_bound(name))
        self.hits = self.misses = 0  # (plain counts, read by metrics.caches_seen: no metric call per lookup)
        _live.add(self)

    @property
    def setting(self) -> str:
        return setting(self.name)

    @property
    def bound(self) -> int:
        return int(self._lru.maxsize)

    @property
    def used(self) -> int:
        """The bytes its entries are accounted at: never above the bound."""
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value kept under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            entry = self._lru.get(key)
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
        return default if entry is None else entry[0]

    def put(self, key: Hashable, value: T, nbytes: int) -> T:
        """Keep ``value`` (which keeps ``nbytes`` alive) under ``key``; returns it."""
        size = nbytes + key_size(key) + ENTRY_OVERHEAD
        with self._lock:
            if size > self._lru.maxsize:
                self._lru.pop(key, None)  # (it would push out everything else, and still not fit)
            else:
                self._lru[key] = (value, size)
        return value

    def pop(self, key: Hashable) -> None:
        """Forget ``key``, if it is kept."""
        with self._lock:
            self._lru.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._lru.clear()

    def resize(self, bound: int) -> None:
        """A new bound (from the settings), emptying the cache."""
        with self._lock:
            self._lru = _lru(bound)

    def items(self) -> list[tuple[Hashable, Any]]:
        """Every (key, value) kept now."""
        return [(key, value) for key, value, _ in self.sizes()]

    def sizes(self) -> list[tuple[Hashable, Any, int]]:
        """Every (key, value, accounted size), in no promised order. Listing them uses none of them:
        read through the base class, as LRUCache's own lookup would make each the most recently
        used, and the next put would push out what was just used instead."""
        with self._lock:
            entries = [(key, _peek(self._lru, key)) for key in self._lru]
        return [(key, value, size) for key, (value, size) in entries]


_peek = cachetools.Cache.__getitem__  # (a lookup that leaves the order alone: `sizes`)


def _lru(bound: int) -> cachetools.LRUCache:
    return cachetools.LRUCache(bound, getsizeof=lambda entry: entry[1])


def setting(name: str) -> str:
    return f"cache_{name.replace('-', '_')}_bytes"


def default_bound(name: str) -> int:
    from .config import Settings

    return _defaults(Settings)[setting(name)]


@functools.cache
def _defaults(settings_type) -> dict[str, int]:
    return {f.name: f.default for f in msgspec.structs.fields(settings_type)}


def memoized(name: str, what: str, nbytes: Callable[[Any], int] = lambda result: sys.getsizeof(result)):
    """A function's results by its arguments, in a cache of their own (in place of functools.lru_cache)."""
    def wrap(fn):
        cache = Cache(name, what)
        missing = object()

        @functools.wraps(fn)
        def memo(*args):
            found = cache.get(args, missing)
            if found is missing:
                found = fn(*args)
                cache.put(args, found, nbytes(found))
            return found

        memo.cache = cache
        return memo
    return wrap


# --- the settings, and what they add up to ------------------------------------------------------

# Caches kept outside Python, by the libraries that keep them: their bounds are settings too.
LIBRARY_CACHES = {
    "git_objects": "libgit2's object cache (trees and commits read from the ledger), for the whole process",
    "git_mapped": "libgit2's windows onto pack files, memory-mapped (resident, but backed by the files)",
    "history": "SQLite's page cache of the history index, for every connection of the process together",
}


def configure(settings) -> None:
    """Every bound from ``settings``: ours (emptying them), libgit2's and SQLite's (process-wide)."""
    import sqlite3

    import pygit2

    _settings[:] = [settings]
    for cache in list(_live):
        if getattr(settings, cache.setting) != cache.bound:
            cache.resize(getattr(settings, cache.setting))
    pygit2.settings.cache_max_size(settings.cache_git_objects_bytes)
    pygit2.settings.mwindow_mapped_limit = settings.cache_git_mapped_bytes
    db = sqlite3.connect(":memory:")  # (the soft heap limit is the library's: every connection's)
    try:
        db.execute(f"PRAGMA soft_heap_limit = {int(settings.cache_history_bytes)}")
    finally:
        db.close()


def caches() -> list[Cache]:
    """Every cache there is in this process, by name."""
    return sorted(_live, key=lambda c: c.name)


def counts() -> list[tuple[str, int, int]]:
    """Every cache's (name, hits, misses) in this process so far, by name (registry/metrics.py exports them)."""
    summed: dict[str, tuple[int, int]] = {}
    for c in caches():
        hits, misses = summed.get(c.name, (0, 0))
        summed[c.name] = (hits + c.hits, misses + c.misses)
    return [(name, hits, misses) for name, (hits, misses) in summed.items()]


def bounds(settings) -> dict[str, int]:
    """Every cache's bound by its setting (``cache_<name>_bytes``): ours and the libraries'."""
    return {f.name: getattr(settings, f.name) for f in msgspec.structs.fields(settings)
            if f.name.startswith("cache_") and f.name.endswith("_bytes")}


def ceiling(settings) -> int:
    """A worker's resident memory ceiling, in bytes: an idle worker, the requests in flight, every
    cache full (libgit2's delta bases too), and the ledger's pack indexes, which libgit2 maps whole
    (backed by their files)."""
    indexes = sum(p.stat().st_size for p in (settings.ledger_path / "objects" / "pack").glob("*.idx"))
    return IDLE_WORKER + WORKING_MEMORY + GIT_DELTA_BASES + sum(bounds(settings).values()) + indexes


# --- weighing ----------------------------------------------------------------------------------


def key_size(key: Hashable) -> int:
    """A key's bytes: strings, bytes and numbers in full, tuples of them; other objects (types,
    shared singletons) only by the reference held."""
    if isinstance(key, tuple):
        return sys.getsizeof(key) + sum(key_size(k) for k in key)
    if isinstance(key, (str, bytes, int, float)):
        return sys.getsizeof(key)
    return 8


def decoded_size(encoded: int) -> int:
    """What Python objects decoded from ``encoded`` bytes of JSON keep alive, at most."""
    return encoded * DECODED_PER_BYTE


def weight(value: Any) -> int:
    """What a value built of records (structs, dataclasses, lists, tuples, strings) keeps alive, at
    most, from its JSON encoding (one C call: cheap beside building the value): twice its bytes, and
    for every value in it an object's header and the slot that holds it."""
    encoded = msgspec.json.encode(value)
    values = 1 + encoded.count(b",") + encoded.count(b"{") + encoded.count(b"[")
    return 2 * len(encoded) + PER_VALUE * values + sys.getsizeof(value)


def deep_size(value: Any) -> int:
    """Every object ``value`` reaches, each counted once (slow: for tests and calibration)."""
    seen, stack, total = set(), [value], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += obj
        elif isinstance(obj, msgspec.Struct):
            stack += [getattr(obj, f) for f in obj.__struct_fields__]
        else:  # (instances: their attributes, and an exception's arguments)
            stack += [vars(obj)] if hasattr(obj, "__dict__") else []
            stack += [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
            stack += [obj.args] if isinstance(obj, BaseException) else []
    return total
