"""The read layer's answers for the web UI: the audit trail and commits as each caller may see
them, and the credentials a browser signs in with. In-process, without HTTP."""

from __future__ import annotations

import threading

import pytest

from registry import datadir, identity, operations
from registry.errors import Forbidden, NotFound, Unauthorized
from registry.identity import ANONYMOUS
from registry.reads import Reader
from tests.support.world import WS

OP, CH = identity.operator(), "cli"


def seen(world, who) -> set[str]:
    return {f.commit.summary.split(" in acme")[0].split(" (")[0] for f in Reader(world.reg, who).trail(WS, limit=1000)}


def test_the_trail_shows_each_caller_what_they_may_read(world):
    everything = seen(world, OP)
    assert {"create workspace acme", "create project acme/CORE", "create package secret-pkg"} <= everything
    public = {"create package public-pkg"}
    assert seen(world, ANONYMOUS) == seen(world, world.principal("outsider@acme.test")) == public
    assert seen(world, world.principal("reader@acme.test")) == public | {"create package acme-utils"}
    owner = seen(world, world.principal("owner@acme.test"))  # an admin of acme/utils: its own commits too
    assert owner == public | {"create package acme-utils", "create repository acme/utils in project CORE",
                              "grant admin on acme/utils to owner@acme.test",
                              "grant write on acme/utils to dev@acme.test",
                              "grant read on acme/utils to reader@acme.test"}
    assert seen(world, world.principal("wsadmin@acme.test")) == everything
    read = Reader(world.reg, world.principal("reader@acme.test"))
    assert read.trail(WS, "public-lib")[0].package == "public-pkg"
    with pytest.raises(NotFound):
        read.trail(WS, "secret")  # (a repository they may not read: as missing)
    with pytest.raises(Unauthorized):
        Reader(world.reg).trail(WS, "secret")


def test_a_hidden_commit_answers_as_a_missing_one(world):
    secret = world.reg.history.trail(WS, repository="secret", limit=1)[0].commit.id
    reader = Reader(world.reg, world.principal("reader@acme.test"))
    with pytest.raises(NotFound) as hidden:
        reader.commit_changes(WS, secret)
    with pytest.raises(NotFound) as missing:
        reader.commit_changes(WS, "0" * 40)
    assert hidden.value.message.replace(secret, "X") == missing.value.message.replace("0" * 40, "X")
    with pytest.raises(Unauthorized):
        Reader(world.reg).commit_changes(WS, secret)
    found = Reader(world.reg, world.principal("wsadmin@acme.test")).commit_changes(WS, secret.upper())
    assert found.filed.package == "secret-pkg" and found.parent is not None
    assert [(r.path.endswith("package.json"), r.old) for r in found.records] == [(True, None)]


def test_sign_in_credentials_are_checked_by_the_read_layer(world):
    read = Reader(world.reg)
    who = read.token_principal("dev@acme.test", world.tokens["dev@acme.test"])
    session = operations.start_session(world.reg, who).session
    read = Reader(world.reg)
    found = read.session_principal(who.email, session.id, 2e9)
    assert who.kind == "user" and found.email == "dev@acme.test" and found.session == session.id
    assert found.token_id == who.token_id and found.scope == "write"
    assert read.session_principal("reader@acme.test", session.id, 2e9) is None  # (not that user's session)
    assert read.session_principal(who.email, "../" + session.id, 2e9) is None
    with pytest.raises(Unauthorized, match="Invalid credentials"):
        read.token_principal("dev@acme.test", "rgy_nothing")
    witness, _ = operations.create_token(world.reg, OP, CH, "dev@acme.test", "witness")
    with pytest.raises(Forbidden, match="read or write scope"):  # (witnesses never get a session)
        operations.start_session(world.reg, identity.check_token(world.reg.snapshot(), "__token__", witness))
    operations.revoke_token(world.reg, OP, CH, "dev@acme.test", who.token_id)
    read = Reader(world.reg)
    assert read.session_principal(who.email, session.id, 2e9) is None  # (its token revoked: over)
    with pytest.raises(NotFound, match="does not exist"):
        read.signin_link("rgl_nothing")
    secret, _ = operations.create_signin_link(world.reg, OP, CH, "dev@acme.test")
    assert Reader(world.reg).signin_link(secret).user == "dev@acme.test"


def test_a_page_shows_what_the_index_has_and_never_catches_it_up(world, monkeypatch):
    from registry.history import History
    from registry.ledger import Ledger
    from registry.web.ui import data

    reg, admin = world.reg, world.principal("wsadmin@acme.test")
    elsewhere = datadir.Registry(reg.settings, Ledger.open(reg.ledger.path), reg.blobs)  # (another process, say)
    elsewhere.history = History(elsewhere.ledger, reg.settings.cache_path / "elsewhere.sqlite3")
    operations.delete_package(elsewhere, OP, CH, WS, "secret-pkg")
    real_catch_up = History.catch_up
    caught_up: list[str] = []  # (elsewhere's own index, new and behind, catches up in a thread of its own)
    monkeypatch.setattr(History, "catch_up", lambda index, *a, **k: (
        caught_up.append(threading.current_thread().name) if index is reg.history else real_catch_up(index)))
    page = data.workspace_history(reg, admin, WS)
    assert page.catching_up and not page.rows[0].summary.startswith("delete package")
    with pytest.raises(NotFound, match="catching up"):
        Reader(reg, admin).commit_changes(WS, reg.ledger.head())
    assert not caught_up, f"a read caught the index up (in {caught_up})"
    monkeypatch.setattr(History, "catch_up", real_catch_up)
    reg.catch_up_history()
    page = data.workspace_history(reg, admin, WS)
    assert not page.catching_up and page.rows[0].summary.startswith("delete package secret-pkg")
