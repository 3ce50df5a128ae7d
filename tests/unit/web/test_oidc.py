"""Bitbucket Pipelines in the registry: trusted publishing through the token exchange and with a step's
OIDC token, what the registry records of a pipeline's uploads, and the refusals."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from pipelines.verify import Verifier
from registry import identity, layout, operations
from registry.model import ApiToken, Version
from tests.support.pipelines import (
    ENV_UUID,
    FORGERIES,
    OTHER_REPO_UUID,
    REPO_UUID,
    WS_UUID,
    as_password,
    forge,
    piped_wheel,
    step_token,
)
from tests.support.world import WS, upload_form


async def test_a_pipeline_publishes_and_the_version_says_which_run(client, world, issuer, trusted, tmp_path):
    claims = issuer.claims(workspace=WS, workspace_uuid=trusted["ws_uuid"], repository_uuid=REPO_UUID,
                           branch="release/1.x", environment_uuid=ENV_UUID)
    token = issuer.sign(claims)
    data, files = upload_form(piped_wheel(tmp_path))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(token))
    assert r.status_code == 200, r.text
    snap = world.reg.snapshot()
    f = snap.get(layout.version(WS, "acme-piped", "1"), Version).files[0]
    run = f.uploaded.pipeline
    assert f.uploaded.by == f"pipeline:{REPO_UUID}" and f.uploaded.channel == "upload"
    assert (run.repository_uuid, run.workspace_uuid, run.pipeline_uuid, run.step_uuid) == (
        REPO_UUID, trusted["ws_uuid"], claims["pipelineUuid"], claims["stepUuid"])
    assert (run.branch, run.environment_uuid, run.issuer) == ("release/1.x", ENV_UUID, issuer.issuer_url(WS))
    assert run.reported is None and run.url is None  # nothing reported: nothing claimed
    commit = world.reg.ledger.commit(world.reg.ledger.head())
    trailers = dict(commit.trailers)
    assert commit.author_email == f"pipelines+{REPO_UUID.strip('{}')}@bitbucket.invalid"
    assert "Bitbucket Pipelines acme/pipeline-repo" == commit.author_name
    assert trailers["Pipeline-Uuid"] == claims["pipelineUuid"] and trailers["Step-Uuid"] == claims["stepUuid"]
    assert trailers["Repository-Uuid"] == REPO_UUID and trailers["Branch"] == "release/1.x"
    assert trailers["Environment-Uuid"] == ENV_UUID
    # the raw token is never stored
    assert token.split(".")[2] not in _everything_in_git(world)


def _everything_in_git(world) -> str:
    repo = world.reg.ledger.repo()
    out = []
    for oid in repo.odb:
        obj = repo[oid]
        out.append(obj.data.decode("utf-8", "replace") if obj.type_str == "blob" else getattr(obj, "message", ""))
    return "\n".join(out)


async def test_bearer_tokens_read_own_packages_only(client, world, issuer, trusted):
    bearer = {"authorization": f"Bearer {step_token(issuer, trusted)}"}
    assert (await client.get(f"/{WS}/acme-piped/", headers=bearer)).status_code == 200
    r = await client.get(f"/{WS}/not-ours/", headers=bearer)
    assert r.status_code == 404 and "does not exist" in r.text  # another repository's private package
    assert (await client.get(f"/{WS}/public-pkg/", headers=bearer)).status_code == 200


async def test_pipelines_never_administer(world, issuer, trusted):
    snap = world.reg.snapshot()
    who = identity.pipeline_principal(
        snap, WS,
        Verifier().verify(step_token(issuer, trusted), identity.trusts_for(snap, issuer.issuer_url(WS))[0][1]))
    for attempt in (
        lambda: operations.create_package(world.reg, who, "api", WS, "new-one", "pipeline-repo"),
        lambda: operations.delete_package(world.reg, who, "api", WS, "acme-piped"),
        lambda: operations.set_publish_policy(world.reg, who, "api", WS, "acme-piped", ["*"], []),
        lambda: operations.grant(world.reg, who, "api", WS, "dev@acme.test", "read", repository="pipeline-repo"),
    ):
        with pytest.raises(Exception, match="may not|but not"):
            attempt()


REFUSED_UPLOADS = {
    # (another repository's private package reads as a missing one, which its first publish doesn't create here)
    "not linked": (dict(repository_uuid=OTHER_REPO_UUID), "acme-piped", 403,
                   "Package 'acme-piped' does not exist in workspace acme, and this pipeline's repository doesn't "
                   "create packages on publish: a repository admin creates it with `registry package create acme "
                   "acme-piped --repo elsewhere`"),
    "unregistered repository": (dict(repository_uuid=str(uuid.uuid4())), "acme-piped", 403,
                                "is not registered in workspace acme"),
    "branch outside policy": (dict(branch="feature/x"), "acme-piped", 403,
                              "branches main, release/* only; this run is on feature/x"),
    "tag build, no branch": (dict(branch=None), "acme-piped", 403, "no branch"),
    "environment outside policy": (dict(environment_uuid=str(uuid.uuid4())), "acme-piped", 403, "deploying to"),
}


@pytest.mark.parametrize("case", REFUSED_UPLOADS)
async def test_refused_pipeline_uploads_record_nothing(client, world, issuer, trusted, tmp_path, case):
    overrides, _, status, message = REFUSED_UPLOADS[case]
    if "policy" in case or "no branch" in case:
        operations.set_publish_policy(world.reg, identity.operator(), "cli", WS, "acme-piped", ["main", "release/*"],
                                      [ENV_UUID] if "environment" in case else [])
        if "environment" in case:
            overrides = {**overrides, "branch": "main"}
    head = world.reg.ledger.head()
    data, files = upload_form(piped_wheel(tmp_path))
    r = await client.post(f"/{WS}/", data=data, files=files,
                          headers=as_password(step_token(issuer, trusted, **overrides)))
    assert r.status_code == status and message in r.text, r.text
    assert world.reg.ledger.head() == head


@pytest.mark.parametrize("kind", FORGERIES)
async def test_forged_tokens_are_refused_over_http(client, world, issuer, trusted, tmp_path, kind):
    head = world.reg.ledger.head()
    data, files = upload_form(piped_wheel(tmp_path))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(forge(issuer, kind)))
    assert r.status_code in (401, 403), r.text
    assert r.text.startswith("Pipeline token refused:") or "Invalid credentials" in r.text
    assert world.reg.ledger.head() == head


async def test_untrusted_issuer(client, world, issuer, tmp_path):
    data, files = upload_form(piped_wheel(tmp_path))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(
        issuer.mint(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID)))
    assert r.status_code == 403 and "No workspace of this registry trusts the token's issuer" in r.text


async def test_policy_allows_matching_runs(client, world, issuer, trusted, tmp_path):
    operations.set_publish_policy(world.reg, identity.operator(), "cli", WS, "acme-piped", ["release/*"], [ENV_UUID])
    token = step_token(issuer, trusted, branch="release/2.0", environment_uuid=ENV_UUID)
    data, files = upload_form(piped_wheel(tmp_path))
    assert (await client.post(f"/{WS}/", data=data, files=files, headers=as_password(token))).status_code == 200


async def test_token_exchange(client, world, issuer, trusted, tmp_path):
    r = await client.get("/_/oidc/audience")
    assert r.status_code == 200 and r.json()["audience"]
    context = {"build_number": "42", "commit": "a" * 40, "tag": "v1.0", "repo_full_name": "acme/pipeline-repo"}
    r = await client.post("/_/oidc/mint-token", json={"token": step_token(issuer, trusted), "context": context})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["token"].startswith("rgy_")
    assert 0 < body["expires"] - time.time() <= 15 * 60
    record = world.reg.snapshot().get(layout.token(identity.token_hash(body["token"])), ApiToken)
    assert (record.workspace, record.repository, record.scope) == (WS, "pipeline-repo", "write")
    # the minted token publishes as the pipeline, with the run's reported context and URL
    data, files = upload_form(piped_wheel(tmp_path, "2.0"))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(body["token"], "__token__"))
    assert r.status_code == 200, r.text
    run = world.reg.snapshot().get(layout.version(WS, "acme-piped", "2"), Version).files[0].uploaded.pipeline
    assert run.reported.build_number == "42" and run.reported.tag == "v1.0" and run.reported.commit == "a" * 40
    assert run.url == "https://bitbucket.org/acme/pipeline-repo/pipelines/results/42"
    # ...and only to its own repository
    r = await client.get(f"/{WS}/not-ours/", headers=as_password(body["token"], "__token__"))
    assert r.status_code == 404


@pytest.mark.parametrize(("body", "code"), [
    (b"not json", "invalid-payload"),
    (b'{"nope": 1}', "invalid-payload"),
    (b'{"token": "garbage"}', "invalid-payload"),
    (b'{"token": "eyJ.x.y"}', "invalid-payload"),
])
async def test_token_exchange_refusals(client, world, body, code):
    head = world.reg.ledger.head()
    r = await client.post("/_/oidc/mint-token", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    payload = r.json()
    assert payload["message"] == "Token request failed" and payload["errors"][0]["code"] == code
    assert world.reg.ledger.head() == head


async def test_token_exchange_refuses_bad_tokens_and_bad_context(client, world, issuer, trusted):
    r = await client.post("/_/oidc/mint-token", json={"token": forge(issuer, "expired")})
    assert r.status_code == 422 and "expired" in r.json()["errors"][0]["description"]
    r = await client.post("/_/oidc/mint-token", json={"token": step_token(issuer, trusted),
                                                       "context": {"repo_full_name": "../../evil"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid-payload"


def test_trust_validation(world, issuer, tmp_path):
    op = identity.operator()
    with pytest.raises(Exception, match="https://"):
        operations.set_trust(world.reg, op, "cli", WS, "http://issuer.example/oidc")
    with pytest.raises(Exception, match="private key"):
        private = jwt.algorithms.RSAAlgorithm.to_jwk(issuer.keys[issuer.current], as_dict=True)
        operations.set_trust(world.reg, op, "cli", WS, issuer.issuer_url(WS), jwks={"keys": [private]})
    with pytest.raises(Exception, match="admin permission on workspace"):
        operations.set_trust(world.reg, world.principal("owner@acme.test"), "api", WS, issuer.issuer_url(WS))


async def test_token_exchange_takes_a_numeric_build_number(client, world, issuer, trusted, tmp_path):
    """BITBUCKET_BUILD_NUMBER is a number: sent as a JSON number, it is kept as its digits."""
    for wrong in (-1, 1.5, True, "4x"):
        r = await client.post("/_/oidc/mint-token", json={"token": step_token(issuer, trusted),
                                                           "context": {"build_number": wrong}})
        assert r.status_code == 422 and "$.context.build_number" in r.json()["errors"][0]["description"], wrong
    r = await client.post("/_/oidc/mint-token", json={"token": step_token(issuer, trusted),
                                                       "context": {"build_number": 4242, "repo_full_name": "acme/p"}})
    assert r.status_code == 200, r.text
    data, files = upload_form(piped_wheel(tmp_path, "2.0"))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(r.json()["token"], "__token__"))
    assert r.status_code == 200, r.text
    run = world.reg.snapshot().get(layout.version(WS, "acme-piped", "2"), Version).files[0].uploaded.pipeline
    assert run.reported.build_number == "4242" and run.url.endswith("/acme/p/pipelines/results/4242")
