"""The two shapes of lock (registry/locks.py), across processes as across threads."""

import os
import subprocess
import sys
import time

import pytest

from registry import locks

HOLD = """
import sys, time
from pathlib import Path
from registry import locks
with locks.held(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _held_elsewhere(path, seconds):
    """A process holding the lock on ``path`` for ``seconds``, once it says so."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_held_lock_refuses_within_its_deadline_with_the_callers_refusal(tmp_path):
    path = tmp_path / "x.lock"
    holder = _held_elsewhere(path, 5)
    try:
        started = time.monotonic()
        with pytest.raises(LookupError, match="busy"), locks.held(path, 0.3, lambda: LookupError("busy")):
            pass
        assert 0.3 <= time.monotonic() - started < 2
        with pytest.raises(TimeoutError), locks.held(path, 0.05):
            pass
        assert locks.first(path) is None
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_is_free_again_when_its_holder_dies(tmp_path):
    path = tmp_path / "x.lock"
    holder = _held_elsewhere(path, 60)
    holder.kill()  # (the kernel drops the flock with the process: no stale lock)
    holder.wait()
    with locks.held(path, 1) as fd:
        assert fd >= 0
        assert locks.first(path) is None  # (another open file description: excluded, even in this process)
    fd = locks.first(path)
    assert fd is not None
    os.close(fd)
