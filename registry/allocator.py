"""glibc's malloc, set for the server's processes: two arenas, a fixed threshold for big blocks,
and the free pages inside the arenas handed back once a minute.

glibc gives each thread that allocates an arena of its own, up to eight per core, and memory freed
in an arena is rarely handed back while anything in it lives. A worker's threads (the event loop,
anyio's worker threads, the fsync pool, the access log's flusher) each allocate: libgit2's objects
and buffers, SQLite's pages, request bodies. And glibc raises its threshold for giving a big block
pages of its own to the size of each such block freed, so big short-lived buffers end up in the
arenas too, between the caches' long-lived entries. Over a soak of 3,000 publishes with reads on a
100,000-version registry, a worker stood 10 to 15% above the ceiling `cache.ceiling` states, most of
it memory malloc held free (tests/benchmarks/bench_memory.py; README, "Memory"). An operator's own
MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ win: glibc reads them when the process starts.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # (glibc's own starting value, kept)


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas at ``arenas`` for this process and the workers it forks; False where
    nothing was changed (MALLOC_ARENA_MAX set by the operator, or a C library without glibc's
    mallopt). Call it first, before threads start: once a process has more than eight arenas, glibc
    has fixed its limit for good (eight a core), and a cap set later does nothing."""
    return "MALLOC_ARENA_MAX" not in os.environ and _mallopt(M_ARENA_MAX, arenas)


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Blocks of ``size`` bytes or more get pages of their own, handed back whole when freed, for
    good. glibc otherwise raises that threshold to the size of each such block freed (up to 32 MiB),
    and then carves big short-lived buffers (a rendered page, a decompressed tree) out of the arenas,
    where they leave holes the long-lived caches around them pin. False where nothing was changed
    (MALLOC_MMAP_THRESHOLD_ set by the operator; no glibc)."""
    return "MALLOC_MMAP_THRESHOLD_" not in os.environ and _mallopt(M_MMAP_THRESHOLD, size)


def for_children() -> None:
    """The same settings for the processes this one starts afresh, through the variables glibc reads
    when a process starts: granian's workers where it spawns them rather than forks (as it does from
    Python 3.14), a walk apart (apart.py). An operator's own values stand."""
    os.environ.setdefault("MALLOC_ARENA_MAX", str(ARENAS))
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))


def trim() -> bool:
    """Hand the free pages inside every arena back to the system (``malloc_trim(0)``), not only the
    top of the heap as each free does. Takes a few milliseconds, holding each arena's lock while it
    walks it: the server does it once a maintenance round. False where there is no malloc_trim."""
    malloc_trim = _libc("malloc_trim", [ctypes.c_size_t])
    return malloc_trim is not None and bool(malloc_trim(0))


def _mallopt(parameter: int, value: int) -> bool:
    mallopt = _libc("mallopt", [ctypes.c_int, ctypes.c_int])
    return mallopt is not None and mallopt(parameter, value) == 1  # (musl's mallopt does nothing and says 0)


def _libc(name: str, argtypes: list) -> Any:
    """The process's own C library's function ``name`` (returning an int), or None where it has none
    (macOS has neither mallopt nor malloc_trim)."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, ctypes.c_int
    return function
