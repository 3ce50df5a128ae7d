"""Per-package history: a derived index over the ledger, rebuildable from git at any time.

git can't filter a revwalk by path cheaply (a manual filter inflates every commit's trees), so each
commit's `Workspace` / `Package` / `Version` trailers are indexed in SQLite, in commit order.
Writers don't touch it: a reader that finds the index behind the branch tip brings it up to date by
walking only the commits it hasn't seen (a few microseconds each), whoever made them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Commit, Ledger

SCHEMA = """
CREATE TABLE IF NOT EXISTS commits (
    position INTEGER PRIMARY KEY,     -- 1 for the root commit; the ledger's history is linear
    id TEXT NOT NULL UNIQUE,
    time INTEGER NOT NULL,
    author_name TEXT NOT NULL,
    author_email TEXT NOT NULL,
    summary TEXT NOT NULL,
    trailers TEXT NOT NULL            -- JSON list of [key, value]
);
CREATE TABLE IF NOT EXISTS touches (
    workspace TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,            -- '' when the change concerns the package as a whole
    position INTEGER NOT NULL,
    PRIMARY KEY (workspace, package, version, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS touches_by_package ON touches (workspace, package, position);
"""


@dataclass(frozen=True)
class Event:
    commit: str
    time: datetime
    author_name: str
    author_email: str
    summary: str
    trailers: tuple[tuple[str, str], ...]
    version: str  # '' for package-wide changes

    def trailer(self, key: str) -> str | None:
        return next((v for k, v in self.trailers if k == key), None)


class History:
    def __init__(self, ledger: Ledger, path: Path) -> None:
        self.ledger = ledger
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # derived data: losing the tail only means a catch-up
            db.executescript(SCHEMA)
            self._local.db = db
        return db

    def _tip(self, db: sqlite3.Connection) -> tuple[int, str | None]:
        row = db.execute("SELECT position, id FROM commits ORDER BY position DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def sync(self) -> None:
        """Bring the index up to the branch tip, walking only commits it has not seen."""
        db = self._db()
        head = self.ledger.head()
        if self._tip(db)[1] == head:  # the common case: one indexed read
            return
        repo = self.ledger.repo()
        with _transaction(db):
            position, tip = self._tip(db)  # again, now that we hold the write lock
            if tip == head:
                return
            if tip is not None and (tip not in repo or not repo.descendant_of(head, tip)):
                # history was replaced (not something the registry does): rebuild from scratch
                db.execute("DELETE FROM commits")
                db.execute("DELETE FROM touches")
                tip, position = None, 0
            new = list(self.ledger.walk(since=tip))
            new.reverse()
            for commit in new:
                position += 1
                _insert(db, position, commit)

    def serial(self) -> int:
        """A number that grows with every commit: the index's position of the tip."""
        self.sync()
        return self._tip(self._db())[0]

    def package(self, workspace: str, package: str, version: str | None = None, *, limit: int = 1000) -> list[Event]:
        """Commits that touched a package (or one of its versions), newest first."""
        self.sync()
        db = self._db()
        if version is None:
            where, args = "t.workspace=? AND t.package=?", [workspace, package]
        else:
            where, args = "t.workspace=? AND t.package=? AND t.version=?", [workspace, package, version]
        rows = db.execute(
            f"SELECT DISTINCT c.position, c.id, c.time, c.author_name, c.author_email, c.summary, c.trailers, t.version "
            f"FROM touches t JOIN commits c ON c.position = t.position WHERE {where} "
            f"ORDER BY c.position DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
        return [
            Event(commit=r[1], time=datetime.fromtimestamp(r[2], UTC), author_name=r[3], author_email=r[4],
                  summary=r[5], trailers=tuple(tuple(t) for t in json.loads(r[6])), version=r[7])
            for r in rows
        ]


def _insert(db: sqlite3.Connection, position: int, commit: Commit) -> None:
    db.execute(
        "INSERT INTO commits VALUES (?, ?, ?, ?, ?, ?, ?)",
        (position, commit.id, int(commit.time.timestamp()), commit.author_name, commit.author_email,
         commit.summary, json.dumps(commit.trailers)),
    )
    workspace = commit.trailer("Workspace")
    package = commit.trailer("Package")
    if workspace and package:
        versions = [v for k, v in commit.trailers if k == "Version"] or [""]
        db.executemany(
            "INSERT OR IGNORE INTO touches VALUES (?, ?, ?, ?)",
            [(workspace, package, v, position) for v in versions],
        )


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
