"""Bitbucket Pipelines OIDC tokens: verification, refusals, and what the registry records."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipelines.claims import PipelineClaims, brace_uuid, default_audience
from pipelines.issuer import LocalIssuer
from pipelines.verify import TokenRejected, Trust, Verifier
from registry import identity, layout, operations
from registry.model import ApiToken, Version, Workspace

from tests.support.world import WS, upload_form
from tests.support.helpers import make_wheel

WS_UUID = "{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}"
REPO_UUID = "{d4e45493-4a33-477d-917b-a24e7e4bd39b}"
OTHER_REPO_UUID = "{0f0f0f0f-4a33-477d-917b-a24e7e4bd39b}"
ENV_UUID = "{759de0c6-eaee-4eaa-b7a6-c507eec759a7}"


def claims_for(issuer, **overrides):
    kwargs = dict(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID, branch="main")
    kwargs.update(overrides)
    return issuer.claims(**kwargs)


def trust_for(issuer, **overrides):
    return Trust(**{"issuer": issuer.issuer_url(WS), "workspace_uuid": WS_UUID, **overrides})


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


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


def forge(issuer, kind):
    """Tokens that must be refused, one per way of getting it wrong."""
    good = claims_for(issuer)
    kid = issuer.current
    public_pem = issuer.keys[kid].public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if kind == "alg none":
        return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(good)}."
    if kind == "HS256 with the public key":
        signing = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(good)}"
        import hashlib
        import hmac  # noqa: E401  (PyJWT refuses to do this for us, rightly)
        sig = hmac.new(public_pem, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{b64(sig)}"
    if kind == "a key not in the issuer's set":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, stranger, algorithm="RS256", headers={"kid": kid})
    if kind == "an unknown kid":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, stranger, algorithm="RS256", headers={"kid": "not-a-kid"})
    if kind == "expired":
        return issuer.sign(claims_for(issuer, issued_at=int(time.time()) - 7200, lifetime=3600))
    if kind == "issued in the future":
        return issuer.sign(claims_for(issuer, issued_at=int(time.time()) + 3600))
    if kind == "wrong issuer":
        return issuer.sign({**good, "iss": issuer.issuer_url("someone-else")})
    if kind == "wrong audience":
        return issuer.sign(claims_for(issuer, audience="ari:cloud:bitbucket::workspace/00000000-0000-0000-0000-000000000000"))
    if kind == "another workspace":
        other = "{22222222-2222-2222-2222-222222222222}"
        return issuer.sign({**claims_for(issuer, workspace_uuid=other), "aud": default_audience(WS_UUID)})
    if kind == "tampered payload":
        token = issuer.sign(good)
        head, _, sig = token.split(".")
        return f"{head}.{b64({**good, 'repositoryUuid': OTHER_REPO_UUID})}.{sig}"
    if kind == "missing claims":
        return issuer.sign({k: v for k, v in good.items() if k != "stepUuid"})
    if kind == "subject of another repository":
        return issuer.sign({**good, "sub": f"{OTHER_REPO_UUID}:{good['stepUuid']}"})
    if kind == "garbage":
        return "eyJhbGciOiJSUzI1NiJ9.garbage.garbage"
    raise AssertionError(kind)


FORGERIES = {
    "alg none": "algorithm 'none' is not accepted",
    "HS256 with the public key": "algorithm 'HS256' is not accepted",
    "a key not in the issuer's set": "signature does not verify",
    "an unknown kid": "not in the issuer's key set",
    "expired": "expired",
    "issued in the future": "issued in the future",
    "wrong issuer": "issuer is not",
    "wrong audience": "audience is not accepted",
    "another workspace": "workspace {22222222",
    "tampered payload": "signature does not verify",
    "missing claims": "stepUuid",
    "subject of another repository": "subject does not name its repository",
    "garbage": "not a well-formed JWT",
}


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


# --- in the registry -----------------------------------------------------------------------------


@pytest.fixture
def trusted(world, issuer):
    """acme trusts the local issuer; acme/utils is the Bitbucket repository REPO_UUID."""
    reg, op = world.reg, identity.operator()
    ws = reg.snapshot().get(layout.workspace(WS), Workspace)
    # the workspace's uuid is Bitbucket's: recreate the repository records with known UUIDs
    operations.create_repository(reg, op, "cli", WS, "pipeline-repo", "CORE", uuid=REPO_UUID)
    operations.create_repository(reg, op, "cli", WS, "elsewhere", "CORE", uuid=OTHER_REPO_UUID)
    operations.create_package(reg, op, "cli", WS, "Acme.Piped", "pipeline-repo")
    operations.create_package(reg, op, "cli", WS, "not-ours", "elsewhere")
    operations.set_trust(reg, op, "cli", WS, issuer.issuer_url(WS))
    return dict(ws_uuid=ws.uuid)


def step_token(issuer, trusted, **overrides):
    kwargs = dict(workspace=WS, workspace_uuid=trusted["ws_uuid"], repository_uuid=REPO_UUID, branch="main")
    kwargs.update(overrides)
    return issuer.mint(**kwargs)


def piped_wheel(tmp_path, version="1.0"):
    return make_wheel(tmp_path, "Acme.Piped", version)


def as_password(token, username="x-token-auth"):
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


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
    who = identity.pipeline_principal(snap, WS, Verifier().verify(step_token(issuer, trusted), identity.trusts_for(snap, issuer.issuer_url(WS))[0][1]))
    for attempt in (
        lambda: operations.create_package(world.reg, who, "api", WS, "new-one", "pipeline-repo"),
        lambda: operations.delete_package(world.reg, who, "api", WS, "acme-piped"),
        lambda: operations.set_publish_policy(world.reg, who, "api", WS, "acme-piped", ["*"], []),
        lambda: operations.grant(world.reg, who, "api", WS, "dev@acme.test", "read", repository="pipeline-repo"),
    ):
        with pytest.raises(Exception, match="may not|but not"):
            attempt()


REFUSED_UPLOADS = {
    "not linked": (dict(repository_uuid=OTHER_REPO_UUID), "acme-piped", 404, "Package 'acme-piped' does not exist in workspace acme"),
    "unregistered repository": (dict(repository_uuid=str(uuid.uuid4())), "acme-piped", 403, "is not registered in workspace acme"),
    "branch outside policy": (dict(branch="feature/x"), "acme-piped", 403, "branches main, release/* only; this run is on feature/x"),
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
    r = await client.post(f"/{WS}/", data=data, files=files, headers=as_password(step_token(issuer, trusted, **overrides)))
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
