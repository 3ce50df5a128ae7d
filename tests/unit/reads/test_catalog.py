"""The catalog's single things and lists, as each caller may see them."""

from __future__ import annotations

from registry import identity, operations
from registry.identity import ANONYMOUS
from registry.reads import Reader
from tests.support.world import WS


def test_projects_are_all_to_the_workspace_admins_and_the_readable_ones_to_others(world):
    operations.create_project(world.reg, identity.operator(), "cli", WS, "EMPTY")  # (no repository yet)
    keys = {who: [p.key for p in Reader(world.reg, world.principal(who)).projects(WS)]
            for who in ("wsadmin@acme.test", "reader@acme.test", "outsider@acme.test")}
    assert keys == {"wsadmin@acme.test": ["CORE", "EMPTY", "LABS"], "reader@acme.test": ["CORE", "LABS"],
                    "outsider@acme.test": ["LABS"]}  # (LABS: its public repository is read by anyone)
    operations.create_workspace(world.reg, identity.operator(), "cli", "hidden")
    operations.create_project(world.reg, identity.operator(), "cli", "hidden", "SECRET")
    assert Reader(world.reg, world.principal("wsadmin@acme.test")).projects("hidden") == []
    assert Reader(world.reg, ANONYMOUS).projects("nowhere") == []
