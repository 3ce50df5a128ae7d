"""Bitbucket Pipelines OIDC tokens: verification and refusals, by the verifier on its own (what the registry
records of a pipeline's uploads, and the token exchange, are in tests/unit/web/test_oidc.py)."""

from __future__ import annotations

import json

import pytest

from pipelines.claims import PipelineClaims, brace_uuid
from pipelines.issuer import LocalIssuer
from pipelines.verify import TokenRejected, Trust, Verifier
from tests.support.pipelines import (
    ENV_UUID,
    FORGERIES,
    REPO_UUID,
    WS_UUID,
    claims_for,
    forge,
    trust_for,
)
from tests.support.world import WS

# --- the verifier on its own ----------------------------------------------------------------------


def test_a_good_token_gives_normalised_claims(issuer):
    token = issuer.sign(claims_for(issuer, repository_uuid=REPO_UUID.strip("{}").upper(), environment_uuid=ENV_UUID))
    claims = Verifier().verify(token, trust_for(issuer))
    assert claims.repositoryUuid == REPO_UUID and claims.workspaceUuid == WS_UUID
    assert claims.deploymentEnvironmentUuid == ENV_UUID and claims.branchName == "main"
    assert claims.sub == f"{REPO_UUID}:{ENV_UUID}:{claims.stepUuid}"


def test_custom_audiences_and_audience_lists(issuer):
    token = issuer.sign(claims_for(issuer, audience=["https://registry.example", "other"]))
    assert Verifier().verify(token, trust_for(issuer, audiences=("https://registry.example",)))
    with pytest.raises(TokenRejected, match="audience"):
        Verifier().verify(token, trust_for(issuer))  # the default audience is not in the token


@pytest.mark.parametrize("kind", FORGERIES)
def test_refusals(issuer, kind):
    with pytest.raises(TokenRejected) as caught:
        Verifier(leeway=5).verify(forge(issuer, kind), trust_for(issuer))
    assert FORGERIES[kind] in caught.value.reason


def test_rotated_keys_are_fetched_once_and_unknown_kids_rate_limited(issuer):
    fetches = []

    def counting_fetch(url, timeout):
        from pipelines.verify import _fetch_json
        fetches.append(url)
        return _fetch_json(url, timeout)

    verifier = Verifier(fetch=counting_fetch, refetch_after=3600)
    verifier.verify(issuer.mint(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID), trust_for(issuer))
    assert len(fetches) == 2  # discovery, then keys.json
    for _ in range(5):  # garbage kids right after a fetch cost the issuer nothing
        with pytest.raises(TokenRejected):
            verifier.verify(forge(issuer, "an unknown kid"), trust_for(issuer))
    assert len(fetches) == 2
    old = issuer.current
    issuer.rotate()
    try:
        token = issuer.mint(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID)
        with pytest.raises(TokenRejected, match="not in the issuer's key set"):
            verifier.verify(token, trust_for(issuer))  # rotated too recently to look again
        verifier.refetch_after = 0
        assert verifier.verify(token, trust_for(issuer)).repositoryUuid == REPO_UUID
        assert len(fetches) == 4
    finally:
        issuer.current = old


def test_inline_jwks_needs_no_network(issuer):
    def no_network(url, timeout):
        raise AssertionError("fetched " + url)

    trust = trust_for(issuer, jwks=json.dumps(issuer.jwks()))
    token = issuer.mint(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID)
    assert Verifier(fetch=no_network).verify(token, trust).repositoryUuid == REPO_UUID


def test_unreachable_issuer_is_a_clear_refusal():
    trust = Trust(issuer="http://127.0.0.1:9/2.0/workspaces/x/pipelines-config/identity/oidc", workspace_uuid=WS_UUID)
    token = LocalIssuer().mint(workspace="x", workspace_uuid=WS_UUID, repository_uuid=REPO_UUID)
    with pytest.raises(TokenRejected, match="could not be fetched"):
        Verifier(timeout=2).verify(token, trust)


def test_claims_type():
    with pytest.raises(ValueError, match="repositoryUuid"):
        PipelineClaims.from_payload({"iss": "i", "aud": "a", "sub": "s", "exp": 1, "iat": 1, "workspaceUuid": WS_UUID,
                                     "repositoryUuid": "nope", "pipelineUuid": WS_UUID, "stepUuid": WS_UUID})
    assert brace_uuid("D4E45493-4A33-477D-917B-A24E7E4BD39B") == REPO_UUID
