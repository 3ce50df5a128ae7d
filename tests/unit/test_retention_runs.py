"""The server's own retention runs (registry/retention_runs.py), in process, on a real data directory:
when a run is due (never run; not yet; after a restart; after a server was down at the due time),
what it commits (one deletion a commit, the operator's on the cli channel, with the `Scheduled`
trailer a hand-run apply lacks), what it records, and a failure recorded and retried at the next run."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path

import msgspec
import pygit2
import pytest

from registry import identity, locks, model, operations, retention, retention_runs
from registry.audit import Action, T, action
from registry.config import Settings
from registry.datadir import Registry
from registry.ledger import Commit
from registry.retention_runs import Scheduler
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

DAY = 86400
SCHEDULED = "REGISTRY_RETENTION_APPLY=daily"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data=str(tmp_path / "data"), retention_apply="daily")


@pytest.fixture
def doomed(world, tmp_path):
    """Five versions of acme-utils under a keep-the-newest-2 policy: 1.0, 1.1 and 1.2 are to go."""
    dev = world.principal("dev@acme.test")
    for v in ("1.0", "1.1", "1.2", "2.0", "2.1"):
        publish(world.reg, dev, make_wheel(tmp_path, "Acme.Utils", v))
    operations.set_retention(world.reg, world.principal("owner@acme.test"), "api", WS, "keep-two", repository="utils",
                             keep_newest=2)
    return world.reg


def scheduled_commits(reg: Registry) -> list[Commit]:
    repo = reg.ledger.repo()
    return [Commit.of(c) for c in repo.walk(reg.ledger.head(), pygit2.enums.SortMode.TOPOLOGICAL)
            if Commit.of(c).trailer(T.SCHEDULED)]


def versions(reg: Registry) -> list[str]:
    return [v.version for v in operations.packages.versions(reg.snapshot(), WS, "acme-utils")]


def test_never_run_is_due_at_once_and_the_run_deletes_each_version_in_a_commit_saying_it_was_scheduled(doomed):
    reg = doomed
    assert retention_runs.last_run(reg.settings) is None
    now = model.now()
    wait = Scheduler(reg).step(now)
    assert versions(reg) == ["2.0", "2.1"]
    commits = scheduled_commits(reg)
    assert sorted(c.trailer(T.VERSION) for c in commits) == ["1.0", "1.1", "1.2"]
    for c in commits:  # (as `registry retention apply` makes them, but saying the server ran it)
        assert action(c) is Action.DELETE_VERSION and c.trailer(T.RETENTION_POLICY) == "keep-two"
        assert (c.trailer(T.ACTOR), c.trailer(T.CHANNEL), c.trailer(T.SCHEDULED)) == (
            "operator@localhost", "cli", SCHEDULED)
        assert "scheduled run" in reg.ledger.repo()[c.id].message
    run = retention_runs.last_run(reg.settings)
    assert run is not None and (run.started, run.deleted, run.refused, run.failed) == (now, 3, 0, "")
    assert run.workspaces[WS].deleted == 3 and run.next_run == now + timedelta(seconds=DAY)
    assert 0 < wait <= retention_runs.LOOK_EVERY
    seen = retention_runs.schedule(reg.settings, now)
    assert (seen.apply, seen.next_run, seen.last_run) == ("daily", now + timedelta(seconds=DAY), run)


def test_a_hand_run_apply_has_no_scheduled_trailer(doomed):
    reg = doomed
    now = model.now()
    first = retention.plan(reg.snapshot(), WS, now).deletions[0]
    commit = operations.apply_deletion(reg, identity.operator(), "cli", WS, first, now)  # (what the CLI does)
    assert commit is not None and commit.trailer(T.SCHEDULED) is None


@pytest.mark.parametrize("later, runs", [
    (timedelta(seconds=1), False),  # restarted at once
    (timedelta(hours=23, minutes=59), False),  # restarted within the day
    (timedelta(days=1), True),  # due now
    (timedelta(days=3), True),  # the server was down when it was due: at once after start
])
def test_after_a_restart_it_runs_only_when_a_day_has_passed_since_the_last_run_started(doomed, later, runs):
    reg = doomed
    start = model.now()
    Scheduler(reg).step(start)
    more = reg.settings.data_path.parent / "more"
    more.mkdir()
    publish(reg, identity.operator(), make_wheel(more, "Acme.Utils", "3.0"))  # (2.0 is now the third newest)
    head = reg.ledger.head()
    restarted = Registry.open(reg.settings)  # (a new process: all it knows is the data directory)
    wait = Scheduler(restarted).step(start + later)
    run = retention_runs.last_run(reg.settings)
    assert run is not None
    if runs:
        assert run.started == start + later and run.deleted == 1 and versions(reg) == ["2.1", "3.0"]
        assert len(scheduled_commits(reg)) == 4
    else:
        assert reg.ledger.head() == head and run.started == start and versions(reg) == ["2.0", "2.1", "3.0"]
        assert wait == pytest.approx(min(retention_runs.LOOK_EVERY, (timedelta(days=1) - later).total_seconds()),
                                     abs=2)


def test_the_interval_is_the_settings_and_off_means_no_next_run(doomed):
    reg = doomed
    start = model.now()
    Scheduler(reg).step(start)
    hourly = Settings(data=reg.settings.data, retention_apply="daily", retention_interval=3600)
    assert retention_runs.schedule(hourly, start).next_run == start + timedelta(hours=1)
    off = Settings(data=reg.settings.data)
    seen = retention_runs.schedule(off, start)
    assert seen.apply == "off" and seen.next_run is None and seen.last_run is not None  # (its last run still shown)
    assert retention_runs.due_at(None, DAY, start) == start
    assert retention_runs.due_at(retention_runs.last_run(reg.settings), DAY, start - timedelta(days=9)) == \
        start - timedelta(days=9)  # (a clock set back: the run it recorded is "in the future"; due now)


def test_a_run_that_fails_is_recorded_and_retried_at_the_next_run_and_the_worker_goes_on(doomed):
    reg = doomed
    start = model.now()
    full = Registry.open(msgspec.structs.replace(reg.settings, min_free_bytes=2**62))  # (every write refused: 507)
    head = reg.ledger.head()
    Scheduler(full).step(start)
    assert reg.ledger.head() == head
    run = retention_runs.last_run(reg.settings)
    assert run is not None and run.deleted == 0 and "disk" in run.failed
    assert run.workspaces[WS].failed == run.failed and run.next_run == start + timedelta(days=1)
    # not retried before the next run is due; then (the disk freed) it deletes what it couldn't
    Scheduler(reg).step(start + timedelta(hours=1))
    assert reg.ledger.head() == head
    Scheduler(reg).step(start + timedelta(days=1))
    run = retention_runs.last_run(reg.settings)
    assert run is not None and run.deleted == 3 and run.failed == "" and versions(reg) == ["2.0", "2.1"]


def test_a_record_that_cant_be_written_never_ends_the_worker_nor_runs_again_at_once(doomed):
    reg = doomed
    reg.settings.retention_run_path.mkdir()  # (where the file goes is a directory: every write fails)
    scheduler = Scheduler(reg)
    start = model.now()
    wait = scheduler.step(start)
    assert len(scheduled_commits(reg)) == 3 and wait > 0
    head = reg.ledger.head()
    scheduler.step(start + timedelta(minutes=5))  # (this worker remembers it ran)
    assert reg.ledger.head() == head


def test_one_worker_of_several_runs_it_and_another_takes_over_when_it_stops(doomed):
    reg = doomed
    first, second = Scheduler(reg), Scheduler(Registry.open(reg.settings))
    one = first.start()
    wait_for(lambda: retention_runs.last_run(reg.settings) is not None)
    two = second.start()  # (waits for the lock: the first holds it)
    try:
        assert len(scheduled_commits(reg)) == 3
        first.stop()
        one.join(10)
        assert not one.is_alive()

        def taken() -> bool:
            fd = locks.first(reg.settings.retention_lock_path)
            if fd is not None:
                os.close(fd)
            return fd is None

        wait_for(taken)  # (the second holds it now)
        assert len(scheduled_commits(reg)) == 3  # (and doesn't run again: the last run was just now)
    finally:
        first.stop()
        second.stop()
        two.join(10)
    assert not two.is_alive()


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = model.now() + timedelta(seconds=seconds)
    while not condition():
        assert model.now() < deadline, "timed out"
        threading.Event().wait(0.05)
