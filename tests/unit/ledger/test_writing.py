"""Writers in several processes never lose or duplicate a commit; a killed writer blocks no one."""

import json
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime

import pygit2
import pytest

from registry import layout
from registry.datadir import first_commit
from registry.errors import Conflict
from registry.ledger import REF, Change, Ledger, parse_trailers
from registry.model import Provenance, User
from tests.support.ledger import P, git, user_change


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


def test_new_ledger_explains_itself(ledger):
    snap = ledger.snapshot()
    info = json.loads(snap.raw(layout.LEDGER_INFO))
    assert info["format"] == 1
    assert b"Every change is one commit" in snap.raw(layout.README)
    assert git(ledger, "log", "--format=%s").strip() == "init ledger"
    assert git(ledger, "symbolic-ref", "HEAD").strip() == REF


def test_a_change_is_one_commit_with_author_committer_and_trailers(ledger):
    commit = ledger.transact(lambda snap: user_change("a@example.com")).commit
    raw = ledger.repo()[commit.id]
    assert (raw.author.name, raw.author.email) == ("Dev", "dev@example.com")
    assert (raw.committer.name, raw.committer.email) == ("registry", "registry@test")
    assert raw.author.time == int(P.at.timestamp())
    assert raw.message.splitlines()[0] == "create user a@example.com"
    assert parse_trailers(raw.message) == [("Actor", "dev@example.com"), ("Channel", "cli"), ("User", "a@example.com")]
    assert git(ledger, "log", "--format=%(trailers:key=Actor,valueonly)", "-1").strip() == "dev@example.com"
    assert int(git(ledger, "rev-list", "--count", "HEAD")) == 2


def test_nothing_to_change_makes_no_commit(ledger):
    ledger.transact(lambda snap: user_change("a@example.com"))
    head = ledger.head()
    assert ledger.transact(lambda snap: None).commit is None
    assert ledger.transact(lambda snap: user_change("a@example.com")).commit is None  # identical content
    assert ledger.head() == head


def test_refusal_inside_build_commits_nothing(ledger):
    head = ledger.head()

    def build(snap):
        raise Conflict("no")

    with pytest.raises(Conflict):
        ledger.transact(build)
    assert ledger.head() == head


def test_compare_and_swap_retries_when_the_branch_moves_underneath(ledger):
    """A writer that bypasses our lock still can't make us lose its commit or ours."""
    sneaky = Ledger.open(ledger.path)
    calls = []

    def build(snap):
        calls.append(snap.commit_id)
        if len(calls) == 1:  # move the branch behind our back, between our read and our CAS
            repo = sneaky.repo()
            tip = repo.lookup_reference(REF).target
            tree = repo[tip].tree.id
            sig = pygit2.Signature("other", "other@x")
            repo.create_commit(REF, sig, sig, "concurrent\n", tree, [tip])
        return user_change("c@example.com")

    ledger.transact(build)
    assert len(calls) == 2 and calls[0] != calls[1]
    subjects = git(ledger, "log", "--format=%s").splitlines()
    assert subjects[:2] == ["create user c@example.com", "concurrent"]


def test_threads_writing_at_once_lose_nothing(ledger):
    def work(t):
        for i in range(15):
            ledger.transact(lambda snap, t=t, i=i: user_change(f"t{t}-{i}@example.com"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    subjects = git(ledger, "log", "--format=%s").splitlines()
    assert len(subjects) == 61 and len(set(subjects)) == 61
