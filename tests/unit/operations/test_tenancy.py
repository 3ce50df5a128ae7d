"""Workspaces, projects, repositories and people: the verbs' own rules, whoever calls them."""

from __future__ import annotations

import pytest

from registry import identity, layout, model, operations
from registry.errors import Conflict, Denied
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
