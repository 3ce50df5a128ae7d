"""Who sees which grants and people: the operator everything, a workspace admin their workspace's,
a repository admin their repository's, a person themself; everyone else nothing."""

from __future__ import annotations

import pytest

from registry import identity, operations
from registry.errors import Denied, NotFound, Unauthorized
from registry.identity import ANONYMOUS
from registry.reads import Reader
from tests.support.world import WS

OP = identity.operator()
ADMIN, OWNER, DEV, OUTSIDER = "wsadmin@acme.test", "owner@acme.test", "dev@acme.test", "outsider@acme.test"


def _as(world, who):
    return Reader(world.reg, OP if who == "operator" else world.principal(who))


def _grants(found):
    return [(g.shown, g.user, g.role) for g in found]


def test_a_workspace_admin_lists_every_grant_and_filters_them(world):
    read = _as(world, ADMIN)
    assert _grants(read.grants(WS)) == [
        ("acme", ADMIN, "admin"), ("acme --project CORE", "projreader@acme.test", "read"),
        ("acme/utils", DEV, "write"), ("acme/utils", OWNER, "admin"), ("acme/utils", "reader@acme.test", "read")]
    assert [g.user for g in read.grants(WS, project="core")] == ["projreader@acme.test", DEV, OWNER,
                                                                 "reader@acme.test"]
    assert read.grants(WS, project="LABS") == []
    assert _grants(read.grants(WS, user=DEV)) == [("acme/utils", DEV, "write")]
    assert len(read.grants(WS, repository="utils")) == 3
    with pytest.raises(NotFound, match="Project NOPE"):
        read.grants(WS, project="nope")


def test_a_repository_admin_sees_their_repositories_grants_and_no_others(world):
    assert len(_as(world, OWNER).grants(WS, repository="utils")) == 3
    with pytest.raises(Denied, match="admin permission on workspace acme"):
        _as(world, OWNER).grants(WS)
    for who in (DEV, "reader@acme.test"):
        with pytest.raises(Denied, match="admin permission on it"):
            _as(world, who).grants(WS, repository="utils")
    with pytest.raises(NotFound):  # (a repository they can't read reads as missing)
        _as(world, OWNER).grants(WS, repository="secret")
    with pytest.raises(Unauthorized):
        Reader(world.reg).grants(WS)


def test_members_are_the_people_with_a_grant_there(world):
    members = _as(world, ADMIN).members(WS)
    assert [(m.user.email, [g.shown for g in m.grants]) for m in members] == [
        (DEV, ["acme/utils"]), (OWNER, ["acme/utils"]), ("projreader@acme.test", ["acme --project CORE"]),
        ("reader@acme.test", ["acme/utils"]), (ADMIN, ["acme"])]
    for who in (OWNER, DEV, OUTSIDER):
        with pytest.raises((Denied, NotFound)):
            _as(world, who).members(WS)


def test_users_the_operator_sees_all_a_workspace_admin_their_members(world):
    reg = world.reg
    operations.create_workspace(reg, OP, "cli", "other")
    operations.create_user(reg, OP, "cli", "elsewhere@other.test")
    operations.grant(reg, OP, "cli", "other", "elsewhere@other.test", "admin")
    operations.grant(reg, OP, "cli", "other", DEV, "admin")
    everyone = _as(world, "operator").people()
    assert len(everyone) == 7 and {p.user.email: p.tokens for p in everyone}[DEV] == 2
    seen = _as(world, ADMIN).people()
    assert OUTSIDER not in [p.user.email for p in seen] and "elsewhere@other.test" not in [p.user.email for p in seen]
    assert {p.user.email: [g.shown for g in p.grants] for p in seen}[DEV] == ["acme/utils"]  # (not their other)
    assert all(p.tokens is None for p in seen)
    with pytest.raises(Denied, match="may not list users"):
        _as(world, OWNER).people()


def test_one_user_is_shown_to_themself_the_operator_and_the_admins_of_their_workspaces(world):
    reg = world.reg
    operations.create_workspace(reg, OP, "cli", "other", admins=[DEV])
    mine = _as(world, DEV).person(DEV)
    assert [g.shown for g in mine.grants] == ["acme/utils", "other"] and mine.tokens == 2
    assert [g.shown for g in _as(world, "operator").person(DEV).grants] == ["acme/utils", "other"]
    by_admin = _as(world, ADMIN).person(DEV)
    assert [g.shown for g in by_admin.grants] == ["acme/utils"] and by_admin.tokens is None
    for who, email in ((OWNER, DEV), (DEV, OWNER), (ADMIN, OUTSIDER)):
        with pytest.raises(NotFound, match="There is no user"):
            _as(world, who).person(email)


def test_projects_and_repositories_as_each_caller_sees_them(world):
    assert [(p.key, [r.slug for r in repos]) for p, repos in _as(world, ADMIN).projects(WS)] == [
        ("CORE", ["utils"]), ("LABS", ["public-lib", "secret"])]
    assert [(p.key, [r.slug for r in repos]) for p, repos in _as(world, DEV).projects(WS)] == [
        ("CORE", ["utils"]), ("LABS", ["public-lib"])]


def test_projects_are_all_to_the_workspace_admins_and_the_readable_ones_to_others(world):
    operations.create_project(world.reg, identity.operator(), "cli", WS, "EMPTY")  # (no repository yet)
    keys = {who: [p.key for p, _ in Reader(world.reg, world.principal(who)).projects(WS)]
            for who in ("wsadmin@acme.test", "reader@acme.test", "outsider@acme.test")}
    assert keys == {"wsadmin@acme.test": ["CORE", "EMPTY", "LABS"], "reader@acme.test": ["CORE", "LABS"],
                    "outsider@acme.test": ["LABS"]}  # (LABS: its public repository is read by anyone)
    operations.create_workspace(world.reg, identity.operator(), "cli", "hidden")
    operations.create_project(world.reg, identity.operator(), "cli", "hidden", "SECRET")
    for who, ws in ((world.principal("wsadmin@acme.test"), "hidden"), (ANONYMOUS, "nowhere")):
        with pytest.raises((NotFound, Unauthorized)):  # (as for a workspace that doesn't exist)
            Reader(world.reg, who).projects(ws)
