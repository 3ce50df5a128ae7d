"""The server's own retention runs (REGISTRY_RETENTION_APPLY=daily): every workspace's policies
applied once every REGISTRY_RETENTION_INTERVAL seconds, by one worker of the server (the one that
holds `retention-run.lock`; if it dies, another takes over), through the verb `registry retention
apply` uses: one commit per deletion, naming the policy, by the operator on the `cli` channel, with
a `Scheduled` trailer that tells it from a hand-run one.

The last run (when, what it deleted and refused, its errors) and the next are kept in the data
directory (`retention-run.json`: not registry state, so not the ledger), written whole and synced.
The schedule is measured from the last run's start, so a restart doesn't run it again early, and a
server that was down when it was due runs it as soon as it starts. A run that fails (a full disk, a
bug) stops there, says why in that file and the log, and the next run tries again: the worker goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta

import msgspec

from . import identity, locks, model, operations, retention
from .config import Settings
from .datadir import Registry
from .errors import RegistryError
from .fsync import fsync_path, write_file

log = logging.getLogger("registry.retention")
CHANNEL: model.Channel = "cli"  # (as `registry retention apply` makes its deletions: the operator's)
LOCK_RETRY = 2.0  # how often a worker without the lock tries to take it
LOOK_EVERY = 60.0  # the longest wait between looks at the schedule (the file may change under us)
MAX_MESSAGES = 20  # errors and refusals kept per workspace


class Tally(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One workspace's part of a run."""

    deleted: int = 0
    refused: int = 0  # deletions the verb refused (a 4xx), or that a publish or policy change spared since
    refusals: list[str] = []  # each in words (the first MAX_MESSAGES)
    failed: str = ""  # why the run stopped here, if it did


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """A retention run of the server, as `retention-run.json` keeps it."""

    started: datetime
    finished: datetime
    deleted: int
    refused: int
    failed: str = ""  # why the run stopped before it was done ("": it didn't): the next run tries again
    workspaces: dict[str, Tally] = {}  # those it deleted or refused something in, or stopped in
    next_run: datetime  # when the next is due, by the interval of this run


class Stopped(Exception):
    """The server is stopping: the run ends between two deletions, unrecorded (the next start runs it)."""


def scheduled_by(settings: Settings) -> str:
    """What a scheduled deletion's `Scheduled` trailer says: the setting that made it."""
    return f"REGISTRY_RETENTION_APPLY={settings.retention_apply.lower()}"


def last_run(settings: Settings) -> Run | None:
    """The last run recorded here (None: never, or a file that can't be read back: the next run
    writes it afresh)."""
    try:
        return msgspec.json.decode(settings.retention_run_path.read_bytes(), type=Run)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("%s can't be read (%s): taken as no run recorded", settings.retention_run_path, exc)
        return None


def save(settings: Settings, run: Run) -> None:
    """Durably: renamed into place once its bytes are synced, then the data directory synced."""
    path = settings.retention_run_path
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write_file(temp, msgspec.json.encode(run), 0o644, exclusive=False, sync=True)
    os.replace(temp, path)
    fsync_path(path.parent)


def due_at(last: Run | None, interval: int, now: datetime) -> datetime:
    """When the next run is due: ``interval`` seconds after the last one started (at once, if it
    never ran; at once too if the last one says it started in the future: a clock set back)."""
    if last is None or last.started > now:
        return now
    return last.started + timedelta(seconds=interval)


def run_once(reg: Registry, now: datetime | None = None, stopping: threading.Event | None = None) -> Run:
    """Apply every workspace's policies, deletion by deletion; the run, as it is to be recorded.
    Stopped if ``stopping`` is set before it is done."""
    settings = reg.settings
    started = now or model.now()
    who, by = identity.operator(), scheduled_by(settings)
    tallies: dict[str, Tally] = {}
    failed = ""
    ws = ""
    try:
        snap = reg.snapshot()
        for ws in snap.names("workspaces"):
            tally = tallies.setdefault(ws, Tally())
            for doomed in retention.plan(snap, ws, started).deletions:
                if stopping is not None and stopping.is_set():
                    raise Stopped
                try:
                    done = operations.apply_deletion(reg, who, CHANNEL, ws, doomed, started, scheduled=by)
                except RegistryError as exc:
                    if exc.status >= 500:  # (a full disk, the ledger unwritable: the rest would fail too)
                        raise
                    tally.refused += 1
                    _note(tally, f"{doomed.package} {doomed.version}: {exc.message}")
                    continue
                if done is None:
                    tally.refused += 1
                    _note(tally, f"{doomed.package} {doomed.version}: kept, since a publish or a policy change "
                                 "spared it after the plan was made")
                else:
                    tally.deleted += 1
    except Stopped:
        raise
    except Exception as exc:  # (recorded, and tried again at the next run: the worker goes on)
        failed = exc.message if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
        if ws:
            tallies.setdefault(ws, Tally()).failed = failed
        log.exception("the scheduled retention run stopped (the next run tries again): %s", failed)
    tallies = {w: t for w, t in tallies.items() if t.deleted or t.refused or t.failed}
    return Run(started=started, finished=model.now(), deleted=sum(t.deleted for t in tallies.values()),
               refused=sum(t.refused for t in tallies.values()), failed=failed, workspaces=tallies,
               next_run=started + timedelta(seconds=settings.retention_interval))


def _note(tally: Tally, message: str) -> None:
    if len(tally.refusals) < MAX_MESSAGES:
        tally.refusals.append(message)


class Scheduler:
    """The server's retention runs: in every worker of a primary with REGISTRY_RETENTION_APPLY on;
    the one that takes the lock runs them, the others wait to take over."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.stopping = threading.Event()
        self.next_run: datetime | None = None  # this worker's own account, should the file be unwritable

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="retention", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        fd = locks.elected(self.reg.settings.retention_lock_path, self.stopping, LOCK_RETRY)
        if fd is None:
            return
        try:
            while not self.stopping.is_set():
                self.stopping.wait(self.step())
        finally:
            os.close(fd)

    def step(self, now: datetime | None = None) -> float:
        """A run if one is due (recorded); the seconds to wait before looking again."""
        settings = self.reg.settings
        try:
            now = now or model.now()
            due = due_at(last_run(settings), settings.retention_interval, now)
            if self.next_run is not None:
                due = max(due, self.next_run)
            if due <= now:
                done = run_once(self.reg, now, self.stopping)
                self.next_run = done.next_run
                log.info("scheduled retention run (worker %d): %d version(s) deleted, %d refused%s; the next at %s",
                         os.getpid(), done.deleted, done.refused, f"; stopped: {done.failed}" if done.failed else "",
                         done.next_run.isoformat())
                save(settings, done)
                due = done.next_run
        except Stopped:
            return 0.0
        except Exception:  # (the file unwritable, say: looked at again later, never the worker's end)
            log.exception("the scheduled retention run could not be recorded")
            due = self.next_run or model.now() + timedelta(seconds=LOOK_EVERY)
        return max(0.0, min(LOOK_EVERY, (due - model.now()).total_seconds()))


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """What /_/health, the retention API and the Storage tab say of the runs."""

    apply: str  # REGISTRY_RETENTION_APPLY: off or daily
    interval_seconds: int
    last_run: Run | None  # (recorded whatever the setting is now: a run from when it was on)
    next_run: datetime | None  # None: off


def schedule(settings: Settings, now: datetime | None = None) -> Schedule:
    last = last_run(settings)
    next_run = due_at(last, settings.retention_interval, now or model.now()) if settings.retention_runs else None
    return Schedule(apply=settings.retention_apply.lower(), interval_seconds=settings.retention_interval,
                    last_run=last, next_run=next_run)
