"""Each hook's delivery state, in the data directory (`webhooks/<ws>/<name>/`): its cursor (the last
commit delivered, fsynced before the next is sent, so a delivery acknowledged is never sent again
after a restart and one not acknowledged always is) and its recent attempts (for the API and UI).
Only the deliverer writes them; anyone reads them."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import msgspec

from ..config import Settings
from ..fsync import fsync_path, make_dirs, write_file

KEEP_ATTEMPTS = 100  # per hook: the history the API and UI show


class Cursor(msgspec.Struct, frozen=True, kw_only=True):
    since: str  # the hook's `since` when this cursor was started: another one means a new hook
    last: str  # the last commit delivered (or skipped as not wanted), `since` at first
    replay: str = ""  # the last replay request applied (its commit id and time), so each applies once


class Attempt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    at: datetime
    event: str  # the commit id
    type: str
    status: int | None = None  # the receiver's HTTP status; None: no answer
    ok: bool
    error: str = ""
    ms: int = 0
    attempt: int = 1  # of this event (1: the first try)


def folder(settings: Settings, ws: str, name: str) -> Path:
    return settings.webhooks_path / ws / name


def cursor(settings: Settings, ws: str, name: str) -> Cursor | None:
    try:
        return msgspec.json.decode((folder(settings, ws, name) / "cursor.json").read_bytes(), type=Cursor)
    except (FileNotFoundError, msgspec.DecodeError):  # (never written, or a torn write from before fsync)
        return None


def save_cursor(settings: Settings, ws: str, name: str, value: Cursor) -> None:
    """Durably: renamed into place once its bytes are synced, then its directory synced."""
    where = folder(settings, ws, name)
    if not where.is_dir():
        make_dirs(where)
    temp = where / f"cursor.{os.getpid()}.tmp"
    write_file(temp, msgspec.json.encode(value), 0o600, exclusive=False, sync=True)
    os.replace(temp, where / "cursor.json")
    fsync_path(where)


def record(settings: Settings, ws: str, name: str, attempt: Attempt) -> None:
    """Add an attempt to the hook's history (not synced: it is for people; the cursor is what counts).
    The file is cut back to the newest ``KEEP_ATTEMPTS`` once it holds twice as many."""
    where = folder(settings, ws, name)
    if not where.is_dir():
        make_dirs(where)
    path = where / "attempts.jsonl"
    with open(path, "ab") as fh:
        fh.write(msgspec.json.encode(attempt) + b"\n")
        size = fh.tell()
    if size > 2 * KEEP_ATTEMPTS * 200:  # (a line is 150-300 bytes: count only when it may be time)
        lines = path.read_bytes().splitlines()
        if len(lines) > 2 * KEEP_ATTEMPTS:
            temp = where / f"attempts.{os.getpid()}.tmp"
            write_file(temp, b"\n".join(lines[-KEEP_ATTEMPTS:]) + b"\n", 0o600, exclusive=False)
            os.replace(temp, path)


def attempts(settings: Settings, ws: str, name: str, limit: int = KEEP_ATTEMPTS) -> list[Attempt]:
    """The hook's recent attempts, newest first."""
    try:
        lines = (folder(settings, ws, name) / "attempts.jsonl").read_bytes().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in reversed(lines):
        try:
            out.append(msgspec.json.decode(line, type=Attempt))
        except msgspec.DecodeError:  # (a line cut short by a crash)
            continue
        if len(out) >= limit:
            break
    return out


def forget(settings: Settings, ws: str, name: str) -> None:
    """A removed hook's state: a hook added again under its name starts afresh (its `since` differs)."""
    where = folder(settings, ws, name)
    for path in (where / "cursor.json", where / "attempts.jsonl"):
        path.unlink(missing_ok=True)
