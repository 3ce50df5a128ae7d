"""Who a pipeline's token stands for, against the workspace's trusted issuers: any of several, and
the one trust a ledger of an older release kept."""

from __future__ import annotations

import pytest

from pipelines.issuer import LocalIssuer
from pipelines.verify import TokenRejected, Verifier
from registry import identity, layout, model, operations
from registry.audit import Action, T
from registry.errors import Invalid, NotFound
from registry.operations._common import make_change
from registry.reads import Reader
from tests.support.pipelines import REPO_UUID
from tests.support.world import WS

OP = identity.operator()


@pytest.fixture
def second():
    """Another issuer, with keys of its own (e.g. a deployment's, beside Bitbucket's)."""
    with LocalIssuer() as other:
        yield other


def pipeline(world, token: str) -> identity.Principal:
    return Reader(world.reg, identity.ANONYMOUS).pipeline_for(token, Verifier())


def mint(issuer, trusted) -> str:
    return issuer.mint(workspace=WS, workspace_uuid=trusted["ws_uuid"], repository_uuid=REPO_UUID)


def test_a_token_is_verified_against_whichever_trusted_issuer_issued_it(world, issuer, second, trusted):
    first_token = mint(issuer, trusted)
    with pytest.raises(TokenRejected, match="No workspace of this registry trusts the token's issuer"):
        pipeline(world, mint(second, trusted))
    operations.set_trust(world.reg, OP, "cli", WS, second.issuer_url(WS))
    for token in (first_token, mint(second, trusted)):
        who = pipeline(world, token)
        assert (who.kind, who.workspace, who.repository) == ("pipeline", WS, "pipeline-repo")
    assert [t.issuer for _, t in Reader(world.reg, OP).trusts(WS)] == sorted(
        [issuer.issuer_url(WS), second.issuer_url(WS)])
    # one issuer's keys never vouch for the other's tokens: the second's token, claiming the first
    forged = second.sign({**second.claims(workspace=WS, workspace_uuid=trusted["ws_uuid"],
                                          repository_uuid=REPO_UUID), "iss": issuer.issuer_url(WS)})
    with pytest.raises(TokenRejected):
        pipeline(world, forged)
    # untrusting one leaves the other
    head = world.reg.ledger.head()
    operations.remove_trust(world.reg, OP, "cli", WS, issuer.issuer_url(WS) + "/")
    commit = world.reg.ledger.commit(world.reg.ledger.head())
    assert commit.trailer(T.ACTION) == Action.UNTRUST and commit.trailer(T.ISSUER) == issuer.issuer_url(WS)
    assert [str(p) for p in world.reg.ledger.repo()[commit.id].parent_ids] == [head]  # (one commit)
    with pytest.raises(TokenRejected, match="trusts the token's issuer"):
        pipeline(world, mint(issuer, trusted))
    assert pipeline(world, mint(second, trusted)).repository == "pipeline-repo"


def test_each_issuer_is_added_updated_and_removed_by_its_own_commit(world, issuer, second, trusted):
    reg = world.reg
    operations.set_trust(reg, OP, "cli", WS, second.issuer_url(WS), ["custom-aud"])
    before = reg.snapshot()
    operations.set_trust(reg, OP, "cli", WS, second.issuer_url(WS), ["other-aud"])  # updates, doesn't add
    after = reg.snapshot()
    assert [t.audiences for t in identity.workspace_trusts(after, WS)
            if t.issuer == second.issuer_url(WS)] == [["other-aud"]]
    assert len(identity.workspace_trusts(after, WS)) == 2
    assert after.get(layout.trusted_issuer(WS, issuer.issuer_url(WS)), model.TrustedIssuer) == before.get(
        layout.trusted_issuer(WS, issuer.issuer_url(WS)), model.TrustedIssuer)  # the other one untouched
    head = reg.ledger.head()
    with pytest.raises(Invalid, match="trusts 2 issuers .* name the one"):
        operations.remove_trust(reg, OP, "cli", WS)
    with pytest.raises(NotFound, match="doesn't trust issuer https://elsewhere.example"):
        operations.remove_trust(reg, OP, "cli", WS, "https://elsewhere.example")
    admin_only = world.principal("owner@acme.test")  # a repository admin is no workspace admin
    with pytest.raises(Exception, match="admin permission on workspace acme"):
        operations.remove_trust(reg, admin_only, "api", WS, second.issuer_url(WS))
    with pytest.raises(Exception, match="admin permission on workspace acme"):
        operations.set_trust(reg, admin_only, "api", WS, "https://third.example/oidc")
    assert reg.ledger.head() == head
    operations.remove_trust(reg, OP, "cli", WS, second.issuer_url(WS))
    operations.remove_trust(reg, OP, "cli", WS)  # the only one left: no need to name it
    assert identity.workspace_trusts(reg.snapshot(), WS) == []


def old_single_trust(world, issuer_url: str) -> model.PipelinesTrust:
    """What an older release wrote: the workspace's one trust, at workspaces/<ws>/pipelines-trust.json."""
    record = model.PipelinesTrust(issuer=issuer_url, audiences=[], updated=OP.provenance("cli"))
    world.reg.transact(lambda snap: make_change(
        OP, "cli", Action.TRUST, f"trust pipelines of {WS} from {issuer_url}", {layout.trust(WS): record},
        (T.WORKSPACE, WS), (T.ISSUER, issuer_url)))
    return record


def test_an_older_ledgers_single_trust_is_read_and_verified_the_same(world, issuer, second, trusted):
    reg = world.reg
    operations.remove_trust(reg, OP, "cli", WS)  # (the fixture trusts as this release does: start from nothing)
    legacy = old_single_trust(world, issuer.issuer_url(WS))
    assert reg.snapshot().raw(layout.trust(WS)) is not None
    assert pipeline(world, mint(issuer, trusted)).repository == "pipeline-repo"
    assert Reader(reg, OP).trusts(WS) == [(WS, legacy)] and Reader(reg, OP).trusts() == [(WS, legacy)]
    # another issuer is added beside it; the old one still holds
    operations.set_trust(reg, OP, "cli", WS, second.issuer_url(WS))
    assert pipeline(world, mint(issuer, trusted)).repository == "pipeline-repo"
    assert pipeline(world, mint(second, trusted)).repository == "pipeline-repo"
    # setting the old one again moves it to its own record, in that one commit
    operations.set_trust(reg, OP, "cli", WS, issuer.issuer_url(WS), ["aud-now"])
    snap = reg.snapshot()
    assert snap.raw(layout.trust(WS)) is None
    assert snap.get(layout.trusted_issuer(WS, issuer.issuer_url(WS)), model.TrustedIssuer).audiences == ["aud-now"]
    assert len(identity.workspace_trusts(snap, WS)) == 2


def test_untrusting_an_older_ledgers_trust_removes_it(world, issuer, trusted):
    operations.remove_trust(world.reg, OP, "cli", WS)
    old_single_trust(world, issuer.issuer_url(WS))
    removed = operations.remove_trust(world.reg, OP, "cli", WS, issuer.issuer_url(WS))
    assert removed.issuer == issuer.issuer_url(WS) and world.reg.snapshot().raw(layout.trust(WS)) is None
    with pytest.raises(TokenRejected, match="trusts the token's issuer"):
        pipeline(world, mint(issuer, trusted))
