"""People: a display name, an account switched off and on (every credential refused at once, its
grants and history kept), and a person taken out of a workspace in one commit."""

from __future__ import annotations

import pytest

from registry import identity, layout, model, operations
from registry.audit import Action, T, action
from registry.errors import Conflict, Denied, Forbidden, Invalid, NotFound
from registry.ledger import Commit
from registry.reads import Reader
from tests.support.world import WS

OP = identity.operator()
DEV, ADMIN, OWNER = "dev@acme.test", "wsadmin@acme.test", "owner@acme.test"


def _last(world) -> Commit:
    return world.reg.ledger.commit(world.reg.ledger.head())


def test_disabling_refuses_every_credential_at_once_and_enabling_accepts_them_again(world):
    reg = world.reg
    operations.create_signin_link(reg, OP, "cli", DEV)
    link_secret, _ = operations.create_signin_link(reg, OP, "cli", DEV)
    started = operations.start_session(reg, world.principal(DEV))
    operations.disable_user(reg, OP, "cli", DEV, "left the\nteam")
    commit = _last(world)
    assert action(commit) is Action.DISABLE_USER and commit.trailer(T.USER) == DEV
    snap = reg.snapshot()
    user = snap.get(layout.user(DEV), model.User)
    assert user.disabled.by == OP.email and user.disabled_reason == "left the team"
    for secret in (world.tokens[DEV], world.tokens["dev-readonly"]):
        with pytest.raises(Forbidden, match=f"account {DEV} is disabled .*left the team.*registry user enable {DEV}"):
            identity.check_token(snap, DEV, secret)
    reader = Reader(reg)
    assert reader.session_principal(DEV, started.session.id, 2e9) is None
    with pytest.raises(Forbidden, match="is disabled"):
        reader.signin_link(link_secret)
    head = reg.ledger.head()
    with pytest.raises(Forbidden, match="is disabled"):
        operations.use_signin_link(reg, link_secret)
    for refused in (lambda: operations.create_token(reg, OP, "cli", DEV),
                    lambda: operations.create_signin_link(reg, OP, "cli", DEV),
                    lambda: operations.disable_user(reg, OP, "cli", DEV, "again")):
        with pytest.raises(Conflict, match="disabled"):
            refused()
    assert reg.ledger.head() == head
    # the grants stay (inert), and come back to life with the account
    assert snap.get(layout.repository(WS, "utils"), model.Repository).grants[DEV] == "write"
    operations.enable_user(reg, OP, "cli", DEV)
    assert action(_last(world)) is Action.ENABLE_USER
    assert identity.check_token(reg.snapshot(), DEV, world.tokens[DEV]).email == DEV
    assert Reader(reg).session_principal(DEV, started.session.id, 2e9) is not None
    assert operations.use_signin_link(reg, link_secret).session.user == DEV
    with pytest.raises(Conflict, match="not disabled"):
        operations.enable_user(reg, OP, "cli", DEV)


@pytest.mark.parametrize("who", [ADMIN, DEV, OWNER])
def test_only_the_operator_disables_or_enables(world, who):
    head = world.reg.ledger.head()
    with pytest.raises(Forbidden, match="Only the registry operator"):
        operations.disable_user(world.reg, world.principal(who), "api", DEV, "no")
    with pytest.raises(Forbidden, match="Only the registry operator"):
        operations.enable_user(world.reg, world.principal(who), "api", DEV)
    assert world.reg.ledger.head() == head


@pytest.mark.parametrize("reason", ["", "  ", "x" * 600, "a\x00b"])
def test_a_disable_needs_a_one_line_reason(world, reason):
    head = world.reg.ledger.head()
    with pytest.raises(Invalid):
        operations.disable_user(world.reg, OP, "cli", DEV, reason)
    assert world.reg.ledger.head() == head


def test_a_person_renames_themself_and_the_operator_anyone(world):
    reg = world.reg
    operations.rename_user(reg, world.principal(DEV), "api", DEV, "Dev Eloper")
    assert action(_last(world)) is Action.RENAME_USER
    operations.rename_user(reg, OP, "cli", OWNER, "Owen Er")
    snap = reg.snapshot()
    assert snap.get(layout.user(DEV), model.User).name == "Dev Eloper"
    assert identity.check_token(snap, OWNER, world.tokens[OWNER]).name == "Owen Er"
    head = reg.ledger.head()
    with pytest.raises(Forbidden, match="themself, or the registry's operator"):
        operations.rename_user(reg, world.principal(ADMIN), "api", DEV, "Someone")
    with pytest.raises(Conflict, match="already called"):
        operations.rename_user(reg, OP, "cli", DEV, "Dev Eloper")
    for bad in ("", "a <b>", "two\nlines", "x" * 300):
        with pytest.raises(Invalid):
            operations.rename_user(reg, OP, "cli", DEV, bad)
    with pytest.raises(NotFound, match="registry user create"):
        operations.rename_user(reg, OP, "cli", "nobody@acme.test", "No One")
    assert reg.ledger.head() == head


def test_removing_a_member_takes_every_grant_there_in_one_commit(world):
    reg = world.reg
    operations.grant(reg, OP, "cli", WS, DEV, "read", project="LABS")
    operations.grant(reg, OP, "cli", WS, DEV, "admin")
    removed = operations.remove_member(reg, world.principal(ADMIN), "api", WS, DEV)
    assert sorted(g.shown for g in removed) == ["acme", "acme --project LABS", "acme/utils"]
    commit = _last(world)
    assert action(commit) is Action.REMOVE_MEMBER and commit.trailer(T.USER) == DEV
    snap = reg.snapshot()
    assert DEV not in snap.get(layout.workspace(WS), model.Workspace).admins
    assert DEV not in snap.get(layout.project(WS, "LABS"), model.Project).grants
    assert DEV not in snap.get(layout.repository(WS, "utils"), model.Repository).grants
    assert snap.get(layout.repository(WS, "utils"), model.Repository).grants[OWNER] == "admin"  # (others' stay)
    assert snap.exists(layout.user(DEV))  # (the person stays: only their grants here go)
    head = reg.ledger.head()
    with pytest.raises(NotFound, match="holds no grant in workspace acme"):
        operations.remove_member(reg, OP, "cli", WS, DEV)
    for who in (OWNER, "reader@acme.test", "outsider@acme.test"):
        with pytest.raises(Denied, match="admin permission on workspace acme"):
            operations.remove_member(reg, world.principal(who), "api", WS, "projreader@acme.test")
    assert reg.ledger.head() == head
