"""Another repository's pipelines reading a private repository: only those granted, only read, only
of the same workspace, only while granted and while their token lasts.

A pipeline that isn't granted gets, on every route that reads a package (the index page, a file, its
metadata, the JSON APIs, the UI), exactly the answer for a package that doesn't exist; so does one
whose grant was revoked, and one of another workspace under a grant to "every pipeline". A
read-scoped minted token changes nothing, even in its own repository.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.verify import Verifier
from registry import identity, operations
from tests.support.helpers import OWN_HEADERS, make_wheel
from tests.support.pipelines import OTHER_REPO_UUID, REPO_UUID, as_password, piped_wheel, step_token
from tests.support.world import WS, publish, upload_form

PRIVATE, MISSING = "secret-pkg", "secret-pkx"  # (same length: the answers compare as they are)
FILE = "{}-1.0-py3-none-any.whl"
ROUTES = [
    ("GET", f"/{WS}/{{pkg}}/", {"accept": "application/vnd.pypi.simple.v1+json"}),
    ("GET", f"/{WS}/{{pkg}}/", {"accept": "text/html"}),
    ("GET", f"/{WS}/{{pkg}}/1.0/{{file}}", {}),
    ("GET", f"/{WS}/{{pkg}}/1.0/{{file}}.metadata", {}),
    ("GET", "/{pkg}/", {}),
    ("GET", f"/{WS}/pypi/{{pkg}}/json", {}),
    ("GET", f"/{WS}/pypi/{{pkg}}/1.0/json", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/history", {}),
    ("GET", f"/-/{WS}/packages/{{pkg}}/", {}),
]
OTHER_WS, OTHER_WS_UUID = "rival", "{33333333-3333-4333-8333-333333333333}"
RIVAL_REPO_UUID = "{44444444-4444-4444-8444-444444444444}"


@pytest.fixture
def lib(world, trusted, issuer, tmp_path):
    """acme/secret holds a published private package; acme/pipeline-repo and acme/elsewhere have
    pipelines; workspace rival (which trusts the same issuer) has one too."""
    op = identity.operator()
    publish(world.reg, op, make_wheel(tmp_path, PRIVATE, "1.0"))
    operations.create_workspace(world.reg, op, "cli", OTHER_WS, uuid=OTHER_WS_UUID)
    operations.create_project(world.reg, op, "cli", OTHER_WS, "CORE")
    operations.create_repository(world.reg, op, "cli", OTHER_WS, "pipeline-repo", "CORE", uuid=RIVAL_REPO_UUID)
    operations.set_trust(world.reg, op, "cli", OTHER_WS, issuer.issuer_url(OTHER_WS))
    return trusted


async def minted(client, token: str, scope: str = "read") -> dict:
    r = await client.post("/_/oidc/mint-token", json={"token": token, "scope": scope})
    assert r.status_code == 200, r.text
    return as_password(r.json()["token"], "__token__")


async def pipelines(client, issuer, trusted) -> dict[str, dict]:
    """Credentials of each pipeline: its step token, and a read token minted for it."""
    out = {}
    for name, ws, ws_uuid, repo_uuid in (("granted", WS, trusted["ws_uuid"], REPO_UUID),
                                         ("other", WS, trusted["ws_uuid"], OTHER_REPO_UUID),
                                         ("rival", OTHER_WS, OTHER_WS_UUID, RIVAL_REPO_UUID)):
        token = issuer.mint(workspace=ws, workspace_uuid=ws_uuid, repository_uuid=repo_uuid, branch="main")
        out[f"{name} step"] = as_password(token)
        out[f"{name} minted"] = await minted(client, token)
    return out


def url_of(url: str, name: str) -> str:
    return url.format(pkg=name, file=FILE.format(name.replace("-", "_")))


def comparable(response, swap: tuple[str, str]) -> tuple:
    mine, theirs = swap
    text = response.text.replace(mine, theirs).replace(mine.replace("-", "_"), theirs.replace("-", "_"))
    headers = {k: v.replace(mine, theirs) for k, v in response.headers.items() if k not in OWN_HEADERS}
    return response.status_code, text, headers


async def assert_as_missing(client, headers: dict, label: str) -> None:
    for method, url, extra in ROUTES:
        private = await client.request(method, url_of(url, PRIVATE), headers={**extra, **headers},
                                       follow_redirects=False)
        missing = await client.request(method, url_of(url, MISSING), headers={**extra, **headers},
                                       follow_redirects=False)
        assert comparable(private, (PRIVATE, MISSING)) == comparable(missing, ("", "")), f"{url} as {label}"
        assert private.status_code in (401, 404), f"{url} as {label}: {private.status_code}"


async def assert_reads(client, headers: dict, label: str) -> None:
    for method, url, extra in ROUTES[:-1]:  # (the UI is for people: a pipeline's credentials sign no one in)
        r = await client.request(method, url_of(url, PRIVATE), headers={**extra, **headers}, follow_redirects=False)
        assert r.status_code in (200, 301, 302, 303), f"{url} as {label}: {r.status_code} {r.text}"


async def test_only_the_granted_pipeline_reads_and_only_while_granted(client, world, issuer, lib):
    op = identity.operator()
    creds = await pipelines(client, issuer, lib)
    for label, headers in creds.items():  # (before any grant: every pipeline, as missing)
        await assert_as_missing(client, headers, label)

    operations.grant_pipelines(world.reg, op, "cli", WS, "secret", "pipeline-repo")
    for label in ("granted step", "granted minted"):
        await assert_reads(client, creds[label], label)
    for label in ("other step", "other minted", "rival step", "rival minted"):  # (rival: its repo has the same slug)
        await assert_as_missing(client, creds[label], label)

    operations.revoke_pipelines(world.reg, op, "cli", WS, "secret", "pipeline-repo")
    for label, headers in creds.items():
        await assert_as_missing(client, headers, label)


async def test_every_pipeline_means_every_pipeline_of_the_same_workspace(client, world, issuer, lib):
    creds = await pipelines(client, issuer, lib)
    operations.grant_pipelines(world.reg, identity.operator(), "cli", WS, "secret", "*")
    for label in ("granted step", "granted minted", "other step", "other minted"):
        await assert_reads(client, creds[label], label)
    for label in ("rival step", "rival minted"):
        await assert_as_missing(client, creds[label], label)


async def test_a_granted_pipeline_only_reads(client, world, issuer, lib, tmp_path):
    operations.grant_pipelines(world.reg, identity.operator(), "cli", WS, "secret", "pipeline-repo")
    write = await minted(client, step_token(issuer, lib), "write")
    before = world.reg.ledger.head()
    data, files = upload_form(make_wheel(tmp_path, PRIVATE, "2.0"))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=write)
    assert r.status_code == 403 and "write permission on repository acme/secret" in r.text, r.text
    for method, url in (("POST", f"/api/workspaces/{WS}/packages/pypi/{PRIVATE}/versions/1.0/yank"),
                        ("DELETE", f"/api/workspaces/{WS}/packages/pypi/{PRIVATE}/versions/1.0"),
                        ("DELETE", f"/api/workspaces/{WS}/packages/pypi/{PRIVATE}")):
        r = await client.request(method, url, headers=write, json={"reason": "x"})
        assert r.status_code == 403, (url, r.status_code, r.text)
    r = await client.put(f"/api/workspaces/{WS}/repositories/secret/pipeline-readers/elsewhere", headers=write)
    assert r.status_code in (403, 404), r.text  # (never more than read: granting on it is an admin's)
    assert world.reg.ledger.head() == before


async def test_a_read_scoped_minted_token_changes_nothing_even_in_its_own_repository(client, world, issuer, lib,
                                                                                      tmp_path):
    read = await minted(client, step_token(issuer, lib), "read")
    before = world.reg.ledger.head()
    data, files = upload_form(piped_wheel(tmp_path))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=read)
    assert r.status_code == 403 and "read scope" in r.text, r.text
    data, files = upload_form(make_wheel(tmp_path, "brand-new", "1.0"))  # (creating a package on publish, too)
    r = await client.post(f"/{WS}/", data=data, files=files, headers=read)
    assert r.status_code == 403, r.text
    write = await minted(client, step_token(issuer, lib), "write")
    data, files = upload_form(piped_wheel(tmp_path))
    assert (await client.post(f"/{WS}/", data=data, files=files, headers=write)).status_code == 200
    after_publish = world.reg.ledger.head()
    r = await client.post(f"/api/workspaces/{WS}/packages/pypi/acme-piped/versions/1.0/yank", headers=read,
                          json={"reason": "x"})
    assert r.status_code == 403, r.text
    assert world.reg.ledger.head() == after_publish != before
    assert (await client.get(f"/{WS}/acme-piped/", headers=read)).status_code == 200  # (it does read)


@pytest.mark.parametrize("scope", ["admin", "witness", "replica", "", 1, None])
async def test_a_mint_of_another_scope_is_refused(client, world, issuer, lib, scope):
    before = world.reg.ledger.head()
    r = await client.post("/_/oidc/mint-token", json={"token": step_token(issuer, lib), "scope": scope})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid-payload", r.text
    assert world.reg.ledger.head() == before


async def test_an_expired_minted_token_is_refused(client, world, issuer, lib):
    operations.grant_pipelines(world.reg, identity.operator(), "cli", WS, "secret", "pipeline-repo")
    snap = world.reg.snapshot()
    claims = Verifier().verify(step_token(issuer, lib), identity.trusts_for(snap, issuer.issuer_url(WS))[0][1])
    who = identity.pipeline_principal(snap, WS, claims)
    secret, record = operations.mint_pipeline_token(world.reg, who, None, lifetime=timedelta(seconds=-1), scope="read")
    assert record.scope == "read" and record.expires is not None
    r = await client.get(f"/{WS}/{PRIVATE}/", headers=as_password(secret, "__token__"))
    assert r.status_code == 401 and "expired" in r.text, r.text
