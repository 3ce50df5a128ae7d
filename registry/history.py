"""Per-package history: a derived index over the ledger, rebuildable from git at any time.

git can't filter a revwalk by path cheaply, so each commit's `Workspace` / `Package` / `Version`
trailers are indexed in SQLite, in commit order. Whoever commits indexes their own commit right
after it (`record`: one insert); a background task brings the index up to the tip in bounded steps
whenever it is behind (a deleted index, a crash between commit and insert, an older release's
commits: `catch_up`). Reads never walk the ledger: they answer from the index as it stands.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pygit2.enums import SortMode

from .audit import T
from .ledger import REF, Commit, Ledger

log = logging.getLogger("registry.history")
STEP = 2000  # commits indexed per transaction while catching up

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


class History:
    def __init__(self, ledger: Ledger, path: Path) -> None:
        self.ledger = ledger
        self.path = Path(path)
        self._local = threading.local()
        self._plan: tuple | None = None  # (repository, tip, head, the walk that goes on from tip)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # derived data: losing the tail only means a catch-up
            db.execute("PRAGMA cache_size=-8000")  # 8 MB of pages per connection, whatever the index's size
            db.executescript(SCHEMA)
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _tip(self, db: sqlite3.Connection) -> tuple[int, str | None]:
        row = db.execute("SELECT position, id FROM commits ORDER BY position DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def record(self, commit: Commit, parent: str) -> bool:
        """Index ``commit`` (just made on ``parent``), if the index stands at ``parent``; False if it
        is behind (a catch-up will get there). One insert: cheap enough for every writer."""
        try:
            db = self._db()
            with _transaction(db):
                position, tip = self._tip(db)
                if tip != parent:
                    return False
                _insert(db, position + 1, commit)
            return True
        except sqlite3.Error as exc:  # derived: a broken index must never fail a commit
            log.warning("history index: not recording %s (%s); a catch-up will", commit.id[:12], exc)
            return False

    def behind(self) -> bool:
        return self._tip(self._db())[1] != self.ledger.head()

    def catch_up(self, limit: int = STEP) -> int:
        """Index up to ``limit`` commits the index hasn't seen, oldest first; how many it did."""
        db = self._db()
        repo = self.ledger.repo()
        head = self.ledger.head()
        with _transaction(db):
            position, tip = self._tip(db)
            if tip == head:
                return 0
            if tip is not None and (tip not in repo or not repo.descendant_of(head, tip)):
                log.warning("history index: the ledger's history was replaced; rebuilding the index")
                db.execute("DELETE FROM commits")
                db.execute("DELETE FROM touches")
                tip, position = None, 0
            walker = self._walk_after(repo, tip, head)
            done = 0
            for raw in itertools.islice(walker, limit):
                position += 1
                _insert(db, position, Commit.of(raw))
                done += 1
        self._plan = (repo, str(raw.id), head, walker) if done == limit else None
        return done

    def _walk_after(self, repo, tip: str | None, head: str):
        """The commits after ``tip`` up to ``head``, oldest first: one walk per catch-up, resumed at
        each step, since a topological walk visits every commit back to ``tip`` before it yields one."""
        plan, self._plan = self._plan, None  # (a step that fails must not leave a walk gone past its tip)
        if plan is not None and plan[0] is repo and plan[1:3] == (tip, head):
            return plan[3]
        walker = repo.walk(repo.lookup_reference(REF).target, SortMode.TOPOLOGICAL | SortMode.REVERSE)
        if tip is not None:
            walker.hide(tip)
        return walker

    def position(self, commit_id: str) -> int | None:
        """How many commits lead to this one (itself included), if it is indexed."""
        row = self._db().execute("SELECT position FROM commits WHERE id=?", (commit_id,)).fetchone()
        return row[0] if row else None

    def serial(self) -> int:
        """A number that grows with every commit: the index's position of its tip."""
        return self._tip(self._db())[0]

    def package(self, workspace: str, package: str, version: str | None = None, *, limit: int = 1000,
                before: int | None = None) -> list[Commit]:
        """Commits that touched a package (or one of its versions), newest first; ``before``: only
        commits older than that position (paging)."""
        db = self._db()
        where, args = "t.workspace=? AND t.package=?", [workspace, package]
        if version is not None:
            where, args = where + " AND t.version=?", [*args, version]
        if before is not None:
            where, args = where + " AND t.position<?", [*args, before]
        rows = db.execute(
            "SELECT DISTINCT c.position, c.id, c.time, c.author_name, c.author_email, c.summary, c.trailers "
            f"FROM touches t JOIN commits c ON c.position = t.position WHERE {where} "
            "ORDER BY c.position DESC LIMIT ?", [*args, limit]).fetchall()
        return [Commit(id=r[1], time=datetime.fromtimestamp(r[2], UTC), author_name=r[3], author_email=r[4],
                       summary=r[5], trailers=tuple(tuple(t) for t in json.loads(r[6]))) for r in rows]


def _insert(db: sqlite3.Connection, position: int, commit: Commit) -> None:
    db.execute(
        "INSERT INTO commits VALUES (?, ?, ?, ?, ?, ?, ?)",
        (position, commit.id, int(commit.time.timestamp()), commit.author_name, commit.author_email,
         commit.summary, json.dumps(commit.trailers)),
    )
    workspace, package = commit.trailer(T.WORKSPACE), commit.trailer(T.PACKAGE)
    if workspace and package:
        versions = commit.trailers_named(T.VERSION) or [""]
        db.executemany("INSERT OR IGNORE INTO touches VALUES (?, ?, ?, ?)",
                       [(workspace, package, v, position) for v in versions])


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
