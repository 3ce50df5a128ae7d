"""Workspaces, projects, repositories and people: the verbs' own rules, whoever calls them."""

from __future__ import annotations

import pytest

from registry import identity, layout, model, operations
from registry.errors import Conflict, Denied, NotFound
from tests.support.world import WS

UUID = "{0aaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee}"


def test_a_workspace_admin_binds_uuids_and_no_one_else_does(world):
    admin, owner = world.principal("wsadmin@acme.test"), world.principal("owner@acme.test")
    head = world.reg.ledger.head()
    with pytest.raises(Denied, match="admin permission on workspace acme"):
        operations.set_uuid(world.reg, owner, "api", WS, UUID)  # (a repository admin is not a workspace admin)
    with pytest.raises(Denied):
        operations.set_uuid(world.reg, owner, "api", WS, UUID, repository="utils")
    assert world.reg.ledger.head() == head
    operations.set_uuid(world.reg, admin, "api", WS, UUID, repository="utils")
    assert world.reg.snapshot().get(layout.repository(WS, "utils"), model.Repository).uuid == UUID
    with pytest.raises(Conflict, match="already belongs to repository acme/utils"):
        operations.set_uuid(world.reg, admin, "api", WS, UUID, repository="secret")
    operations.set_uuid(world.reg, identity.operator(), "cli", WS, UUID)
    assert world.reg.snapshot().get(layout.workspace(WS), model.Workspace).uuid == UUID


@pytest.mark.parametrize("verb", [
    lambda reg, who, ws: operations.create_project(reg, who, "api", ws, "NEW"),
    lambda reg, who, ws: operations.create_repository(reg, who, "api", ws, "new", "CORE"),
    lambda reg, who, ws: operations.grant(reg, who, "api", ws, "dev@acme.test", "admin"),
    lambda reg, who, ws: operations.set_uuid(reg, who, "api", ws, "{00000000-0000-0000-0000-000000000042}"),
    lambda reg, who, ws: operations.rename_workspace(reg, who, "api", ws, "Other"),
    lambda reg, who, ws: operations.set_trust(reg, who, "api", ws, "https://issuer.example/oidc"),
])
def test_a_workspace_one_does_not_see_answers_as_a_missing_one(world, verb):
    """Administering a workspace the caller sees nothing of: the same NotFound as for one that doesn't
    exist (not a refusal, which would say that it does)."""
    reg, op = world.reg, identity.operator()
    operations.create_workspace(reg, op, "cli", "vault")
    operations.create_project(reg, op, "cli", "vault", "CORE")
    head, stranger = reg.ledger.head(), world.principal("outsider@acme.test")
    answers = []
    for ws in ("vault", "nowhere"):
        with pytest.raises(NotFound) as caught:
            verb(reg, stranger, ws)
        answers.append(caught.value.message.replace(ws, "WS"))
    assert answers[0] == answers[1] and reg.ledger.head() == head
    with pytest.raises(Denied):  # (one they see, acme: a refusal that says what it takes)
        verb(reg, stranger, WS)
