"""The history index's audit trail: written by whoever commits (no read catches it up), filled in
by the background catch-up for an index from before it, and rebuilt from git like the rest."""

from __future__ import annotations

import sqlite3

import pytest

from registry import datadir, identity, operations
from registry.history import VERSION, History
from registry.ledger import Ledger
from tests.support.world import WS

OP, CH = identity.operator(), "cli"


def filed(history: History) -> list[tuple[str, str, str | None, str | None]]:
    return [(f.commit.id, f.kind, f.repository, f.package) for f in history.trail(WS, limit=10_000)]


def test_the_trail_is_written_at_commit_time(world, monkeypatch):
    reg = world.reg
    monkeypatch.setattr(History, "catch_up", lambda *a, **k: pytest.fail("a commit's own trail needs no catch-up"))
    operations.delete_package(reg, OP, CH, WS, "secret-pkg")
    operations.create_package(reg, OP, CH, WS, "secret-pkg", "public-lib")  # (the same name, linked elsewhere)
    operations.delete_package(reg, OP, CH, WS, "secret-pkg")
    newest = reg.history.trail(WS, limit=4)
    assert [(f.commit.summary.split(" (")[0], f.kind, f.repository) for f in newest] == [
        ("delete package secret-pkg", "package", "public-lib"),  # (no Repository trailer: filed by its link then)
        ("create package secret-pkg in acme, linked to acme/public-lib", "package", "public-lib"),
        ("delete package secret-pkg", "package", "secret"),
        ("create package secret-pkg in acme, linked to acme/secret", "package", "secret")]
    assert newest[0].commit.id == reg.ledger.head() and not reg.history.behind() and not reg.history.trail_behind()
    assert reg.history.filed(newest[2].commit.id) == newest[2]
    assert reg.history.trail(WS, repository="public-lib", readable={"public-lib"}, administered=set(),
                             limit=2)[0] == newest[0]


def test_an_index_from_before_the_trail_keeps_its_rows_and_fills_the_trail_in_the_background(world):
    reg = world.reg
    expected = filed(reg.history)
    reg.history.close()
    with sqlite3.connect(reg.history.path) as db:  # what an older release left: commits and touches only
        db.execute("DROP TABLE trail")
        db.execute("DROP TABLE links")
        db.execute("PRAGMA user_version = 0")
    stale = reg.settings.cache_path / "ui-trail.sqlite3"  # (the UI's own trail, from before)
    stale.write_bytes(b"")
    assert reg.history.package(WS, "acme-utils")  # (the package history answers throughout)
    assert reg.history.trail(WS) == [] and reg.history.behind() and reg.history.trail_behind()
    assert not stale.exists()
    operations.delete_package(reg, OP, CH, WS, "secret-pkg")  # indexed now, filed by the catch-up it starts
    reg.catch_up_history()  # (waits for that one)
    head = reg.ledger.head()
    assert filed(reg.history) == [(head, "package", "secret", "secret-pkg"), *expected]
    assert not reg.history.behind() and not reg.history.trail_behind()
    with sqlite3.connect(reg.history.path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    rebuilt = History(reg.ledger, reg.settings.cache_path / "rebuilt.sqlite3")  # the same, from git
    while rebuilt.catch_up(limit=5):
        pass
    assert filed(rebuilt) == filed(reg.history)


def test_an_index_from_a_newer_release_is_rebuilt(world):
    reg = world.reg
    expected = filed(reg.history)
    reg.history.close()
    with sqlite3.connect(reg.history.path) as db:
        db.execute("PRAGMA user_version = 99")
    assert reg.history.trail(WS) == [] and reg.history.serial() == 0
    reg.catch_up_history()
    assert filed(reg.history) == expected


def test_package_history_is_indexed_and_rebuilt_from_git(reg):
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", "acme")
    operations.create_project(reg, op, "cli", "acme", "CORE")
    operations.create_repository(reg, op, "cli", "acme", "r", "CORE")
    operations.create_package(reg, op, "cli", "acme", "one", "r")
    operations.create_package(reg, op, "cli", "acme", "two", "r")
    history = reg.history
    assert [e.summary for e in history.package("acme", "one")] == ["create package one in acme, linked to acme/r"]
    # the index is derived: throw it away and it is rebuilt from the commits, in bounded steps
    history.close()
    history.path.unlink()
    assert history.package("acme", "two") == []  # (a read never walks the ledger: it answers from the index)
    reg.catch_up_history()
    assert [e.summary for e in history.package("acme", "two")] == ["create package two in acme, linked to acme/r"]
    # a commit made behind the index's back (another process, a crash) is caught up off the request path
    other = datadir.Registry(reg.settings, Ledger.open(reg.ledger.path), reg.blobs)
    other.history = type(history)(other.ledger, reg.settings.cache_path / "elsewhere.sqlite3")
    operations.delete_package(other, op, "cli", "acme", "one")
    assert history.behind()
    reg.catch_up_history()
    assert [e.summary.split(" (")[0] for e in history.package("acme", "one")] == [
        "delete package one", "create package one in acme, linked to acme/r"]


def test_the_history_catch_up_resumes_one_walk_and_a_failed_step_skips_nothing(reg, monkeypatch):
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", "acme")
    operations.create_project(reg, op, "cli", "acme", "CORE")
    operations.create_repository(reg, op, "cli", "acme", "r", "CORE")
    for i in range(7):
        operations.create_package(reg, op, "cli", "acme", f"p{i}", "r")
    history = reg.history
    history.close()
    history.path.unlink()
    assert history.catch_up(limit=3) == 3 and history.catch_up(limit=3) == 3  # (the second resumes the first's walk)
    real = type(history).__module__ + "._insert_many"
    calls = []

    def failing(db, position, commits, **_):
        calls.append(position)
        raise OSError("disk full")

    monkeypatch.setattr(real, failing)
    with pytest.raises(OSError):
        history.catch_up(limit=3)
    monkeypatch.undo()
    while history.catch_up(limit=3):
        pass
    ids = [c.id for c in reg.ledger.walk()][::-1]
    assert history.serial() == len(ids)
    assert [history.position(c) for c in ids] == list(range(1, len(ids) + 1))
