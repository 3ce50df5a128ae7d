"""The audit trail by workspace and repository: a derived index over the ledger, like the
per-package history (registry/history.py), rebuildable from git at any time.

Each commit is filed under the workspace it names and what it concerns: a package (and the
repository the package was linked to when it was made), a repository, or the workspace itself.
The web UI shows a commit only to whoever may read what it concerns (see `data.visible`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS trail (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    time INTEGER NOT NULL,
    author_name TEXT NOT NULL,
    author_email TEXT NOT NULL,
    summary TEXT NOT NULL,
    trailers TEXT NOT NULL,
    workspace TEXT,                   -- NULL: the commit names none (users, tokens, sign-in links)
    kind TEXT NOT NULL,               -- 'package', 'repository' or 'workspace'
    repository TEXT,
    package TEXT
);
CREATE INDEX IF NOT EXISTS trail_by_workspace ON trail (workspace, position);
CREATE INDEX IF NOT EXISTS trail_by_repository ON trail (workspace, repository, position);
CREATE TABLE IF NOT EXISTS links (    -- the repository each package is linked to, as of the index's tip
    workspace TEXT NOT NULL, package TEXT NOT NULL, repository TEXT NOT NULL,
    PRIMARY KEY (workspace, package)
) WITHOUT ROWID;
"""
COLUMNS = "position, id, time, author_name, author_email, summary, trailers, workspace, kind, repository, package"


@dataclass(frozen=True)
class Entry:
    position: int
    commit: str
    time: datetime
    author_name: str
    author_email: str
    summary: str
    trailers: tuple[tuple[str, str], ...]
    workspace: str | None
    kind: str
    repository: str | None
    package: str | None

    def trailer(self, key: str) -> str | None:
        return next((v for k, v in self.trailers if k == key), None)


def _entry(row) -> Entry:
    return Entry(row[0], row[1], datetime.fromtimestamp(row[2], UTC), row[3], row[4], row[5],
                 tuple(tuple(t) for t in json.loads(row[6])), row[7], row[8], row[9], row[10])


class Trail:
    def __init__(self, ledger, path: Path) -> None:
        self.ledger = ledger
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # derived: a lost tail is only a catch-up
            db.executescript(SCHEMA)
            self._local.db = db
        return db

    def _tip(self, db) -> tuple[int, str | None]:
        row = db.execute("SELECT position, id FROM trail ORDER BY position DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def sync(self) -> sqlite3.Connection:
        db = self._db()
        head = self.ledger.head()
        if self._tip(db)[1] == head:
            return db
        db.execute("BEGIN IMMEDIATE")
        try:
            position, tip = self._tip(db)
            repo = self.ledger.repo()
            if tip is not None and tip != head and (tip not in repo or not repo.descendant_of(head, tip)):
                db.execute("DELETE FROM trail")  # history was replaced: start again
                db.execute("DELETE FROM links")
                position, tip = 0, None
            if tip != head:
                new = list(self.ledger.walk(since=tip))
                new.reverse()
                for commit in new:
                    position += 1
                    _insert(db, position, commit)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return db

    def find(self, commit_id: str) -> Entry | None:
        row = self.sync().execute(f"SELECT {COLUMNS} FROM trail WHERE id = ?", (commit_id,)).fetchone()
        return _entry(row) if row else None

    def page(self, workspace: str, *, repository: str | None = None, readable: set[str] | None = None,
             administered: set[str] | None = None, limit: int = 50, offset: int = 0) -> list[Entry]:
        """A workspace's (or one repository's) commits, newest first. ``readable``/``administered``:
        the repositories whose package commits / own commits the caller may see (None: everything,
        for workspace admins)."""
        where, args = ["workspace = ?"], [workspace]
        if repository is not None:
            where.append("repository = ?")
            args.append(repository)
        if readable is not None:
            allowed = ["(kind = 'package' AND repository IN (%s))" % ",".join("?" * len(readable)),
                       "(kind = 'repository' AND repository IN (%s))" % ",".join("?" * len(administered or ()))]
            where.append("(" + " OR ".join(allowed) + ")")
            args += [*sorted(readable), *sorted(administered or ())]
        rows = self.sync().execute(
            f"SELECT {COLUMNS} FROM trail WHERE {' AND '.join(where)} ORDER BY position DESC LIMIT ? OFFSET ?",
            [*args, limit, offset]).fetchall()
        return [_entry(r) for r in rows]


def _insert(db, position: int, commit) -> None:
    trailers = dict(commit.trailers)
    ws, package, repository = trailers.get("Workspace"), trailers.get("Package"), trailers.get("Repository")
    if ws and package:
        kind = "package"
        if repository and commit.summary.startswith("create package "):
            db.execute("INSERT OR REPLACE INTO links VALUES (?, ?, ?)", (ws, package, repository))
        elif not repository:
            row = db.execute("SELECT repository FROM links WHERE workspace = ? AND package = ?", (ws, package)).fetchone()
            repository = row[0] if row else None
    else:
        kind = "repository" if ws and repository else "workspace"
    db.execute("INSERT INTO trail VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (position, commit.id, int(commit.time.timestamp()), commit.author_name, commit.author_email,
                commit.summary, json.dumps(commit.trailers), ws, kind, repository, package))


_trails: dict[str, Trail] = {}
_lock = threading.Lock()


def trail_for(registry) -> Trail:
    """One index per data directory, beside the history index."""
    key = str(registry.settings.cache_path)
    with _lock:
        found = _trails.get(key)
        if found is None or found.ledger is not registry.ledger:
            found = _trails[key] = Trail(registry.ledger, registry.settings.cache_path / "ui-trail.sqlite3")
        return found
