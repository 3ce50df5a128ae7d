"""A person's default workspace: set by themself or the operator, one commit; every mistake refused
with what to do, and nothing committed."""

from __future__ import annotations

import pytest

from registry import identity, operations
from registry.audit import Action, T, action
from registry.errors import Forbidden, Invalid, NotFound, RegistryError
from registry.reads import Reader
from tests.support.world import WS

OP = identity.operator()


@pytest.fixture
def beta(world):
    """A second workspace nobody has a role in."""
    operations.create_workspace(world.reg, OP, "cli", "beta")
    operations.create_project(world.reg, OP, "cli", "beta", "B")
    operations.create_repository(world.reg, OP, "cli", "beta", "r", "B")
    return "beta"


def default_of(world, email: str) -> str | None:
    return Reader(world.reg).user(email).default_workspace


def test_a_person_sets_and_clears_their_own_in_one_commit_each(world):
    reader = world.principal("reader@acme.test")
    user = operations.set_default_workspace(world.reg, reader, "api", "reader@acme.test", WS)
    assert user.default_workspace == WS == default_of(world, "reader@acme.test")
    commit = world.reg.ledger.commit(world.reg.ledger.head())
    assert action(commit) is Action.SET_DEFAULT_WORKSPACE and (T.USER, "reader@acme.test") in commit.trailers
    assert (T.WORKSPACE, WS) in commit.trailers and commit.author_email == "reader@acme.test"
    head = world.reg.ledger.head()
    operations.set_default_workspace(world.reg, reader, "api", "reader@acme.test", WS)  # (again: nothing to commit)
    assert world.reg.ledger.head() == head
    operations.set_default_workspace(world.reg, OP, "cli", "READER@acme.test", None)  # (the operator: anyone's)
    assert default_of(world, "reader@acme.test") is None
    assert world.reg.ledger.commit(world.reg.ledger.head()).summary == "clear default workspace of reader@acme.test"


@pytest.mark.parametrize(("who", "email", "ws", "refusal", "words"), [
    ("reader@acme.test", "dev@acme.test", WS, Forbidden, "only set your own"),            # someone else's
    ("dev-readonly", "dev@acme.test", WS, Forbidden, "read scope"),                       # a read-scoped token
    ("reader@acme.test", "reader@acme.test", "beta", NotFound, "No workspace 'beta' is visible to you"),
    ("reader@acme.test", "reader@acme.test", "nowhere", NotFound, "No workspace 'nowhere' is visible"),
    ("reader@acme.test", "reader@acme.test", "Not A Slug!", Invalid, "Invalid workspace slug"),
    ("operator", "reader@acme.test", "beta", NotFound, "visible to reader@acme.test"),    # one they can't read
    ("operator", "ghost@acme.test", WS, NotFound, "registry user create ghost@acme.test"),
    ("operator", "not-an-email", WS, Invalid, "email"),
])
def test_every_mistake_is_refused_and_commits_nothing(world, beta, who, email, ws, refusal, words):
    principal = OP if who == "operator" else world.principal(who)
    head = world.reg.ledger.head()
    with pytest.raises(refusal, match=words):
        operations.set_default_workspace(world.reg, principal, "api", email, ws)
    assert world.reg.ledger.head() == head


def test_a_workspace_the_person_is_granted_becomes_choosable(world, beta):
    with pytest.raises(RegistryError):
        operations.set_default_workspace(world.reg, OP, "cli", "outsider@acme.test", beta)
    operations.grant(world.reg, OP, "cli", beta, "outsider@acme.test", "read", repository="r")
    assert operations.set_default_workspace(world.reg, OP, "cli", "outsider@acme.test", beta).default_workspace == beta
