"""glibc's malloc, set for the server's processes (registry/allocator.py): threads that allocate
share two arenas, rather than taking one each; a big block gets pages of its own however big the
blocks freed before it; the free pages inside the arenas can be handed back. An operator's own
MALLOC_ARENA_MAX and MALLOC_MMAP_THRESHOLD_ are left alone."""

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


def probe(code: str, mode: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    return subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, env=clean, check=True)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=clean,
                          check=True)
    return done.stdout.strip(), done.stderr.count("Arena ")


GLIBC = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                           reason="glibc's malloc")


@GLIBC
def test_threads_share_two_arenas_once_capped_and_an_operators_setting_wins():
    said, capped = arenas("limit")
    assert said == "True" and capped <= 2
    _, free = arenas("none")  # (the same threads without the cap: the probe can tell them apart)
    assert free > 2
    said, theirs = arenas("limit", MALLOC_ARENA_MAX="4")
    assert said == "False" and 2 < theirs <= 4


# A 1 MiB block freed, then a 256 KiB one: does the second get pages of its own (mmap: mallinfo2's
# hblks), or a piece of the arena? glibc raises its threshold to the size of a freed mmapped block.
THRESHOLD = """
import ctypes, sys
from registry import allocator
print(allocator.fix_mmap_threshold() if sys.argv[1] == "fix" else None)
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
big = bytearray(2**20)
del big
before = libc.mallinfo2().hblks
kept = bytearray(256 * 1024)
print(libc.mallinfo2().hblks - before)
"""


@GLIBC
def test_a_big_block_gets_pages_of_its_own_however_big_the_blocks_freed_before_it():
    said, mapped = probe(THRESHOLD, "fix").stdout.split()
    assert said == "True" and int(mapped) == 1
    _, mapped = probe(THRESHOLD, "none").stdout.split()
    assert int(mapped) == 0  # (without it: the threshold rose past 256 KiB, and the block is the arena's)
    said, mapped = probe(THRESHOLD, "fix", MALLOC_MMAP_THRESHOLD_=str(2**22)).stdout.split()
    assert said == "False" and int(mapped) == 0  # (the operator's 4 MiB stands)


# Every other block of 2,000 kept (64 KiB each, under the threshold: the arena's): the free ones are
# holes between live blocks, which no free hands back; trim does.
HOLES = """
from registry import allocator
def anon():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("RssAnon"))
blocks = [bytearray(64 * 1024 - 64) for _ in range(2000)]
kept = blocks[::2]
del blocks
before = anon()
print(allocator.trim(), before, anon())
"""


@GLIBC
def test_trim_hands_back_the_free_pages_between_live_blocks():
    said, before, after = probe(HOLES, "none").stdout.split()
    assert said == "True" and int(before) - int(after) > 40 * 1024  # (KiB: of some 62 MiB of holes)


CHILDREN = """
import os, subprocess, sys
from registry import allocator
allocator.limit_arenas()
allocator.fix_mmap_threshold()
allocator.for_children()
print(subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('MALLOC_ARENA_MAX'), "
                      "os.environ.get('MALLOC_MMAP_THRESHOLD_'))"], capture_output=True, text=True).stdout)
"""


def test_processes_started_afresh_are_told_the_same_and_an_operators_values_stand():
    """(granian spawns its workers rather than forking them from Python 3.14: they read glibc's
    variables when they start, not this process's mallopt)"""
    assert probe(CHILDREN, "none").stdout.split() == ["2", str(128 * 1024)]
    assert probe(CHILDREN, "none", MALLOC_ARENA_MAX="4").stdout.split() == ["4", str(128 * 1024)]
