"""The deliverer: one per server (the worker that holds `webhooks/deliverer.lock`; if it dies, the
lock goes with it and another worker's deliverer takes over within seconds). A thread per hook
walks the ledger from the hook's cursor, in commit order, and sends each event it wants; the cursor
moves (fsynced) only after a 2xx, so every event is delivered at least once, in order, across
restarts and kills. A failure is retried with exponential backoff, and nothing after it is sent
before it succeeds."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

import httpx
import msgspec
import pygit2
from pygit2.enums import SortMode

from .. import layout, locks
from ..datadir import Registry
from ..fsync import make_dirs
from ..ledger import Commit, Snapshot
from ..model import Package, Webhook, now
from . import sending, state
from .events import Event, event, wanted

log = logging.getLogger("registry.webhooks")
POLL = 0.05  # how often a hook's thread looks at the ledger's head when it has caught up
LOCK_RETRY = 2.0  # how often a worker without the lock tries to take it
BATCH = 500  # commits walked at once
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 300.0


def backoff(failures: int) -> float:
    """Seconds before the next try after ``failures`` failures in a row: 1, 2, 4, ... up to 5 minutes."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1))


def commits_after(reg: Registry, last: str, head: str, limit: int = BATCH) -> list[Commit]:
    """The commits of main after ``last`` ("" : from the first) up to ``head``, oldest first, at
    most ``limit``."""
    repo = reg.ledger.repo()
    walker = repo.walk(head, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    if last:
        walker.hide(last)
    out: list[Commit] = []
    for c in walker:
        out.append(Commit.of(c))
        if len(out) >= limit:
            break
    return out


def start_of(reg: Registry, commit: str) -> str:
    """The cursor that delivers ``commit`` next: its parent ("" for the first commit)."""
    parents = reg.ledger.repo()[commit].peel(pygit2.Commit).parent_ids
    return str(parents[0]) if parents else ""


def all_hooks(snap: Snapshot) -> list[tuple[str, Webhook]]:
    """Every hook of every workspace: (workspace, hook). A listing per workspace. (Here, not in reads/:
    this package sits below the reads, as upstream/ does.)"""
    return [(ws, h) for ws in snap.names("workspaces") for h in snap.records(layout.webhooks_dir(ws), Webhook)]


def repository_of(snap: Snapshot, ws: str, package: str) -> str | None:
    """The repository a package is linked to at this commit (None: it is not there)."""
    record = snap.get(layout.package(ws, package), Package)
    return record.repository if record is not None else None


def replay_tag(hook: Webhook) -> str:
    return f"{hook.replay.start}@{hook.replay.requested.at.isoformat()}" if hook.replay else ""


def completed(reg: Registry, e: Event) -> Event:
    """The event with its package's repository, where the commit doesn't name it (a publish, a yank)."""
    if e.repository or not e.package:
        return e
    return msgspec.structs.replace(e, repository=repository_of(reg.ledger.snapshot_at(e.id), e.workspace, e.package))


class HookRunner:
    """Delivers one hook's events. ``step`` does one round and says how long to wait before the next."""

    def __init__(self, reg: Registry, ws: str, name: str) -> None:
        self.reg, self.ws, self.name = reg, ws, name
        self.failures = 0
        self.walked = ""  # the head the last round walked to: caught up means up to it
        self.client = httpx.Client(follow_redirects=False)

    def _cursor(self, hook: Webhook) -> state.Cursor:
        settings = self.reg.settings
        cur = state.cursor(settings, self.ws, self.name)
        if cur is None or cur.since != hook.since:  # a new hook (or one added again under its name)
            state.forget(settings, self.ws, self.name)
            cur = state.Cursor(since=hook.since, last=hook.since, replay=replay_tag(hook))
            state.save_cursor(settings, self.ws, self.name, cur)
        if replay_tag(hook) != cur.replay and hook.replay is not None:
            try:
                start = start_of(self.reg, hook.replay.start)
            except (KeyError, ValueError):
                start = cur.last  # (a commit this ledger doesn't have: the verb refuses those; nothing to do)
            cur = state.Cursor(since=hook.since, last=start, replay=replay_tag(hook))
            state.save_cursor(settings, self.ws, self.name, cur)
            self.failures = 0
            log.info("webhook %s/%s: replaying from %s", self.ws, self.name, hook.replay.start)
        return cur

    def step(self, hook: Webhook) -> float | None:
        """One round: None when caught up, else the seconds to wait before the next (0: more to do)."""
        settings = self.reg.settings
        cur = self._cursor(hook)
        try:
            self.walked = self.reg.ledger.head()
            commits = commits_after(self.reg, cur.last, self.walked)
        except (KeyError, ValueError, pygit2.GitError):  # (a cursor naming a commit the ledger lost: start over)
            log.error("webhook %s/%s: its cursor %s is not in the ledger; delivering from when it was added",
                      self.ws, self.name, cur.last)
            cur = msgspec.structs.replace(cur, last=hook.since)
            state.save_cursor(settings, self.ws, self.name, cur)
            return 0.0
        passed = cur.last
        for commit in commits:
            e = event(commit)
            if e is not None:
                e = completed(self.reg, e)
            if e is None or not wanted(e, self.ws, list(hook.events), hook.repository):
                passed = commit.id
                continue
            began, tries = time.monotonic(), self.failures + 1
            answer = sending.send(self.client, self.reg, self.ws, hook, e)
            self.failures = 0 if answer.ok else tries
            state.record(settings, self.ws, self.name, state.Attempt(
                at=now(), event=e.id, type=e.type, status=answer.status, ok=answer.ok, error=answer.error,
                ms=round((time.monotonic() - began) * 1000), attempt=tries))
            if not answer.ok:
                if passed != cur.last:
                    state.save_cursor(settings, self.ws, self.name, msgspec.structs.replace(cur, last=passed))
                wait = backoff(self.failures)
                log.warning("webhook %s/%s: delivering %s failed (%s); again in %g s", self.ws, self.name, e.id,
                            answer.error, wait)
                return wait
            passed = commit.id
            cur = msgspec.structs.replace(cur, last=passed)
            state.save_cursor(settings, self.ws, self.name, cur)  # (only now: after the receiver's 2xx)
        if passed != cur.last:
            state.save_cursor(settings, self.ws, self.name, msgspec.structs.replace(cur, last=passed))
        return 0.0 if len(commits) >= BATCH else None

    def close(self) -> None:
        self.client.close()


class Deliverer:
    """The server's deliverer: takes the lock (or waits for it), then keeps a thread per hook."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.stopping = threading.Event()
        self._threads: dict[tuple[str, str], threading.Thread] = {}

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="webhooks", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        make_dirs(self.reg.settings.webhooks_path)
        fd = None
        while fd is None:
            fd = locks.first(self.reg.settings.webhooks_path / "deliverer.lock")
            if fd is None and self.stopping.wait(LOCK_RETRY):
                return
        try:
            self._supervise()
        finally:
            os.close(fd)

    def _supervise(self) -> None:
        seen = None
        while not self.stopping.is_set():
            try:
                head = self.reg.ledger.head()
                if head != seen:
                    seen = head
                    for ws, hook in all_hooks(self.reg.snapshot()):
                        key = (ws, hook.name)
                        thread = self._threads.get(key)
                        if thread is None or not thread.is_alive():
                            self._threads[key] = t = threading.Thread(
                                target=self._hook, args=key, name=f"webhook {ws}/{hook.name}", daemon=True)
                            t.start()
            except Exception:  # (the deliverer must never stop for good)
                log.exception("webhooks: looking for hooks failed")
            self.stopping.wait(POLL)

    def _hook(self, ws: str, name: str) -> None:
        runner = HookRunner(self.reg, ws, name)
        try:
            for wait in self._rounds(runner):
                if wait != 0.0:
                    self._wait(runner, wait)
        finally:
            runner.close()

    def _wait(self, runner: HookRunner, wait: float | None) -> None:
        """Until ``wait`` seconds have passed (None: until the head moves), or sooner if the hook's
        record changes (a replay, an edit: applied at once, whatever the backoff)."""
        head, record = runner.walked or self.reg.ledger.head(), self._record_id(runner)
        deadline = None if wait is None else time.monotonic() + wait
        while not self.stopping.wait(POLL):
            moved = self.reg.ledger.head() != head
            if (deadline is None and moved) or (deadline is not None and time.monotonic() >= deadline):
                return
            if moved and self._record_id(runner) != record:
                return

    def _record_id(self, runner: HookRunner) -> str | None:
        return self.reg.snapshot().object_id(layout.webhook(runner.ws, runner.name))

    def _rounds(self, runner: HookRunner) -> Iterator[float | None]:
        while not self.stopping.is_set():
            hook = self.reg.snapshot().get(layout.webhook(runner.ws, runner.name), Webhook)
            if hook is None:
                return  # removed
            try:
                yield runner.step(hook)
            except Exception:
                log.exception("webhook %s/%s: a round failed", runner.ws, runner.name)
                runner.failures += 1
                yield backoff(runner.failures)
