"""glibc's malloc arenas, capped for the server's processes (registry/allocator.py): threads that
allocate share two arenas, rather than taking one each; an operator's MALLOC_ARENA_MAX is left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Eight threads, alive at once, each allocate through malloc (bytes over pymalloc's 512-byte limit)
# and keep it; then glibc's own report counts the arenas ("Arena N:" on stderr).
PROBE = """
import ctypes, sys, threading
from registry import allocator
print(allocator.limit_arenas() if sys.argv[1] == "limit" else None)
kept = []
started, done = threading.Barrier(8), threading.Barrier(8)
def allocate():
    started.wait()  # (all alive at once: a finished thread's arena would be handed to the next)
    kept.extend(bytes(4096 + n) for n in range(200))
    done.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=clean,
                          check=True)
    return done.stdout.strip(), done.stderr.count("Arena ")


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's arenas")
def test_threads_share_two_arenas_once_capped_and_an_operators_setting_wins():
    said, capped = arenas("limit")
    assert said == "True" and capped <= 2
    _, free = arenas("none")  # (the same threads without the cap: the probe can tell them apart)
    assert free > 2
    said, theirs = arenas("limit", MALLOC_ARENA_MAX="4")
    assert said == "False" and 2 < theirs <= 4
