"""Walks through every version, run by a server's worker in a process apart.

The check of the blob store after start and each collection read every record of the ledger. In a
worker, such a walk leaves the C heap in pieces: on a 100,000-version registry the check took 33
MiB more of malloc's memory, and once libgit2's caches had let go, 18 MiB of it stayed held in holes
between live blocks, which `malloc_trim` could not hand back (README, "Memory"). A child process
does the walk and ends: its memory goes back whole, and the worker's interpreter is free for
requests meanwhile.

`walk` chooses (a small ledger is walked in the worker's thread, as before); `run` starts
``python -m registry.apart``, gives it the job and the worker's settings on its stdin
(never its arguments: they may hold secrets), and returns what the job returns, as JSON. The child
logs to the worker's stderr, as the worker does; it ends with the worker (PR_SET_PDEATHSIG), and
never replays the ledger's journal (the worker's to do). Only one worker of a server collects at a
time (web/app.py), so one child at most walks for a collection.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import sys
from typing import Any

import msgspec

from . import maintenance
from .config import LOG_FORMAT, Settings
from .datadir import Registry
from .errors import RegistryError
from .ledger.repack import packs

PR_SET_PDEATHSIG = 1  # (prctl's option, linux/prctl.h)
# A ledger with this many objects in its packs (about 12 a version: its commit, trees and record) is
# walked apart; a smaller one in the worker's own thread, where a walk takes under a second and
# leaves little behind, and costs no interpreter's start (0.4 s of CPU).
APART_FROM_OBJECTS = 100_000
TIMEOUT = 3600.0  # seconds a walk apart may take (6 s at 136,000 files; a bucket lists slower)


class Job(msgspec.Struct, frozen=True):
    name: str
    settings: Settings
    grace_seconds: float = 0.0
    worker: int = 0  # (the pid the child must be the child of)


def walk(name: str, reg: Registry, grace_seconds: float = 0.0) -> Any:
    """Job ``name`` (`JOBS`: "check_blobs", "collect") on ``reg``: in a child process once the ledger
    is big (`APART_FROM_OBJECTS`), else here. What it returns, as JSON would carry it."""
    job = Job(name, reg.settings, grace_seconds, os.getpid())
    if ledger_objects(reg.settings) >= APART_FROM_OBJECTS:
        return run(job)
    return msgspec.json.decode(msgspec.json.encode(JOBS[name](reg, job)))


def ledger_objects(settings: Settings) -> int:
    """The objects in the ledger's packs, from each pack index's header (a read of 1 KiB each)."""
    return sum(p.objects for p in packs(settings.ledger_path / "objects" / "pack"))


def run(job: Job, timeout: float = TIMEOUT) -> Any:
    """``job`` done in a child process; what it returns. A child that fails, or takes longer than
    ``timeout`` seconds (it is killed), is a RegistryError that says how (its log, in the worker's,
    says why)."""
    try:
        done = subprocess.run([sys.executable, "-m", "registry.apart"], input=msgspec.json.encode(job),
                              stdout=subprocess.PIPE, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RegistryError(f"The {job.name} walk in a process apart took longer than {timeout:g} s, and was "
                            "stopped; the next maintenance round tries again.", status=500) from None
    if done.returncode != 0:
        raise RegistryError(f"The {job.name} walk in a process apart failed (exit status {done.returncode}); "
                            "the log above says why.", status=500)
    return msgspec.json.decode(done.stdout)


def _check_blobs(reg: Registry, job: Job) -> int:
    return len(maintenance.check_blobs(reg))


def _collect(reg: Registry, job: Job) -> dict:
    return dataclasses.asdict(maintenance.collect(reg, grace_seconds=job.grace_seconds, repack=False))


JOBS = {"check_blobs": _check_blobs, "collect": _collect}


def main() -> int:
    try:  # (a worker that dies takes its walk with it)
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # (no prctl: not Linux)
        pass
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)
    if job.worker and os.getppid() != job.worker:  # (the worker ended before the signal was asked for)
        return 1
    result = os.dup(1)  # the answer's own channel: whatever else is printed goes to the log
    os.dup2(2, 1)
    logging.basicConfig(level=job.settings.log_level.upper(), format=LOG_FORMAT)
    # Not recovered: the worker did that when it started, and its journal now holds commits in
    # flight; a replay here would take the ledger's write lock from its publishes.
    reg = Registry.open(job.settings, recover=False)
    with os.fdopen(result, "wb") as out:
        out.write(msgspec.json.encode(JOBS[job.name](reg, job)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
