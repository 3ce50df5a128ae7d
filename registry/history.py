"""The history index: a derived index over the ledger, rebuildable from git at any time, that
answers what git can't cheaply: which commits touched a package (or a version), where each of a
name's packages begins (a package deleted and made again is another package, whose history is its
own), which commit deleted a file, which commit stands at a position, and what a workspace's (or a
repository's) audit trail holds.

Each commit's trailers are indexed in SQLite, in commit order: `touches` by package and version,
`links` by package and creation (each package of a name, and the repository it was linked to),
`deletions` by file hash, `trail` by workspace and what the commit concerns (a package, and the
repository that package was linked to; a repository; the workspace itself). Whoever commits
indexes their own commit right after it (`record`: a few inserts); a background task brings the
index up to the tip in bounded steps whenever it is behind (a deleted index, a crash between
commit and insert, an older release's commits or database: `catch_up`). Reads never walk the
ledger: they answer from the index as it stands.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from .audit import Action, T, action, creates_package
from .ledger import REF, Commit, Ledger

log = logging.getLogger("registry.history")
STEP = 2000  # commits indexed per transaction while catching up
TAIL = 1000  # commits a read walks back from a head the index hasn't caught up to, at most
# PRAGMA user_version. Older indexes keep their rows: 0 (before the audit trail) has its trail filled
# in on catch-up; 0 and 1 (before incarnations and deletions) have `links` and `deletions` rebuilt
# from their own `commits` when opened (one pass over a few rows: creations and deletions only).
VERSION = 2

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
CREATE TABLE IF NOT EXISTS trail (
    position INTEGER PRIMARY KEY,     -- the commit's, in commits
    workspace TEXT,                   -- NULL: the commit names none (users, tokens, sign-in links)
    kind TEXT NOT NULL,               -- 'package', 'repository' or 'workspace'
    repository TEXT,
    package TEXT
);
CREATE INDEX IF NOT EXISTS trail_by_workspace ON trail (workspace, position);
CREATE INDEX IF NOT EXISTS trail_by_repository ON trail (workspace, repository, position);
CREATE INDEX IF NOT EXISTS trail_by_filing ON trail (workspace, repository, kind, position);
CREATE TABLE IF NOT EXISTS links (    -- each package of a name: where it begins, and the repository it is linked to
    workspace TEXT NOT NULL, package TEXT NOT NULL,
    created INTEGER NOT NULL,         -- the position of the commit that created it
    repository TEXT NOT NULL,
    PRIMARY KEY (workspace, package, created)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deletions (  -- the commits that deleted a file (delete-version, delete-package)
    workspace TEXT NOT NULL, package TEXT NOT NULL, sha256 TEXT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (workspace, package, sha256, position)
) WITHOUT ROWID;
"""
TABLES = ("commits", "touches", "trail", "links", "deletions")
DERIVED = ("links", "deletions")  # what an index from before VERSION 2 lacks: rebuilt from its commits
COMMIT_COLUMNS = "c.position, c.id, c.time, c.author_name, c.author_email, c.summary, c.trailers"
FILED_COLUMNS = f"{COMMIT_COLUMNS}, t.workspace, t.kind, t.repository, t.package"


@dataclass(frozen=True)
class Filed:
    """A commit as the audit trail files it: under the workspace it names, by what it concerns."""

    commit: Commit
    workspace: str | None
    kind: str  # 'package', 'repository' or 'workspace'
    repository: str | None
    package: str | None


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
            self._migrate(db)
            self._local.db = db
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring an index made by another release to this schema (its rows stay; what is new fills
        in on catch-up). A newer release's index is rebuilt: it is derived."""
        if db.execute("PRAGMA user_version").fetchone()[0] == VERSION:
            return
        with _transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > VERSION:
                log.warning("history index: made by a newer release (schema %d); rebuilding it", version)
                for table in TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            elif version < 2:
                for table in DERIVED:  # (version 1's links had one row per name, not per package)
                    db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _statements(SCHEMA):  # (executescript would commit the transaction)
                db.execute(statement)
            if version < 2:
                _derive_older(db)
            db.execute(f"PRAGMA user_version = {VERSION}")
        # (the web UI once kept the trail in a database of its own: nothing reads it any more)
        for leftover in ("ui-trail.sqlite3", "ui-trail.sqlite3-wal", "ui-trail.sqlite3-shm"):
            (self.path.parent / leftover).unlink(missing_ok=True)

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _tip(self, db: sqlite3.Connection) -> tuple[int, str | None]:
        row = db.execute("SELECT position, id FROM commits ORDER BY position DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, None)

    def _trail_tip(self, db: sqlite3.Connection) -> int:
        return db.execute("SELECT COALESCE(MAX(position), 0) FROM trail").fetchone()[0]

    def record(self, commit: Commit, parent: str | None) -> bool:
        """Index ``commit`` (just made on ``parent``; None: the root), if the index stands at
        ``parent``; False if it is behind (a catch-up will get there: while the trail fills in from
        an older index, it files this commit too). A few inserts: cheap enough for every writer."""
        try:
            db = self._db()
            with _transaction(db):
                position, tip = self._tip(db)
                if tip != parent:
                    return False
                filed = self._trail_tip(db) == position
                _insert(db, position + 1, commit, filed=filed)
            return filed
        except sqlite3.Error as exc:  # derived: a broken index must never fail a commit
            log.warning("history index: not recording %s (%s); a catch-up will", commit.id[:12], exc)
            return False

    def behind(self) -> bool:
        db = self._db()
        position, tip = self._tip(db)
        return tip != self.ledger.head() or self._trail_tip(db) < position

    def lag(self) -> int:
        """How many of the ledger's commits the index has yet to take in (for the metrics)."""
        _, tip = self._tip(self._db())
        repo, head = self.ledger.repo(), self.ledger.head()
        if tip == head:
            return 0
        if tip is None or tip not in repo:
            return sum(1 for _ in repo.walk(head))
        return repo.ahead_behind(head, tip)[0]

    def trail_behind(self) -> bool:
        """Whether the trail lacks some of the ledger's commits (a page may say so)."""
        db = self._db()
        row = db.execute("SELECT c.id FROM trail t JOIN commits c ON c.position = t.position "
                         "ORDER BY t.position DESC LIMIT 1").fetchone()
        return (row[0] if row else None) != self.ledger.head()

    def catch_up(self, limit: int = STEP) -> int:
        """Index up to ``limit`` commits the index hasn't seen, oldest first (the trail of commits
        indexed before it existed first, from the index itself); how many it did."""
        db = self._db()
        repo = self.ledger.repo()
        head = self.ledger.head()
        with _transaction(db):
            position, tip = self._tip(db)
            if tip is not None and tip != head and (tip not in repo or not repo.descendant_of(head, tip)):
                log.warning("history index: the ledger's history was replaced; rebuilding the index")
                for table in TABLES:
                    db.execute(f"DELETE FROM {table}")
                tip, position = None, 0
            done = _file_older(db, limit)
            if tip == head or done >= limit:
                return done
            walker = self._walk_after(repo, tip, head)
            batch = [Commit.of(raw) for raw in itertools.islice(walker, limit - done)]
            _insert_many(db, position + 1, batch, filed=True)
        self._plan = (repo, batch[-1].id, head, walker) if len(batch) == limit - done else None
        return done + len(batch)

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

    def commit_at(self, position: int) -> str | None:
        """The id of the commit at ``position``, if it is indexed."""
        row = self._db().execute("SELECT id FROM commits WHERE position=?", (position,)).fetchone()
        return row[0] if row else None

    def base(self, head: str, bound: int | None = TAIL) -> tuple[int, list[pygit2.Commit]] | None:
        """Where ``head`` (a commit of main) stands in the index: the position of it or of its
        nearest indexed ancestor, and the commits after that one up to ``head``, newest first (the
        index hasn't caught up to them yet). None if more than ``bound`` of them aren't indexed."""
        tail: list[pygit2.Commit] = []
        for commit in first_parents(self.ledger.repo(), head):
            found = self.position(str(commit.id))
            if found is not None:
                return found, tail
            if bound is not None and len(tail) >= bound:
                return None
            tail.append(commit)
        return 0, tail

    def incarnation(self, workspace: str, package: str, at: int) -> tuple[int, str] | None:
        """The package of this name as of position ``at``: the position and id of the commit that
        created it (None if no indexed commit up to ``at`` created one)."""
        row = self._db().execute(
            "SELECT l.created, c.id FROM links l JOIN commits c ON c.position = l.created WHERE l.workspace=? "
            "AND l.package=? AND l.created<=? ORDER BY l.created DESC LIMIT 1", (workspace, package, at)).fetchone()
        return (row[0], row[1]) if row else None

    def deleted(self, workspace: str, package: str, sha256: str, after: int) -> str | None:
        """The first commit after position ``after`` that deleted a file of the package with these bytes."""
        row = self._db().execute(
            "SELECT c.id FROM deletions d JOIN commits c ON c.position = d.position WHERE d.workspace=? AND "
            "d.package=? AND d.sha256=? AND d.position>? ORDER BY d.position LIMIT 1",
            (workspace, package, sha256, after)).fetchone()
        return row[0] if row else None

    def package(self, workspace: str, package: str, version: str | None = None, *, limit: int = 1000,
                since: int | None = None, before: int | None = None, after: int | None = None) -> list[Commit]:
        """Commits that touched a package (or one of its versions), newest first; ``since``: from
        that position on (where the package read begins: see `incarnation`). A page: the newest
        ``limit`` older than position ``before``, or the oldest ``limit`` newer than ``after``; it
        costs its own rows (an index range), never the rows before it."""
        where: list[str] = ["t.workspace=?", "t.package=?"]
        args: list[str | int] = [workspace, package]
        if version is not None:
            where, args = [*where, "t.version=?"], [*args, version]
        if since is not None:
            where, args = [*where, "t.position>=?"], [*args, since]
        span, span_args, order = _span("t.position", before, after)
        rows = self._db().execute(  # (the inner query walks the index in order: a delete touches many versions)
            f"SELECT {COMMIT_COLUMNS} FROM commits c WHERE c.position IN (SELECT DISTINCT t.position FROM touches t "
            f"WHERE {' AND '.join([*where, *span])} ORDER BY t.position {order} LIMIT ?) ORDER BY c.position DESC",
            [*args, *span_args, limit]).fetchall()
        return [_commit(r) for r in rows]

    def trail(self, workspace: str, *, repository: str | set[str] | None = None, readable: set[str] | None = None,
              administered: set[str] | None = None, limit: int = 50, before: int | None = None,
              after: int | None = None) -> list[Filed]:
        """A workspace's (or one repository's: the slugs it has gone by) commits, newest first: of
        them, those concerning a package of a ``readable`` repository, and an ``administered``
        repository's own (None: all). Paged as `package` is. What a caller may see is read per
        repository it may see (an index range each, merged), so a page costs its rows whatever the
        caller may not see around them."""
        slugs = None if repository is None else {repository} if isinstance(repository, str) else repository
        if readable is None:
            filings = [("t.workspace=?", [workspace])] if slugs is None else \
                [("t.workspace=? AND t.repository=?", [workspace, r]) for r in sorted(slugs)]
        else:
            filings = [("t.workspace=? AND t.repository=? AND t.kind=?", [workspace, r, kind])
                       for r, kind in [*((r, "package") for r in sorted(readable)),
                                       *((r, "repository") for r in sorted(administered or ()))]
                       if slugs is None or r in slugs]
        span, span_args, order = _span("t.position", before, after)
        db, found = self._db(), []
        for where, args in filings:
            found += [p for (p,) in db.execute(f"SELECT t.position FROM trail t WHERE {' AND '.join([where, *span])} "
                                               f"ORDER BY t.position {order} LIMIT ?", [*args, *span_args, limit])]
        chosen = sorted(found, reverse=order == "DESC")[:limit]
        rows = db.execute(f"SELECT {FILED_COLUMNS} FROM trail t JOIN commits c ON c.position = t.position WHERE "
                          f"t.position IN ({','.join('?' * len(chosen))}) ORDER BY t.position DESC", chosen).fetchall()
        return [Filed(_commit(r), *r[7:]) for r in rows]

    def completions(self, prefix: str, limit: int = 2) -> list[str]:
        """The ids of indexed commits that start with ``prefix`` (lowercase hex), up to ``limit``."""
        rows = self._db().execute("SELECT id FROM commits WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                                  (prefix, prefix + "g", limit)).fetchall()  # ('g' sorts after every hex digit)
        return [row[0] for row in rows]

    def filed(self, commit_id: str) -> Filed | None:
        """How the trail files a commit, if it has yet."""
        row = self._db().execute(
            f"SELECT {FILED_COLUMNS} FROM commits c JOIN trail t ON t.position = c.position WHERE c.id = ?",
            (commit_id,)).fetchone()
        return Filed(_commit(row), *row[7:]) if row else None


def _span(column: str, before: int | None, after: int | None) -> tuple[list[str], list[int], str]:
    """A page's conditions on ``column``, their arguments, and the order to read it in: newest first
    (older than ``before``), or oldest first (newer than ``after`` alone)."""
    span, args = [], []
    if before is not None:
        span, args = [f"{column}<?"], [before]
    if after is not None:
        span, args = [*span, f"{column}>?"], [*args, after]
    return span, args, "ASC" if after is not None and before is None else "DESC"


def _commit(row) -> Commit:
    return Commit(id=row[1], time=datetime.fromtimestamp(row[2], UTC), author_name=row[3], author_email=row[4],
                  summary=row[5], trailers=tuple(tuple(t) for t in json.loads(row[6])))


def _insert(db: sqlite3.Connection, position: int, commit: Commit, *, filed: bool) -> None:
    """Index one commit; ``filed``: in the trail too (which then stands where the commits do)."""
    _insert_many(db, position, [commit], filed=filed)


def _insert_many(db: sqlite3.Connection, position: int, commits: list[Commit], *, filed: bool) -> None:
    """Index commits from ``position`` on, in order: one statement per table (a catch-up's step)."""
    rows, touches, trail, links = [], [], [], _Links(db)
    for at, commit in enumerate(commits, position):
        rows.append((at, commit.id, int(commit.time.timestamp()), commit.author_name, commit.author_email,
                     commit.summary, json.dumps(commit.trailers)))
        workspace, package = commit.trailer(T.WORKSPACE), commit.trailer(T.PACKAGE)
        if workspace and package:
            touches += [(workspace, package, v, at) for v in commit.trailers_named(T.VERSION) or [""]]
        links.derive(at, commit)
        if filed:
            trail.append(_filing(links, at, commit))
    db.executemany("INSERT INTO commits VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT OR IGNORE INTO touches VALUES (?, ?, ?, ?)", touches)
    db.executemany("INSERT INTO trail VALUES (?, ?, ?, ?, ?)", trail)
    links.save()


class _Links:
    """Where each package of a name begins (and its repository), and which commits deleted which
    files: derived from a step's commits in order, written once per step."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.latest: dict[tuple[str, str], tuple[int, str]] = {}  # (workspace, package) -> (created at, repository)
        self.created: list[tuple[str, str, int, str]] = []  # rows of `links`
        self.deleted: list[tuple[str, str, str, int]] = []  # rows of `deletions`

    def derive(self, position: int, commit: Commit) -> None:
        ws, package = commit.trailer(T.WORKSPACE), commit.trailer(T.PACKAGE)
        if not (ws and package):
            return
        done = action(commit)
        repository = commit.trailer(T.REPOSITORY)
        if creates_package(commit) and repository:
            self.latest[(ws, package)] = (position, repository)
            self.created.append((ws, package, position, repository))
        elif done in (Action.DELETE_VERSION, Action.DELETE_PACKAGE):
            self.deleted += [(ws, package, sha, position) for sha in commit.trailers_named(T.SHA256)]

    def repository(self, ws: str, package: str, position: int) -> str | None:
        """The repository of the package of this name at ``position`` (one this step made, or an earlier one)."""
        made = self.latest.get((ws, package))
        if made is not None and made[0] <= position:
            return made[1]
        row = self.db.execute("SELECT repository FROM links WHERE workspace=? AND package=? AND created<=? "
                              "ORDER BY created DESC LIMIT 1", (ws, package, position)).fetchone()
        return row[0] if row else None

    def save(self) -> None:
        self.db.executemany("INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?)", self.created)
        self.db.executemany("INSERT OR IGNORE INTO deletions VALUES (?, ?, ?, ?)", self.deleted)


def _file(db: sqlite3.Connection, position: int, commit: Commit) -> None:
    db.execute("INSERT INTO trail VALUES (?, ?, ?, ?, ?)", _filing(_Links(db), position, commit))


def _filing(links: _Links, position: int, commit: Commit) -> tuple:
    """A commit's row in the trail: a package's commits that don't name its repository are filed
    under the one that package (not an earlier one of the same name) was linked to when created."""
    ws, package, repository = commit.trailer(T.WORKSPACE), commit.trailer(T.PACKAGE), commit.trailer(T.REPOSITORY)
    if ws and package:
        kind = "package"
        if not repository:
            repository = links.repository(ws, package, position)
    else:
        kind = "repository" if ws and repository else "workspace"
    return position, ws, kind, repository, package


def _derive_older(db: sqlite3.Connection) -> None:
    """Fill `links` and `deletions` from an older index's own commits: only creations and deletions
    can add to them (a prefilter in SQL; `action` decides), so this is one quick pass."""
    links = _Links(db)
    for row in db.execute(f"SELECT {COMMIT_COLUMNS} FROM commits c WHERE c.trailers LIKE '%create-package%' OR "
                          "c.trailers LIKE '%delete-%' OR c.summary LIKE 'create package %' OR "
                          "c.summary LIKE 'delete %' ORDER BY c.position").fetchall():
        links.derive(row[0], _commit(row))
    links.save()


def first_parents(repo: pygit2.Repository, head: str) -> Iterator[pygit2.Commit]:
    """The commits of main from ``head`` back, one at a time (a topological walk would read them
    all before yielding the first)."""
    commit = repo[head].peel(pygit2.Commit)
    while True:
        yield commit
        if not commit.parents:
            return
        commit = commit.parents[0]


def _file_older(db: sqlite3.Connection, limit: int) -> int:
    """File up to ``limit`` commits the index held before the trail did (an older release's index)."""
    rows = db.execute(f"SELECT {COMMIT_COLUMNS} FROM commits c WHERE c.position > "
                      "(SELECT COALESCE(MAX(position), 0) FROM trail) ORDER BY c.position LIMIT ?", (limit,)).fetchall()
    for row in rows:
        _file(db, row[0], _commit(row))
    return len(rows)


def _statements(script: str):
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # (a ';' in a comment doesn't end one)
            if statement.strip(" \n;"):
                yield statement
            statement = ""


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
