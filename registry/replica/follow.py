"""The replica's copy of the primary's ledger, kept fresh by git fetch and checked as a witness checks.

Every fetch goes through `witness.witness` with the replica's own ledger as the copy: the primary's
checkpoint must be signed by the key the ledger names, its head must descend from the one held, and
every new commit must be signed by the key of its time. Only then does `main` move (one atomic ref
update, which every worker's `Ledger.head()` sees by its stat). A rewrite stops the replica for
good: it keeps serving what it had and says why in /_/health, until its operator looks.

Fetches take a lock (`replica/fetch.lock`), so the worker that follows (the one holding
`replica/follow.lock`) and a worker waiting for a forwarded write's commit never fetch at once.
When the worker that follows dies, another takes the lock within LEAD_EVERY seconds (granian
replaces the dead one). What /_/health reports lives in `replica/status.json`, written under
`replica/status.lock`.

A stopped or silent primary is noticed within REGISTRY_FOLLOW_TIMEOUT_SECONDS (primary.py: the long
poll is watched, and a fetch that stops making progress is abandoned); /_/health then says it is
unreachable and why, and the follower tries again, with backoff, until it answers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pygit2

from .. import locks, outbound
from ..config import Settings
from ..errors import RegistryError
from ..fsync import write_file
from ..ledger import Ledger
from ..outbound import describe, timeouts
from ..trust import checkpoints as checkpoint
from ..trust import witness
from .primary import Silent, watched

log = logging.getLogger("registry.replica")
logging.getLogger("httpx").setLevel(logging.WARNING)  # (a line per long poll and per fetch otherwise)
LONG_POLL = 25.0  # seconds the primary holds a checkpoint request while its head stays where it was
FALLBACK = 2.0  # seconds between checks when the primary answers at once (one that can't hold a poll)
RETRY_MAX = 5.0  # seconds between attempts while the primary is unreachable
LEAD_EVERY = 1.0  # seconds between a worker's tries to take over following (a flock attempt each)


class Stopped(Exception):
    """The primary's history is not a continuation of the one this replica holds."""


class Follower:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        if settings.primary is None:
            raise RegistryError("A replica follows a primary: serve it with `registry serve --follow PRIMARY_URL` "
                                "and a replica token.")
        self.primary: str = settings.primary
        self.token = settings.follow_token
        self.wait_write = settings.follow_wait_seconds  # (for a forwarded write's commit to arrive here)
        self.timeout = settings.follow_timeout_seconds  # (the longest the primary may stay silent)
        self.ledger = ledger
        self.dir = settings.replica_path
        self.dir.mkdir(parents=True, exist_ok=True)
        self._leader: int | None = None  # the follow lock's descriptor, once this process holds it

    # --- status ------------------------------------------------------------------------------

    def status(self) -> dict:
        try:
            return json.loads((self.dir / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _update(self, **fields) -> dict:
        with self._flock("status.lock"):
            status = {**self.status(), **fields}
            temp = self.dir / f"status.json.{os.getpid()}.tmp"
            write_file(temp, (json.dumps(status, indent=2) + "\n").encode(), exclusive=False, sync=False)
            os.replace(temp, self.dir / "status.json")
        return status

    def _unreachable(self, why: str) -> None:
        """Say that following fails, and since when (the first failure of a run of them)."""
        self._update(error=why, error_since=self.status().get("error_since") or _now())

    def stopped(self) -> str | None:
        return self.status().get("stopped")

    def health(self) -> dict:
        s, now = self.status(), time.time()
        head = self.ledger.head()
        behind = max(int(s.get("primary_size") or 0) - int(s.get("size") or 0), 0)
        if s.get("primary_head") in (None, head):
            behind = 0
        since = s.get("behind_since")
        answer: dict[str, Any] = {
            "status": "stopped" if s.get("stopped") else "ok", "role": "replica", "primary": self.primary,
            "ledger": head,
            "lag": {"commits": behind, "seconds": round(now - since, 3) if behind and since else 0.0},
            "last_fetch": s.get("last_fetch"), "primary_reachable": not s.get("error"),
        }
        if s.get("error"):
            answer["error"] = s["error"]
        if "files_missing" in s:  # (fill.py's, once its first round is done)
            answer["files"] = {"missing": s["files_missing"], "cursor": s.get("files_cursor"),
                               "checked": s.get("files_checked")}
            if s.get("files_error"):
                answer["files"]["error"] = s["files_error"]
        if s.get("stopped"):
            answer["stopped"] = s["stopped"]
            answer["action"] = ("This replica no longer follows the primary: its history is not a continuation of the "
                                "one held here. It serves what it had. Find out why (run `registry witness` against "
                                "the primary); to follow it anew, stop the replica and start it on an empty data "
                                "directory.")
        return answer

    def files_seen(self, **fields) -> None:
        """What fill.py found in a round: ``cursor``, ``missing``, ``error``."""
        self._update(**{f"files_{k}": v for k, v in fields.items()}, files_checked=_now())

    def _seen(self, point: checkpoint.Checkpoint) -> None:
        s = self.status()
        if point.head == self.ledger.head():
            fields = dict(primary_head=point.head, primary_size=point.size, behind_since=None)
        else:
            fields = dict(primary_head=point.head, primary_size=point.size,
                          behind_since=s.get("behind_since") or time.time())
        self._update(**fields, error=None, last_contact=_now())

    # --- fetching ----------------------------------------------------------------------------

    def holds(self, commit: str) -> bool:
        """Whether main is at ``commit`` or descends from it."""
        head = self.ledger.head()
        if head == commit:
            return True
        repo = self.ledger.repo()
        try:
            return commit in repo and repo.descendant_of(head, commit)
        except (ValueError, KeyError, pygit2.GitError):
            return False

    def sync(self, note: str | None = None, want: str | None = None, within: float | None = None) -> str:
        """Fetch and check what the primary has, and move main to it; the new head. ``note``: a
        checkpoint just had from the primary; ``want``: a commit we need (nothing to do if held);
        ``within``: the longest to wait for another fetch to end (a thread that waited for ever
        would pile up behind a stalled one). Raises Stopped (a rewrite, for good),
        witness.CannotCheck (for now)."""
        with self._flock("fetch.lock", within):
            stopped = self.stopped()
            if stopped:
                raise Stopped(stopped)
            if want is not None and self.holds(want):
                return self.ledger.head()
            if note is not None:  # (another worker may have fetched past it meanwhile: a rollback it is not)
                try:
                    if self.holds(checkpoint.parse(note)[0].head):
                        return self.ledger.head()
                except checkpoint.BadCheckpoint:
                    pass
            try:
                done = witness.witness(self.primary, self.dir / "witness-state.json", [], self.token,
                                       mirror=self.ledger.path, note=note, timeout=self.timeout)
            except witness.Tampered as exc:
                message = f"stopped following {self.primary}: {exc}"
                log.error("REPLICA %s", message)
                self._update(stopped=message, stopped_at=_now())
                raise Stopped(message) from None
            except (witness.CannotCheck, checkpoint.BadCheckpoint) as exc:
                self._update(error=str(exc), error_since=self.status().get("error_since") or _now())
                raise witness.CannotCheck(str(exc)) from None
            self.ledger.move_to(done.point.head)
            temp = self.dir / f"checkpoint.{os.getpid()}.tmp"
            write_file(temp, done.note.encode(), exclusive=False, sync=False)
            os.replace(temp, self.dir / "checkpoint")
            self._update(head=done.point.head, size=done.point.size, last_fetch=_now(), error=None,
                         error_since=None, primary_head=done.point.head, primary_size=done.point.size,
                         behind_since=None, last_contact=_now())
            return done.point.head

    def checkpoint_note(self) -> str | None:
        """The primary's checkpoint for the head held here (signed by the primary: a replica has no keys)."""
        try:
            return (self.dir / "checkpoint").read_text()
        except FileNotFoundError:
            return None

    async def wait_for(self, commit: str) -> bool:
        """Fetch until main holds ``commit``; False if it didn't within the settings' wait."""
        deadline = time.monotonic() + self.wait_write
        while not self.holds(commit):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with anyio.move_on_after(left):
                try:
                    await anyio.to_thread.run_sync(self.sync, None, commit, left, abandon_on_cancel=True)
                except witness.CannotCheck:
                    await anyio.sleep(0.1)
        return True

    # --- following ---------------------------------------------------------------------------

    def lead(self) -> bool:
        """Whether this process follows (one per replica: the first to take the lock)."""
        if self._leader is None:
            self._leader = locks.first(self.dir / "follow.lock")
            if self._leader is None:
                return False
        return True

    async def follow(self) -> None:
        """Wake on the primary's checkpoint (a long poll), fetch what is new; for ever, or until a
        rewrite stops it. Only the leading process polls; the others check now and then whether
        it is still there to lead."""
        while not self.lead():
            await anyio.sleep(LEAD_EVERY)
        retry = 0.5
        auth = ("__token__", self.token) if self.token else None
        client: httpx.AsyncClient | None = None
        try:
            while True:
                if client is None:  # (afresh after a fault: a stall may have left its connection dead)
                    client = outbound.client(timeouts(self.timeout, read=LONG_POLL + self.timeout), auth=auth)
                try:
                    await self._poll(client)
                    retry = 0.5
                except Stopped:
                    return
                except (httpx.HTTPError, Silent, witness.CannotCheck, checkpoint.BadCheckpoint) as exc:
                    text = str(exc) or type(exc).__name__
                    if isinstance(exc, (httpx.HTTPError, Silent)):
                        why = str(exc) if isinstance(exc, Silent) else describe(exc, self.timeout)
                        text = f"the primary at {self.primary} is unreachable ({why})"
                        await client.aclose()
                        client = None
                    await anyio.to_thread.run_sync(self._unreachable, text)
                    log.warning("replica: %s; retrying in %.1f s", text, retry)
                    await anyio.sleep(retry)
                    retry = min(retry * 2, RETRY_MAX)
                except Exception:  # following must never take the server down
                    log.exception("replica: following the primary failed; retrying")
                    await anyio.sleep(RETRY_MAX)
        finally:
            if client is not None:
                with anyio.CancelScope(shield=True):
                    await client.aclose()

    async def _poll(self, client: httpx.AsyncClient) -> None:
        """One long poll of the primary's checkpoint, and the fetch it calls for; both watched, so a
        primary gone silent is an error within about `self.timeout` (the fetch's thread is left to
        end by itself: git gives up on a silent server)."""
        head = self.ledger.head()
        asked = time.monotonic()
        response = await watched(self.primary, self.timeout, lambda: client.get(
            f"{self.primary}/_/ledger/checkpoint", params={"wait": head}))
        if response.status_code != 200:
            raise witness.CannotCheck(f"GET {self.primary}/_/ledger/checkpoint: {response.status_code} "
                                      f"{response.text.strip()[:200]}")
        note = response.text
        point = checkpoint.parse(note)[0]
        await anyio.to_thread.run_sync(self._seen, point)
        if point.head != head:
            await watched(self.primary, self.timeout,
                          lambda: anyio.to_thread.run_sync(self.sync, note, abandon_on_cancel=True))
        elif time.monotonic() - asked < 1:
            await anyio.sleep(FALLBACK)

    def _flock(self, name: str, within: float | None = None) -> AbstractContextManager[int]:
        def refused() -> witness.CannotCheck:
            return witness.CannotCheck(f"another fetch from {self.primary} took over {within:.0f} s")

        return locks.held(self.dir / name, within, refused)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
