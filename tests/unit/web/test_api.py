"""The management and audit API: a permission matrix for every endpoint, deletion with storage
reclaim, yanks, history, the public index's JSON API shape, and integrity checks."""

from __future__ import annotations

import subprocess

import pygit2
import pytest
from pygit2.enums import FileMode

from registry import identity, layout, maintenance, operations
from registry.cli import main as cli_main
from registry.model import Repository, Workspace
from registry.reads import records
from tests.support.helpers import make_sdist, make_wheel
from tests.support.world import BOTH, WS, overwrite_blob, publish
from tests.unit.test_dists import wheel, zip_sdist

PRIVATE, PUBLIC = "acme-utils", "public-pkg"
PEOPLE = ["anonymous", "outsider@acme.test", "reader@acme.test", "dev@acme.test", "owner@acme.test",
          "wsadmin@acme.test", "pipeline-linked", "pipeline-other"]


@pytest.fixture
def api(world, issuer, tmp_path):
    """The world, with versions published, pipelines trusted, and credentials for everyone."""
    reg, op = world.reg, identity.operator()
    snap = reg.snapshot()
    ws_uuid = snap.get(layout.workspace(WS), Workspace).uuid
    utils_uuid = snap.get(layout.repository(WS, "utils"), Repository).uuid
    secret_uuid = snap.get(layout.repository(WS, "secret"), Repository).uuid
    operations.set_trust(reg, op, "cli", WS, issuer.issuer_url(WS))
    for name, versions in ((PRIVATE, ("1.0", "1.1", "2.0")), (PUBLIC, ("0.1",))):
        for v in versions:
            publish(reg, op, make_wheel(tmp_path, name, v))
            publish(reg, op, make_sdist(tmp_path, name, v))
    headers = {who: world.basic(who) for who in PEOPLE if "@" in who}
    headers["anonymous"] = {}
    for who, repo_uuid in (("pipeline-linked", utils_uuid), ("pipeline-other", secret_uuid)):
        token = issuer.mint(workspace=WS, workspace_uuid=ws_uuid, repository_uuid=repo_uuid)
        headers[who] = {"authorization": f"Bearer {token}"}
    world.headers = headers
    return world


def expect(table: dict[str, int]) -> list[tuple[str, int]]:
    return [(who, table[who]) for who in PEOPLE]


# Whoever may not read a package is told it doesn't exist (401 for strangers, 404 for the rest);
# only a reader learns that they may not change it.
READ_PRIVATE = {"anonymous": 401, "outsider@acme.test": 404, "reader@acme.test": 200, "dev@acme.test": 200,
                "owner@acme.test": 200, "wsadmin@acme.test": 200, "pipeline-linked": 200, "pipeline-other": 404}
READ_PUBLIC = dict.fromkeys(PEOPLE, 200)
WRITE = {"anonymous": 401, "outsider@acme.test": 404, "reader@acme.test": 403, "dev@acme.test": 200,
         "owner@acme.test": 200, "wsadmin@acme.test": 200, "pipeline-linked": 403, "pipeline-other": 403}
ADMIN = {**WRITE, "dev@acme.test": 403}

BASE = f"/api/workspaces/{WS}/packages/pypi"
READS = [
    f"{BASE}/{{pkg}}", f"{BASE}/{{pkg}}/versions/{{version}}", f"{BASE}/{{pkg}}/history",
    f"{BASE}/{{pkg}}/versions/{{version}}/history", f"/{WS}/pypi/{{pkg}}/json", f"/{WS}/pypi/{{pkg}}/{{version}}/json",
]


@pytest.mark.parametrize("url", READS)
@pytest.mark.parametrize(("who", "status"), expect(READ_PRIVATE))
async def test_reading_a_private_package(client, api, url, who, status):
    r = await client.get(url.format(pkg=PRIVATE, version="1.0"), headers=api.headers[who])
    assert r.status_code == status, r.text
    if status != 200:
        problem = r.json()
        assert r.headers["content-type"] == "application/problem+json" and problem["status"] == status
        assert problem["detail"] and (status != 401 or r.headers["www-authenticate"].startswith("Basic"))


@pytest.mark.parametrize("url", READS)
@pytest.mark.parametrize(("who", "status"), expect(READ_PUBLIC))
async def test_reading_a_public_package(client, api, url, who, status):
    r = await client.get(url.format(pkg=PUBLIC, version="0.1"), headers=api.headers[who])
    assert r.status_code == status, r.text


@pytest.mark.parametrize(("who", "status"), expect(WRITE))
async def test_deleting_a_version(client, api, who, status):
    head = api.reg.ledger.head()
    r = await client.delete(f"{BASE}/{PRIVATE}/versions/1.1", headers=api.headers[who])
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["files"] == 2 and r.json()["commit"] == api.reg.ledger.head()
        assert records.get_version(api.reg.snapshot(), WS, PRIVATE, "1.1") is None
    else:
        assert api.reg.ledger.head() == head and r.json()["detail"]


@pytest.mark.parametrize(("who", "status"), expect(WRITE))
async def test_yanking(client, api, who, status):
    r = await client.post(f"{BASE}/{PRIVATE}/versions/2.0/yank", json={"reason": "broken"}, headers=api.headers[who])
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["yanked"] is True and r.json()["yank"]["commit"] == api.reg.ledger.head()
        r = await client.delete(f"{BASE}/{PRIVATE}/versions/2.0/yank", headers=api.headers[who])
        assert r.status_code == 200 and r.json()["yanked"] is False


@pytest.mark.parametrize(("who", "status"), expect(ADMIN))
async def test_deleting_a_package(client, api, who, status):
    head = api.reg.ledger.head()
    r = await client.delete(f"{BASE}/{PRIVATE}", headers=api.headers[who])
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json() == {"kind": "package", "workspace": WS, "package": PRIVATE, "version": None,
                            "files": 6, "commit": api.reg.ledger.head()}
    else:
        assert api.reg.ledger.head() == head


CREATE = {**ADMIN, "reader@acme.test": 403}  # (an outsider isn't told the repository exists)


@pytest.mark.parametrize(("who", "status"), expect({**CREATE, "dev@acme.test": 403}))
async def test_creating_a_package(client, api, who, status):
    r = await client.post(f"/api/workspaces/{WS}/packages", json={"name": "New.Thing", "repository": "utils"},
                          headers=api.headers[who])
    expected = 201 if status == 200 else status
    assert r.status_code == expected, r.text
    if expected == 201:
        body = r.json()
        assert (body["name"], body["display_name"], body["repository"], body["your_role"]) == (
            "new-thing", "New.Thing", "utils", "admin")
        assert body["created"]["channel"] == "api" and body["created"]["commit"] == api.reg.ledger.head()


@pytest.mark.parametrize(("who", "visible"), [
    ("anonymous", [PUBLIC]), ("outsider@acme.test", [PUBLIC]), ("reader@acme.test", [PRIVATE, PUBLIC]),
    ("wsadmin@acme.test", [PRIVATE, PUBLIC, "secret-pkg"]), ("pipeline-linked", [PRIVATE, PUBLIC]),
    ("pipeline-other", [PUBLIC, "secret-pkg"]),
])
async def test_lists_show_only_what_the_caller_can_read(client, api, who, visible):
    r = await client.get(f"/api/workspaces/{WS}/packages", headers=api.headers[who])
    assert r.status_code == 200 and [p["name"] for p in r.json()["items"]] == visible


async def test_lists_by_project_and_repository_filter_and_paginate(client, api):
    h = api.headers["wsadmin@acme.test"]
    names = lambda r: [p["name"] for p in r.json()["items"]]  # noqa: E731
    assert names(await client.get(f"/api/workspaces/{WS}/projects/core/packages", headers=h)) == [PRIVATE]
    assert names(await client.get(f"/api/workspaces/{WS}/projects/LABS/packages", headers=h)) == [PUBLIC, "secret-pkg"]
    assert names(await client.get(f"/api/workspaces/{WS}/repositories/public-lib/packages", headers=h)) == [PUBLIC]
    assert names(await client.get(f"/api/workspaces/{WS}/packages?q=Acme.Utils", headers=h)) == [PRIVATE]
    r = await client.get(f"/api/workspaces/{WS}/packages?per_page=2&type=pypi", headers=h)
    page = r.json()
    assert (page["total"], len(page["items"]), page["page"]) == (3, 2, 1) and "page=2" in page["next"]
    second = (await client.get(page["next"].replace("http://testserver.local", ""), headers=h)).json()
    assert [p["name"] for p in second["items"]] == ["secret-pkg"] and second["next"] is None
    for bad in ("type=npm", "per_page=0", "page=0", "per_page=9999"):
        r = await client.get(f"/api/workspaces/{WS}/packages?{bad}", headers=h)
        assert r.status_code == 400 and r.json()["detail"], bad
    assert (await client.get(f"/api/workspaces/{WS}/packages?page=x", headers=h)).status_code == 400
    assert (await client.get(f"/api/workspaces/{WS}/projects/NOPE/packages", headers=h)).status_code == 404
    assert (await client.get(f"/api/workspaces/{WS}/repositories/nope/packages", headers=h)).status_code == 404
    assert (await client.get("/api/workspaces/nowhere/packages", headers=h)).status_code == 404


async def test_package_and_version_details(client, api):
    h = api.headers["dev@acme.test"]
    r = await client.get(f"{BASE}/Acme_Utils", headers=h, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"{BASE}/{PRIVATE}"
    pkg = (await client.get(f"{BASE}/{PRIVATE}", headers=h)).json()
    assert (pkg["workspace"], pkg["project"], pkg["repository"], pkg["public"], pkg["your_role"]) == (
        WS, "CORE", "utils", False, "write")
    assert [v["version"] for v in pkg["versions"]] == ["2.0", "1.1", "1.0"]
    assert pkg["created"]["by"] == "operator@localhost" and len(pkg["created"]["commit"]) == 40
    v = (await client.get(f"{BASE}/{PRIVATE}/versions/1.0", headers=h)).json()
    assert [f["filename"] for f in v["files"]] == ["acme_utils-1.0-py3-none-any.whl", "acme_utils-1.0.tar.gz"]
    f = v["files"][0]
    assert f["publisher"] == {"kind": "person", "by": "operator@localhost", "channel": "upload", "token": None,
                              "pipeline": None}
    assert (f["url"].endswith(f"/{WS}/{PRIVATE}/1.0/acme_utils-1.0-py3-none-any.whl")
            and f["metadata_url"].endswith(".metadata"))
    assert len(f["commit"]) == 40 and f["commit"] != v["files"][1]["commit"] and v["created"]["commit"] == f["commit"]
    assert v["links"]["simple"].endswith(f"/{WS}/{PRIVATE}/")
    r = await client.get(f"{BASE}/{PRIVATE}/versions/9.9", headers=h)
    assert r.status_code == 404 and "no version '9.9'" in r.json()["detail"]


async def test_publishers_are_told_apart(client, api, tmp_path, issuer):
    reg = api.reg
    publish(reg, api.principal("dev@acme.test"), make_wheel(tmp_path, PRIVATE, "3.0"))
    # a pipeline of the linked repository, through the upload endpoint with its OIDC token
    from tests.support.world import upload_form
    data, files = upload_form(make_sdist(tmp_path, PRIVATE, "3.0"))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=api.headers["pipeline-linked"])
    assert r.status_code == 200, r.text
    v = (await client.get(f"{BASE}/{PRIVATE}/versions/3.0", headers=api.headers["reader@acme.test"])).json()
    kinds = {f["filename"]: f["publisher"] for f in v["files"]}
    token_pub = kinds["acme_utils-3.0-py3-none-any.whl"]
    assert token_pub["kind"] == "api-token" and token_pub["by"] == "dev@acme.test" and token_pub["token"]
    pipe_pub = kinds["acme_utils-3.0.tar.gz"]
    assert pipe_pub["kind"] == "pipeline" and pipe_pub["pipeline"]["repository_uuid"].startswith("{")
    history = (await client.get(f"{BASE}/{PRIVATE}/versions/3.0/history",
                                headers=api.headers["reader@acme.test"])).json()
    assert history["items"][0]["pipeline"]["pipeline_uuid"] == pipe_pub["pipeline"]["pipeline_uuid"]
    assert history["items"][1]["token"] == token_pub["token"] and history["items"][1]["channel"] == "upload"


async def test_json_api_shape(client, api):
    h = api.headers["reader@acme.test"]
    operations.yank(api.reg, identity.operator(), "cli", WS, PRIVATE, "2.0", "bad")
    r = await client.get(f"/{WS}/pypi/{PRIVATE}/json", headers=h)
    assert (r.status_code == 200 and r.headers["content-type"] == "application/json"
            and int(r.headers["x-pypi-last-serial"]) > 0)
    doc = r.json()
    assert set(doc) == {"info", "last_serial", "releases", "urls", "vulnerabilities", "ownership"}
    assert doc["info"]["version"] == "1.1"  # the latest that isn't yanked
    # the display name, as the public index
    assert doc["info"]["name"] == "Acme.Utils" and doc["info"]["summary"] == "bench"
    assert sorted(doc["releases"]) == ["1.0", "1.1", "2.0"]
    f = doc["urls"][0]
    assert set(f) >= {"comment_text", "core-metadata", "digests", "downloads", "filename", "has_sig", "md5_digest",
                      "packagetype", "python_version", "requires_python", "size", "upload_time",
                      "upload_time_iso_8601", "url", "yanked", "yanked_reason"}
    assert set(f["digests"]) == {"md5", "sha256", "blake2b_256"} and f["downloads"] == -1
    release = (await client.get(f"/{WS}/pypi/{PRIVATE}/2.0/json", headers=h)).json()
    assert "releases" not in release or release["releases"] is None
    assert release["info"]["yanked"] is True and release["info"]["yanked_reason"] == "bad"
    assert release["urls"][0]["yanked"] is True
    r = await client.get(f"/{WS}/pypi/Acme.Utils/json", headers=h, follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"/{WS}/pypi/{PRIVATE}/json"
    assert (await client.get(f"/{WS}/pypi/{PRIVATE}/7.7/json", headers=h)).status_code == 404
    assert (await client.get(f"/{WS}/pypi/nope/json", headers=h)).status_code == 404


async def test_what_was_odd_about_a_file_is_shown_with_it(client, api, tmp_path):
    # as setuptools 69 writes it (License-File under 2.1, the dotted name kept), plus fields that don't parse
    text = ("Metadata-Version: 2.1\nName: Acme.Utils\nVersion: 4.0\nLicense-File: LICENSE\n"
            "Description-Content-Type: text/foo\nProvides-Extra: not valid!\n")
    publish(api.reg, identity.operator(), wheel(tmp_path, "Acme.Utils-4.0-py3-none-any.whl", metadata=text))
    publish(api.reg, identity.operator(), zip_sdist(tmp_path, "Acme.Utils-4.0.zip", "Acme.Utils-4.0", name="Acme.Utils",
                                                    version="4.0"))
    h = api.headers["reader@acme.test"]
    v = (await client.get(f"{BASE}/{PRIVATE}/versions/4.0", headers=h)).json()
    warnings = {f["filename"]: f["warnings"] for f in v["files"]}
    assert warnings["Acme.Utils-4.0-py3-none-any.whl"][0] == (
        "License-File is a Metadata-Version 2.4 field; this file declares 2.1.")
    assert len(warnings["Acme.Utils-4.0-py3-none-any.whl"]) == 4  # and the two fields, and the wheel's name
    assert (len(warnings["Acme.Utils-4.0.zip"]) == 1
            and "a .zip as older tools wrote" in warnings["Acme.Utils-4.0.zip"][0])
    older = (await client.get(f"{BASE}/{PRIVATE}/versions/1.0", headers=h)).json()
    assert [f["warnings"] for f in older["files"]] == [[], []]
    # the public index's JSON shape has no place for them; its fields that don't parse read as null
    info = (await client.get(f"/{WS}/pypi/{PRIVATE}/4.0/json", headers=h)).json()["info"]
    assert (info["description_content_type"], info["provides_extra"],
            info["license_files"]) == (None, None, ["LICENSE"])


async def test_a_package_named_pypi_still_works(client, world, tmp_path):
    reg, op = world.reg, identity.operator()
    operations.create_package(reg, op, "cli", WS, "pypi", "public-lib")
    wheel = make_wheel(tmp_path, "pypi", "1.0")
    publish(reg, op, wheel)
    assert (await client.get(f"/{WS}/pypi/")).status_code == 200
    assert (await client.get(f"/{WS}/pypi/1.0/{wheel.name}")).content == wheel.read_bytes()
    assert (await client.get(f"/{WS}/pypi/pypi/json")).json()["info"]["version"] == "1.0"


async def test_openapi_document(client):
    r = await client.get("/api/schema/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    assert "/api/workspaces/{ws}/packages/pypi/{name}/versions/{version}" in paths
    assert "delete" in paths["/api/workspaces/{ws}/packages/pypi/{name}"]
    assert "VersionView" in doc["components"]["schemas"] and "basic" in doc["components"]["securitySchemes"]
    assert not any(p.startswith("/{ws}/{project}") for p in paths)  # the index protocol isn't the management API


# --- deletion and storage ------------------------------------------------------------------------


@BOTH
async def test_delete_then_gc_frees_the_bytes_and_keeps_the_history(client, api):
    reg = api.reg
    h = api.headers["dev@acme.test"]
    gone = records.get_version(reg.snapshot(), WS, PRIVATE, "1.1")
    kept = records.get_version(reg.snapshot(), WS, PRIVATE, "1.0")
    for f in gone.files:  # its core metadata was asked for: cached beside it, and freed with it
        records.core_metadata(reg, f)
    assert (await client.delete(f"{BASE}/{PRIVATE}/versions/1.1", headers=h)).status_code == 200
    assert all(reg.blobs.exists(f.sha256) for f in gone.files)  # freed "soon after", not at once
    done = maintenance.collect(reg)
    blobs = {f.sha256 for f in gone.files} | {f.metadata_sha256 for f in gone.files}  # files and core metadata
    assert done.freed == len(blobs) and done.repacked
    assert not any(reg.blobs.exists(f.sha256) or reg.blobs.exists(f.metadata_sha256) for f in gone.files)
    assert all(reg.blobs.exists(f.sha256) for f in kept.files)
    history = (await client.get(f"{BASE}/{PRIVATE}/versions/1.1/history", headers=h)).json()
    assert [i["action"].split(" (")[0] for i in history["items"]][:1] == [f"delete {PRIVATE} 1.1"]
    assert len(history["items"]) == 3  # two publishes and the delete, still answerable
    page = (await client.get(f"/{WS}/{PRIVATE}/", headers=h)).json()
    assert page["versions"] == ["1.0", "2.0"]
    for f in kept.files:
        r = await client.get(f"/{WS}/{PRIVATE}/1.0/{f.filename}", headers=h)
        assert r.status_code == 200 and len(r.content) == f.size
    from tests.support.world import upload_form
    assert api.reg.blobs.exists(kept.files[0].sha256)  # re-uploading the deleted filename is refused
    data, files = upload_form(make_wheel(api.reg.settings.data_path, PRIVATE, "1.1"))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=h)
    assert r.status_code == 400 and "previously used by a file that has since been deleted" in r.text
    assert maintenance.verify(reg).ok


@BOTH
def test_gc_keeps_blobs_within_their_grace_period(api):
    reg = api.reg
    gone = records.get_version(reg.snapshot(), WS, PRIVATE, "1.0")
    for f in gone.files:
        records.core_metadata(reg, f)
    operations.delete_version(reg, identity.operator(), "cli", WS, PRIVATE, "1.0")
    done = maintenance.collect(reg, grace_seconds=3600, repack=False)
    blobs = {f.sha256 for v in (gone,) for f in v.files} | {f.metadata_sha256 for f in gone.files}
    assert done.freed == 0 and done.kept_in_grace >= len(blobs)
    assert all(reg.blobs.exists(sha) for sha in blobs)


@BOTH
def test_gc_never_frees_a_blob_a_racing_publish_references(api, tmp_path, monkeypatch):
    """An orphan blob (a publish whose commit never landed) is re-adopted by a retry of the same
    upload while the collector runs: the retry's commit lands between the collector's snapshot and
    its deletions (just before it holds what it deletes: a bucket's objects by their claims, then
    the ledger's lock). The blob must survive."""
    reg = api.reg
    wheel = make_wheel(tmp_path, PRIVATE, "4.0")
    with reg.blobs.stage() as staged:  # the orphan: adopted, never committed
        staged.write(wheel.read_bytes())
        orphan = reg.blobs.adopt(staged)
    real_held = reg.blobs.held

    def held_after_a_racing_publish(*args, **kwargs):
        monkeypatch.setattr(reg.blobs, "held", real_held)
        publish(reg, identity.operator(), wheel)  # the retry lands just before the collector holds its candidates
        return real_held(*args, **kwargs)

    monkeypatch.setattr(reg.blobs, "held", held_after_a_racing_publish)
    maintenance.collect(reg, repack=False)
    assert reg.blobs.exists(orphan)
    assert records.get_version(reg.snapshot(), WS, PRIVATE, "4.0").files[0].sha256 == orphan
    assert maintenance.verify(reg).ok


# --- integrity -----------------------------------------------------------------------------------


@BOTH
def test_verify_finds_every_kind_of_problem(api, capsys):
    reg = api.reg
    data = ["--data", str(reg.settings.data_path)]
    assert cli_main([*data, "verify"]) == 0
    assert "OK" in capsys.readouterr().out
    version = records.get_version(reg.snapshot(), WS, PRIVATE, "1.0")
    sha = version.files[0].sha256
    overwrite_blob(reg, sha, b"x" * reg.blobs.size(sha))  # same size, other bytes: only hashing can tell
    reg.blobs.delete(version.files[1].sha256)
    # a record hand-edited into something its schema refuses, committed behind the registry's back
    repo = reg.ledger.repo()
    path = layout.repository(WS, "utils")
    bad = repo.create_blob(reg.snapshot().raw(path).replace(b'"project": "CORE"', b'"project": 42'))
    tree = reg.snapshot().tree
    index = pygit2.Index()
    index.read_tree(tree)
    index.add(pygit2.IndexEntry(path, bad, FileMode.BLOB))
    new_tree = index.write_tree(repo)
    sig = pygit2.Signature("vandal", "vandal@example.com")
    hand_edit = repo.create_commit("refs/heads/main", sig, sig, "hand edit\n", new_tree, [repo.head.target])
    assert cli_main([*data, "verify"]) == 1
    out = capsys.readouterr().out
    assert f"{version.files[0].sha256} is corrupt" in out
    assert f"{version.files[1].sha256} is missing" in out
    assert "utils.json: does not match the Repository schema" in out
    assert f"signatures: commit {hand_edit} is not signed" in out  # (unsigned, behind the registry's back)
    assert "4 problems" in out


@BOTH
def test_gc_command(api, capsys):
    version = records.get_version(api.reg.snapshot(), WS, PUBLIC, "0.1")
    blobs = {f.sha256 for f in version.files} | {f.metadata_sha256 for f in version.files}
    for f in version.files:
        records.core_metadata(api.reg, f)
    operations.delete_package(api.reg, identity.operator(), "cli", WS, PUBLIC)
    assert cli_main(["--data", str(api.reg.settings.data_path), "gc"]) == 0
    assert f"freed {len(blobs)} blobs" in capsys.readouterr().out
    assert not any(api.reg.blobs.exists(sha) for sha in blobs)
    subprocess.run(["git", "-C", str(api.reg.ledger.path), "fsck", "--strict"], check=True, capture_output=True)


async def test_the_api_explorer_loads_nothing_from_outside(client):
    """An offline network gets a working Swagger UI: every asset it names is served by us."""
    import re

    r = await client.get("/api/schema/swagger")
    assert r.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assert len(assets) >= 4 and all(a.startswith("/_/static/") for a in assets), assets
    for asset in assets:
        got = await client.get(asset)
        assert got.status_code == 200 and len(got.content) > 500, asset


async def test_a_yank_needs_no_body_and_a_malformed_one_is_told_in_words(client, api):
    url = f"{BASE}/{PRIVATE}/versions/2.0/yank"
    headers = api.headers["dev@acme.test"]
    r = await client.post(url, headers=headers)
    assert r.status_code == 200 and r.json()["yanked"] is True and r.json()["yanked_reason"] == ""
    await client.delete(url, headers=headers)
    r = await client.post(url, headers={**headers, "content-type": "application/json"}, content=b"{oops")
    assert r.status_code == 400 and r.json()["detail"].startswith("The request body is not valid JSON")
    assert '{"reason": "..."}' in r.json()["detail"]
    r = await client.post(url, headers=headers, json={"reason": 5})
    assert r.status_code == 400 and "reason" in r.json()["detail"] and "Expected `str`" in r.json()["detail"]
