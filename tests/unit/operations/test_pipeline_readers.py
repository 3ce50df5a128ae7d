"""Letting other repositories' pipelines read a repository: the verbs, their commits, their refusals,
and how a rename or a deletion of the granted repository carries the grants along."""

from __future__ import annotations

import pytest

from registry import identity, layout, operations
from registry.audit import Action, T, action
from registry.errors import Conflict, Denied, Forbidden, Invalid, NotFound, RegistryError
from registry.identity import Principal
from registry.model import Repository
from tests.support.world import WS

OP = identity.operator()


def readers(world, slug: str) -> list[str]:
    found = world.reg.snapshot().get(layout.repository(WS, slug), Repository)
    assert found is not None
    return found.pipeline_readers


def head(world):
    return world.reg.ledger.commit(world.reg.ledger.head())


def test_an_admin_grants_and_revokes_in_one_commit_each_filed_under_the_granting_repository(world):
    owner = world.principal("owner@acme.test")  # admin of acme/utils only
    operations.grant_pipelines(world.reg, owner, "cli", WS, "utils", "public-lib")
    commit = head(world)
    assert action(commit) is Action.GRANT_PIPELINES
    assert commit.trailer(T.REPOSITORY) == "utils" and commit.trailer(T.PIPELINES_OF) == "public-lib"
    assert commit.trailer(T.WORKSPACE) == WS and commit.trailer(T.ACTOR) == "owner@acme.test"
    assert commit.summary == f"grant read on {WS}/utils to the pipelines of {WS}/public-lib"
    # (a repository its admin doesn't read: the workspace admin's to grant)
    operations.grant_pipelines(world.reg, world.principal("wsadmin@acme.test"), "cli", WS, "utils", "secret")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "*")
    assert readers(world, "utils") == ["*", "public-lib", "secret"]
    filed = world.reg.history.filed(commit.id)
    assert filed is not None and (filed.kind, filed.repository) == ("repository", "utils")

    operations.revoke_pipelines(world.reg, owner, "web", WS, "utils", "*")
    assert action(head(world)) is Action.REVOKE_PIPELINES and head(world).trailer(T.PIPELINES_OF) == "*"
    assert readers(world, "utils") == ["public-lib", "secret"]  # (each grant goes by its own name)
    # (secret, which its admin doesn't read, they know and revoke by its UUID only: by its slug, it is
    # as one that names nothing)
    uuid = world.reg.snapshot().get(layout.repository(WS, "secret"), Repository).uuid
    said = _refused(world, owner, operations.revoke_pipelines, "secret", kind=NotFound)
    assert said == _refused(world, owner, operations.revoke_pipelines, "nobody", kind=NotFound).replace(
        "nobody", "secret") and f"public-lib, {uuid}" in said
    operations.revoke_pipelines(world.reg, owner, "api", WS, "utils", uuid)
    assert readers(world, "utils") == ["public-lib"] and head(world).trailer(T.PIPELINES_OF) == "secret"


def _refused(world, who, verb, source, repo="utils", kind=RegistryError):
    before = world.reg.ledger.head()
    with pytest.raises(kind) as caught:
        verb(world.reg, who, "cli", WS, repo, source)
    assert world.reg.ledger.head() == before  # (a refusal changes nothing)
    return caught.value.message


@pytest.mark.parametrize("who", ["dev@acme.test", "reader@acme.test", "projreader@acme.test"])
def test_only_an_admin_of_the_repository_grants_or_revokes(world, who):
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "secret")
    for verb in (operations.grant_pipelines, operations.revoke_pipelines):
        said = _refused(world, world.principal(who), verb, "public-lib" if verb is operations.grant_pipelines
                        else "secret", kind=Denied)
        assert "needs admin permission on repository acme/utils" in said


def test_a_repository_one_cannot_read_is_as_missing(world):
    said = _refused(world, world.principal("outsider@acme.test"), operations.grant_pipelines, "utils", repo="secret",
                    kind=NotFound)
    assert said == f"Repository {WS}/secret does not exist."


def test_a_read_scoped_token_is_told_its_scope(world):
    operations.create_token(world.reg, OP, "cli", "owner@acme.test", "read")
    secret, _ = operations.create_token(world.reg, OP, "cli", "owner@acme.test", "read")
    who = identity.check_token(world.reg.snapshot(), "owner@acme.test", secret)
    for verb in (operations.grant_pipelines, operations.revoke_pipelines):
        said = _refused(world, who, verb, "secret", kind=Forbidden)
        assert "read scope" in said and "write-scoped API token" in said


def test_a_pipeline_grants_nothing(world):
    pipeline = Principal(kind="pipeline", scope="write", workspace=WS, repository="utils")
    said = _refused(world, pipeline, operations.grant_pipelines, "secret", kind=Denied)
    assert "needs admin permission" in said


def test_granting_a_repository_to_its_own_pipelines_is_refused(world):
    said = _refused(world, OP, operations.grant_pipelines, "utils", kind=Invalid)
    assert "already publish to and read it" in said


def test_an_unknown_or_unreadable_source_names_what_one_reads(world):
    owner = world.principal("owner@acme.test")
    missing = _refused(world, owner, operations.grant_pipelines, "nope", kind=NotFound)
    hidden = _refused(world, owner, operations.grant_pipelines, "secret", kind=NotFound)  # exists, not readable
    assert missing.replace("nope", "X") == hidden.replace("secret", "X", 1)  # (the same answer: nothing learned)
    assert "you read: public-lib, utils" in missing and "`registry repo list acme`" in missing and "`*`" in missing
    listed = _refused(world, OP, operations.grant_pipelines, "nope", kind=NotFound)
    assert "public-lib, secret, utils" in listed  # (the operator reads them all)


@pytest.mark.parametrize("source", ["", "a/b", "UPPER CASE", "x" * 200, "**"])
def test_a_source_that_is_no_slug_is_refused(world, source):
    _refused(world, OP, operations.grant_pipelines, source, kind=Invalid)


def test_granting_twice_and_revoking_what_isnt_granted_are_refused(world):
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "secret")
    assert "already read" in _refused(world, OP, operations.grant_pipelines, "secret", kind=Conflict)
    said = _refused(world, OP, operations.revoke_pipelines, "public-lib", kind=NotFound)
    assert "those of: secret" in said and "registry pipelines list acme/utils" in said
    assert "doesn't let every pipeline" in _refused(world, OP, operations.revoke_pipelines, "*", kind=NotFound)


def test_a_rename_carries_the_grants_to_the_new_slug_in_its_commit(world):
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "secret")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "public-lib", "secret")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "secret", "utils")
    before = world.reg.ledger.head()
    operations.rename_repository(world.reg, OP, "cli", WS, "secret", "vault")
    assert [str(p) for p in world.reg.ledger.repo()[world.reg.ledger.head()].parent_ids] == [before]  # (one commit)
    assert readers(world, "utils") == ["vault"] and readers(world, "public-lib") == ["vault"]
    assert readers(world, "vault") == ["utils"]  # (its own grants name others: they stay)


def test_a_deletion_drops_the_grants_to_its_pipelines_in_its_commit(world):
    operations.create_repository(world.reg, OP, "cli", WS, "doomed", "LABS")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "doomed")
    operations.grant_pipelines(world.reg, OP, "cli", WS, "utils", "*")
    operations.delete_repository(world.reg, OP, "cli", WS, "doomed")
    assert readers(world, "utils") == ["*"]
    assert action(head(world)) is Action.DELETE_REPOSITORY
