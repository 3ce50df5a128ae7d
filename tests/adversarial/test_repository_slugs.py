"""A repository's slug, once used, never names another repository. The audit trail files a package's
commits under the slug its repository had when the package was created; so a renamed repository's
readers see its whole history (under the old slug and the new), and a repository made later under a
former slug (renamed away or deleted) would show its readers a private history: that is refused."""

from __future__ import annotations

import pytest

from registry import identity, operations
from registry.errors import Conflict
from registry.reads import Reader
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

OP = identity.operator()
READER = "vaultreader@acme.test"  # reads the private repository, nothing else
NAME = "hoard"


@pytest.fixture
def renamed(world, tmp_path):
    """`vault` (private) with `hoard` 1.0 published, renamed to `strongroom`, then 2.0 published."""
    reg = world.reg
    operations.create_repository(reg, OP, "cli", WS, "vault", "LABS")
    operations.create_user(reg, OP, "cli", READER)
    world.tokens[READER], _ = operations.create_token(reg, OP, "cli", READER, "read")
    operations.grant(reg, OP, "cli", WS, READER, "read", repository="vault")
    operations.create_package(reg, OP, "cli", WS, NAME, "vault")
    first = publish(reg, OP, make_wheel(tmp_path, NAME, "1.0")).commit.id
    operations.rename_repository(reg, OP, "cli", WS, "vault", "strongroom")
    second = publish(reg, OP, make_wheel(tmp_path, NAME, "2.0")).commit.id
    return first, second


def _trail(world, who, repository=None) -> set[str]:
    read = Reader(world.reg, world.principal(who) if who else identity.ANONYMOUS)
    return {f.commit.id for f in read.trail(WS, repository, limit=10_000)}


def test_a_renamed_repositorys_readers_see_its_whole_history(world, renamed):
    first, second = renamed
    assert {first, second} <= _trail(world, READER)
    assert {first, second} <= _trail(world, READER, "strongroom")
    read = Reader(world.reg, world.principal(READER))
    assert read.commit_changes(WS, first).filed.commit.id == first  # (the commit page too)
    assert not {first, second} & _trail(world, None)  # (and still nobody else)
    assert not {first, second} & _trail(world, "outsider@acme.test")


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_former_slug_never_names_another_repository(world, renamed, how):
    reg = world.reg
    if how == "deleted":
        operations.create_repository(reg, OP, "cli", WS, "scratch", "LABS")
        operations.delete_repository(reg, OP, "cli", WS, "scratch")
        old = "scratch"
    else:
        old = "vault"
    head = reg.ledger.head()
    attempts = [
        lambda: operations.create_repository(reg, OP, "cli", WS, old, "LABS", public=True),
        lambda: operations.rename_repository(reg, OP, "cli", WS, "public-lib", old),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict, match=f"slug {WS}/{old} was used before .*pick another slug"):
            attempt()
    assert reg.ledger.head() == head


def test_a_chain_of_renames_is_followed(world, renamed):
    first, second = renamed
    operations.rename_repository(world.reg, OP, "cli", WS, "strongroom", "keep")
    assert {first, second} <= _trail(world, READER, "keep")
    with pytest.raises(Conflict):  # (and back is no way round it)
        operations.rename_repository(world.reg, OP, "cli", WS, "keep", "vault")
