"""What a role allows: here, what a pipeline holds on the repositories of its workspace."""

from __future__ import annotations

import pytest

from registry import identity, operations
from registry.identity import Principal
from registry.permissions import role_on
from tests.support.world import WS

OP = identity.operator()


def pipeline(repository: str, ws: str = WS, scope="write") -> Principal:
    return Principal(kind="pipeline", scope=scope, workspace=ws, repository=repository)


@pytest.fixture
def granted(world):
    operations.create_repository(world.reg, OP, "cli", WS, "app", "CORE")
    operations.create_repository(world.reg, OP, "cli", WS, "tool", "CORE")
    operations.create_workspace(world.reg, OP, "cli", "rival")
    operations.create_project(world.reg, OP, "cli", "rival", "CORE")
    operations.create_repository(world.reg, OP, "cli", "rival", "app", "CORE")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "secret", "app")
    return world


def test_a_pipeline_writes_its_own_reads_what_names_it_and_nothing_else(granted):
    snap = granted.reg.snapshot()
    assert role_on(snap, pipeline("secret"), WS, "secret") == "write"
    assert role_on(snap, pipeline("app"), WS, "secret") == "read"
    assert role_on(snap, pipeline("app", scope="read"), WS, "secret") == "read"
    assert role_on(snap, pipeline("tool"), WS, "secret") is None
    assert role_on(snap, pipeline("app", ws="rival"), WS, "secret") is None  # (the same slug, another workspace)
    assert role_on(snap, pipeline("app"), WS, "utils") is None
    assert role_on(snap, pipeline("app"), WS, "public-lib") == "read"  # (anyone's)


def test_every_pipeline_is_every_pipeline_of_the_workspace_that_still_has_its_repository(granted):
    operations.grant_pipelines(granted.reg, OP, "cli", WS, "utils", "*")
    snap = granted.reg.snapshot()
    assert role_on(snap, pipeline("tool"), WS, "utils") == "read"
    assert role_on(snap, pipeline("app", ws="rival"), WS, "utils") is None
    assert role_on(snap, pipeline("gone"), WS, "utils") is None  # (a minted token outliving its repository)


def test_a_pipeline_grant_gives_people_nothing(granted):
    snap = granted.reg.snapshot()
    assert role_on(snap, granted.principal("outsider@acme.test"), WS, "secret") is None
