"""Writers in several processes never lose or duplicate a commit; a killed writer blocks no one."""

import multiprocessing
import os
import signal
import subprocess
import time
from datetime import UTC, datetime

from registry import layout
from registry.datadir import first_commit
from registry.ledger import REF, Change, Ledger
from registry.model import Provenance, User


def _write(path: str, worker: int, count: int) -> None:
    ledger = Ledger.open(path)
    for i in range(count):
        email = f"w{worker}-{i}@example.com"
        at = datetime.now(UTC)
        prov = Provenance(at=at, by=email, channel="cli")
        ledger.transact(lambda snap, email=email, prov=prov: Change(
            summary=f"create user {email}", author=(email, email), time=prov.at,
            writes={layout.user(email): User(email=email, name=email, created=prov)},
            trailers=(("Actor", email), ("Channel", "cli"))))


def _git(path, *args) -> str:
    proc = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def _fsck(path) -> None:
    with Ledger(path).repack_lock():  # a writer's repack may outlive the writer: let it finish
        _git(path, "fsck", "--strict")


def test_processes_times_commits_gives_exactly_that_history(tmp_path):
    path = tmp_path / "ledger.git"
    Ledger.create(path, first_commit())
    workers, each = 4, 40
    ctx = multiprocessing.get_context("spawn")  # nothing shared: separate libgit2 state, like granian workers
    procs = [ctx.Process(target=_write, args=(str(path), w, each)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    subjects = _git(path, "log", "--format=%s").splitlines()
    assert len(subjects) == workers * each + 1
    assert len(set(subjects)) == len(subjects)  # no duplicate
    expected = {f"create user w{w}-{i}@example.com" for w in range(workers) for i in range(each)}
    assert set(subjects[:-1]) == expected  # none lost
    assert _git(path, "rev-list", "--min-parents=2", "HEAD") == ""  # linear
    snap = Ledger.open(path).snapshot()
    assert all(snap.exists(layout.user(s.split()[-1])) for s in expected)
    _fsck(path)


def test_a_writer_killed_mid_commit_blocks_no_one(tmp_path):
    path = tmp_path / "ledger.git"
    Ledger.create(path, first_commit())
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        victim = ctx.Process(target=_write, args=(str(path), 100 + round_, 10_000))
        victim.start()
        time.sleep(1.0 + round_ * 0.3)  # let it get well into its loop, then kill it wherever it is
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
    # ...and a ref lock left exactly as a writer dying inside the ref update would leave it
    (path / f"{REF}.lock").write_text("")
    _write(str(path), 999, 5)
    _fsck(path)
    subjects = _git(path, "log", "--format=%s").splitlines()
    assert subjects[:5] == [f"create user w999-{i}@example.com" for i in reversed(range(5))]
    assert len(set(subjects)) == len(subjects)
    snap = Ledger.open(path).snapshot()
    for subject in subjects[:-1]:  # every commit on the branch is complete and readable
        assert snap.exists(layout.user(subject.split()[-1]))
