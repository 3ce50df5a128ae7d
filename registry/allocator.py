"""The C allocator's arenas, capped for the server's processes.

glibc's malloc gives each thread that allocates an arena of its own, up to eight per core, and
memory freed in one arena is rarely handed back while anything in it lives. A worker's threads (the
event loop, anyio's worker threads, the fsync pool, the access log's flusher) each allocate: libgit2's
objects and buffers, SQLite's pages, request bodies. Over a soak of 3,000 publishes with reads on a
100,000-version registry, the busier worker peaked at 216 to 232 MiB resident, above the 202 MiB
ceiling `cache.ceiling` states; with two arenas at 188 and 210, publishing no slower and the index
no slower (tests/benchmarks/bench_memory.py, bench_limits.py; README, "Memory"). An operator's own
MALLOC_ARENA_MAX wins: glibc reads it when the process starts.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter (glibc's malloc.h)
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas at ``arenas`` for this process and the workers it forks; False where
    nothing was changed (MALLOC_ARENA_MAX set by the operator, or a C library without glibc's
    mallopt). Call it first, before threads start: once a process has more than eight arenas, glibc
    has fixed its limit for good (eight a core), and a cap set later does nothing."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # (the process's own C library)
    except (OSError, AttributeError):  # (macOS has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_ARENA_MAX, arenas) == 1  # (musl's mallopt does nothing and says 0)
