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

import msgspec
import pygit2
from pygit2.enums import SortMode

from .. import layout, locks
from ..datadir import Registry
from ..fsync import make_dirs
from ..ledger import Commit, Snapshot
from ..model import Package, Webhook, now
from . import secrets, sending, state
from .events import Event, event, wanted

log = logging.getLogger("registry.webhooks")
POLL = 0.01  # how often the deliverer looks at the ledger's head (a stat) while there are hooks
IDLE_POLL = 0.5  # ... and while there are none
SAVE_EVERY = 0.1  # seconds between writes of a hook's cursor while it delivers
LOCK_RETRY = 2.0  # how often a worker without the lock tries to take it
BATCH = 500  # commits walked at once
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 300.0


def backoff(failures: int) -> float:
    """Seconds before the next try after ``failures`` failures in a row: 1, 2, 4, ... up to 5 minutes."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, failures - 1))


def commits_after(reg: Registry, last: str, head: str, limit: int = BATCH) -> list[pygit2.Commit]:
    """The commits of main after ``last`` ("" : from the first) up to ``head``, oldest first, at
    most ``limit``: one walk of the log for a round's batch."""
    repo = reg.ledger.repo()
    walker = repo.walk(head, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    if last:
        walker.hide(last)
    out: list[pygit2.Commit] = []
    for c in walker:
        out.append(c)
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


def completed(e: Event, at: Snapshot) -> Event:
    """The event with its package's repository as of its commit (``at``), where the commit doesn't
    name it (a publish, a yank)."""
    if e.repository or not e.package:
        return e
    record = at.get(layout.package(e.workspace, e.package), Package)
    return msgspec.structs.replace(e, repository=record.repository if record is not None else None)


def replay_tag(hook: Webhook) -> str:
    return f"{hook.replay.start}@{hook.replay.requested.at.isoformat()}" if hook.replay else ""


class HookRunner:
    """Delivers one hook's events. ``step`` does one round and says how long to wait before the next.
    Its connection to the receiver is kept open between deliveries (HTTP/1.1 keep-alive); its cursor
    is kept in memory and written (fsynced) at most every SAVE_EVERY seconds, once the round's
    deliveries are acknowledged: a crash can deliver again what came after, never skip it."""

    def __init__(self, reg: Registry, ws: str, name: str) -> None:
        self.reg, self.ws, self.name = reg, ws, name
        self.failures = 0
        self.walked = ""  # the head the last round walked to: caught up means up to it
        self.client = sending.client(reg.settings)
        self.cur: state.Cursor | None = None  # the cursor as delivered so far
        self.saved: state.Cursor | None = None  # the cursor as it is on disk
        self.saved_at = 0.0  # (time.monotonic() of the last write)
        self.tidied: str | None = None  # the version whose predecessors' entries were last dropped

    def _save(self, cur: state.Cursor) -> None:
        state.save_cursor(self.reg.settings, self.ws, self.name, cur)
        self.cur = self.saved = cur
        self.saved_at = time.monotonic()

    def _passed(self, last: str) -> None:
        """The cursor moves past ``last`` (delivered, or not wanted): on disk now if it wasn't lately."""
        assert self.cur is not None
        self.cur = msgspec.structs.replace(self.cur, last=last)
        if time.monotonic() - self.saved_at >= SAVE_EVERY:
            self.flush()

    def flush(self) -> None:
        """The cursor on disk, if it moved since it was last written."""
        if self.cur is not None and self.cur != self.saved:
            self._save(self.cur)

    def flush_in(self) -> float | None:
        """Seconds until the cursor is due on disk (None: it is there)."""
        if self.cur is None or self.cur == self.saved:
            return None
        return max(0.0, self.saved_at + SAVE_EVERY - time.monotonic())

    def _cursor(self, hook: Webhook) -> state.Cursor:
        settings = self.reg.settings
        if self.cur is None:
            self.cur = self.saved = state.cursor(settings, self.ws, self.name)
        cur = self.cur
        if cur is None or cur.since != hook.since:  # a new hook (or one added again under its name)
            state.forget(settings, self.ws, self.name)
            cur = state.Cursor(since=hook.since, last=hook.since, replay=replay_tag(hook))
            self._save(cur)
        if replay_tag(hook) != cur.replay and hook.replay is not None:
            try:
                start = start_of(self.reg, hook.replay.start)
            except (KeyError, ValueError):
                start = cur.last  # (a commit this ledger doesn't have: the verb refuses those; nothing to do)
            cur = state.Cursor(since=hook.since, last=start, replay=replay_tag(hook))
            self._save(cur)
            self.failures = 0
            log.info("webhook %s/%s: replaying from %s", self.ws, self.name, hook.replay.start)
        return cur

    def step(self, hook: Webhook, head: str | None = None) -> float | None:
        """One round: None when caught up, else the seconds to wait before the next (0: more to do).
        ``hook`` is its record as of ``head`` (None: as of now), and every event up to there goes as
        it says (its URL, secret, events): a backlog goes where the hook points now (an admin moves a
        hook off a dead receiver by replacing it), and nothing after a replace or a removal goes as
        the record before it did (a round walks no further than the commit its record was read at)."""
        cur = self._cursor(hook)
        repo, path = self.reg.ledger.repo(), layout.webhook(self.ws, self.name)
        try:
            if head is None:
                head = self.reg.ledger.head()
                if self.reg.snapshot_at(head).get(path, Webhook) != hook:
                    return 0.0  # (changed since it was read: the next round reads it again)
            self.walked = head
            commits = commits_after(self.reg, cur.last, head)
        except (KeyError, ValueError, pygit2.GitError):  # (a cursor naming a commit the ledger lost: start over)
            log.error("webhook %s/%s: its cursor %s is not in the ledger; delivering from when it was added",
                      self.ws, self.name, cur.last)
            self._save(msgspec.structs.replace(cur, last=hook.since))
            return 0.0
        kept = secrets.stored(self.reg.settings, self.ws, hook)
        if commits:
            self._tidy(hook)
        for logged in commits:
            commit = Commit.of(logged)
            e = event(commit)
            if e is not None:
                e = completed(e, Snapshot(repo, logged))  # (the commit in hand: no lookup by id)
            if e is None or not wanted(e, self.ws, list(hook.events), hook.repository):
                self._passed(commit.id)
                continue
            began, tries = time.monotonic(), self.failures + 1
            answer = sending.send(self.client, self.reg, hook, kept, e)
            self.failures = 0 if answer.ok else tries
            state.record(self.reg.settings, self.ws, self.name, state.Attempt(
                at=now(), event=e.id, type=e.type, status=answer.status, ok=answer.ok, error=answer.error,
                ms=round((time.monotonic() - began) * 1000), attempt=tries))
            if not answer.ok:
                self.flush()  # (what was delivered before it: the wait is a second at least)
                wait = backoff(self.failures)
                log.warning("webhook %s/%s: delivering %s failed (%s); again in %g s", self.ws, self.name, e.id,
                            answer.error, wait)
                return wait
            self._passed(commit.id)  # (only now: after the receiver's 2xx)
        return 0.0 if len(commits) >= BATCH else None

    def _tidy(self, hook: Webhook) -> None:
        """Entries of the hook's name its record doesn't name, staged by commits that failed, go from the
        data directory (once per version of the record: lazily)."""
        if hook.key != self.tidied:
            self.tidied = hook.key
            try:
                secrets.prune(self.reg.settings, self.ws, hook)
            except OSError as exc:  # (the next round's tries again)
                self.tidied = None
                log.warning("webhook %s/%s: dropping its replaced versions' secrets failed (%s)", self.ws,
                            self.name, exc)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.client.close()


class Deliverer:
    """The server's deliverer: takes the lock (or waits for it), then looks at the ledger's head (a
    stat) and keeps a thread per hook. The hooks' threads wait on it, not on the ledger: it wakes
    them when the head moves. With no hooks it looks seldom (a new hook is itself a commit, and
    delivers only what comes after it) and runs no other thread."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.stopping = threading.Event()
        self._threads: dict[tuple[str, str], threading.Thread] = {}
        self._moved = threading.Condition()
        self._head = ""  # the head as the supervisor saw it last (under _moved)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="webhooks", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        with self._moved:
            self._moved.notify_all()

    def run(self) -> None:
        make_dirs(self.reg.settings.webhooks_path)
        fd = locks.elected(self.reg.settings.webhooks_path / "deliverer.lock", self.stopping, LOCK_RETRY)
        if fd is None:
            return
        try:
            self._supervise()
        finally:
            os.close(fd)

    def _supervise(self) -> None:
        seen: dict[str, str | None] | None = None  # each workspace's webhooks directory, as last listed
        while not self.stopping.is_set():
            try:
                head = self.reg.ledger.head()
                if head != self._head:
                    with self._moved:
                        self._head = head
                        self._moved.notify_all()
                    snap = self.reg.snapshot()
                    dirs = {ws: snap.tree_id(layout.webhooks_dir(ws)) for ws in snap.names("workspaces")}
                    if dirs != seen:
                        seen = dirs
                        self._start_threads(snap)
            except Exception:  # (the deliverer must never stop for good)
                log.exception("webhooks: looking for hooks failed")
                seen = None
            self.stopping.wait(POLL if seen is None or any(seen.values()) else IDLE_POLL)

    def _start_threads(self, snap: Snapshot) -> None:
        for ws, hook in all_hooks(snap):
            key = (ws, hook.name)
            thread = self._threads.get(key)
            if thread is None or not thread.is_alive():
                self._threads[key] = t = threading.Thread(
                    target=self._hook, args=key, name=f"webhook {ws}/{hook.name}", daemon=True)
                t.start()
        self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}

    def _hook(self, ws: str, name: str) -> None:
        runner = HookRunner(self.reg, ws, name)
        try:
            for wait in self._rounds(runner):
                if wait != 0.0:
                    self._wait(runner, wait)
        finally:
            runner.close()

    def _moved_from(self, head: str, timeout: float | None) -> bool:
        """Whether the head moves from ``head`` within ``timeout`` seconds (None: until it does)."""
        with self._moved:
            return self._moved.wait_for(lambda: self._head != head or self.stopping.is_set(), timeout) and \
                not self.stopping.is_set()

    def _wait(self, runner: HookRunner, wait: float | None) -> None:
        """Until ``wait`` seconds have passed (None: until the head moves), or sooner if the hook's
        record changes (a replay, an edit: applied at once, whatever the backoff). Meanwhile the
        cursor goes to disk when it is due."""
        head, record = runner.walked or self.reg.ledger.head(), self._record_id(runner)
        deadline = None if wait is None else time.monotonic() + wait
        while not self.stopping.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            due = runner.flush_in()
            timeout = due if left is None else left if due is None else min(due, left)
            if self._moved_from(head, timeout):
                if deadline is None or self._record_id(runner) != record:
                    return
                with self._moved:
                    head = self._head
            else:
                runner.flush()  # (if it was due: else it is on disk already)

    def _record_id(self, runner: HookRunner) -> str | None:
        return self.reg.snapshot().object_id(layout.webhook(runner.ws, runner.name))

    def _rounds(self, runner: HookRunner) -> Iterator[float | None]:
        while not self.stopping.is_set():
            snap = self.reg.snapshot()
            hook = snap.get(layout.webhook(runner.ws, runner.name), Webhook)
            if hook is None:
                return  # removed
            try:
                yield runner.step(hook, snap.commit_id)
            except Exception:
                log.exception("webhook %s/%s: a round failed", runner.ws, runner.name)
                runner.failures += 1
                yield backoff(runner.failures)
