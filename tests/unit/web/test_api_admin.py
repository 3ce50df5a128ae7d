"""Administering over the API: a workspace admin who is not the operator does every flow with their
own token; a repository admin manages their repository; everyone else is refused, and a refusal
changes nothing."""

from __future__ import annotations

from registry import layout, model
from tests.support.world import WS

ADMIN, OWNER, DEV, READER = "wsadmin@acme.test", "owner@acme.test", "dev@acme.test", "reader@acme.test"
OUTSIDER = "outsider@acme.test"
API = f"/api/workspaces/{WS}"


async def test_a_workspace_admin_administers_people_and_tenancy_with_their_own_token(client, world):
    h = world.basic(ADMIN)

    async def ok(method, url, status=200, **kwargs):
        answer = await client.request(method, url, headers=h, **kwargs)
        assert answer.status_code == status, (method, url, answer.text)
        return answer.json()

    members = await ok("GET", f"{API}/members")
    assert [m["email"] for m in members["items"]] == [DEV, OWNER, "projreader@acme.test", READER, ADMIN]
    assert members["items"][0]["grants"] == [{"workspace": WS, "where": "repository", "target": "utils", "user": DEV,
                                              "role": "write"}]
    assert (await ok("POST", f"{API}/projects", 201, json={"key": "ops", "name": "Operations"}))["key"] == "OPS"
    made = await ok("POST", f"{API}/repositories", 201, json={"slug": "deploy", "project": "OPS"})
    assert made["project"] == "OPS" and not made["public"]
    assert await ok("PUT", f"{API}/projects/OPS/grants/{DEV}", json={"role": "read"}) == {
        "workspace": WS, "where": "project", "target": "OPS", "user": DEV, "role": "read"}
    await ok("PUT", f"{API}/repositories/deploy/grants/{OUTSIDER}", json={"role": "write"})
    await ok("PUT", f"{API}/admins/{OWNER}")
    grants = await ok("GET", f"{API}/grants", params={"project": "OPS"})
    assert [(g["where"], g["target"], g["user"], g["role"]) for g in grants["items"]] == [
        ("project", "OPS", DEV, "read"), ("repository", "deploy", OUTSIDER, "write")]
    assert [g["target"] for g in (await ok("GET", f"{API}/grants", params={"user": OWNER}))["items"]] == ["", "utils"]
    await ok("DELETE", f"{API}/admins/{OWNER}")
    await ok("DELETE", f"{API}/repositories/deploy/grants/{OUTSIDER}")
    removed = await ok("DELETE", f"{API}/members/{DEV}")
    assert sorted(g["target"] for g in removed["grants"]) == ["OPS", "utils"]
    assert (await ok("GET", f"{API}/grants", params={"user": DEV}))["items"] == []
    assert (await ok("PATCH", f"{API}/projects/OPS", json={"name": "Ops"}))["name"] == "Ops"
    renamed = await ok("PATCH", f"{API}/repositories/utils", json={"slug": "tools"})
    assert renamed["slug"] == "tools"
    package = (await client.get(f"/api/workspaces/{WS}/packages/pypi/acme-utils", headers=h)).json()
    assert package["repository"] == "tools"
    assert (await ok("PATCH", API, json={"name": "Acme Corp"}))["name"] == "Acme Corp"
    assert [p["key"] for p in (await ok("GET", f"{API}/projects"))["items"]] == ["CORE", "LABS", "OPS"]
    assert "deploy" in [r["slug"] for r in (await ok("GET", f"{API}/repositories"))["items"]]
    assert (await ok("DELETE", f"{API}/repositories/deploy"))["kind"] == "repository"
    assert (await ok("DELETE", f"{API}/projects/OPS"))["kind"] == "project"
    users = await ok("GET", "/api/users")
    assert OUTSIDER not in [u["email"] for u in users["items"]] and ADMIN in [u["email"] for u in users["items"]]
    shown = await ok("GET", f"/api/users/{READER}")
    assert shown["state"] == "active" and shown["tokens"] is None
    snap = world.reg.snapshot()
    assert snap.get(layout.workspace(WS), model.Workspace).name == "Acme Corp"
    assert not snap.exists(layout.project(WS, "OPS"))


async def test_a_repository_admin_manages_their_repository(client, world):
    h = world.basic(OWNER)
    listed = await client.get(f"{API}/grants", params={"repository": "utils"}, headers=h)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 3
    assert (await client.put(f"{API}/repositories/utils/grants/{OUTSIDER}", json={"role": "read"},
                             headers=h)).status_code == 200
    assert (await client.delete(f"{API}/repositories/utils/grants/{OUTSIDER}", headers=h)).status_code == 200
    on = await client.patch(f"{API}/repositories/utils", json={"create_packages_on_publish": True}, headers=h)
    assert on.status_code == 200 and on.json()["create_packages_on_publish"] is True
    assert (await client.patch(f"{API}/repositories/utils", json={"slug": "tools"}, headers=h)).status_code == 200
    tools = world.reg.snapshot().get(layout.repository(WS, "tools"), model.Repository)
    assert tools is not None and tools.create_packages_on_publish


async def test_each_flow_refused_to_whoever_may_not_changes_nothing(client, world):
    head = world.reg.ledger.head()
    changes = [
        ("PUT", f"{API}/admins/{DEV}", None), ("DELETE", f"{API}/admins/{ADMIN}", None),
        ("PUT", f"{API}/projects/CORE/grants/{OUTSIDER}", {"role": "read"}),
        ("DELETE", f"{API}/projects/CORE/grants/projreader@acme.test", None),
        ("PUT", f"{API}/repositories/utils/grants/{OUTSIDER}", {"role": "read"}),
        ("DELETE", f"{API}/repositories/utils/grants/{DEV}", None),
        ("DELETE", f"{API}/members/{DEV}", None),
        ("POST", f"{API}/projects", {"key": "X"}), ("PATCH", f"{API}/projects/CORE", {"name": "X"}),
        ("DELETE", f"{API}/projects/CORE", None),
        ("POST", f"{API}/repositories", {"slug": "x", "project": "CORE"}),
        ("PATCH", f"{API}/repositories/utils", {"slug": "x"}), ("DELETE", f"{API}/repositories/utils", None),
        ("PATCH", f"{API}/repositories/utils", {"create_packages_on_publish": True}),
        ("PATCH", API, {"name": "X"}), ("DELETE", API, None),
        ("PATCH", f"/api/users/{OWNER}", {"name": "X"}),
    ]
    reads = [f"{API}/members", f"{API}/grants", "/api/users", f"/api/users/{OWNER}"]
    for who in (READER, DEV, OUTSIDER):
        for method, url, body in changes:
            answer = await client.request(method, url, json=body, headers=world.basic(who))
            assert answer.status_code in (403, 404), (who, method, url, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
            assert answer.json()["detail"], answer.text
        for url in reads:
            answer = await client.get(url, headers=world.basic(who))
            assert answer.status_code in (403, 404), (who, url, answer.text)
    for method, url, body in changes:
        assert (await client.request(method, url, json=body)).status_code == 401, (method, url)
    assert world.reg.ledger.head() == head


async def test_bad_input_and_impossible_changes_are_clear_4xx_and_change_nothing(client, world):
    h = world.basic(ADMIN)
    head = world.reg.ledger.head()
    cases = [
        ("PUT", f"{API}/projects/CORE/grants/{DEV}", {"role": "owner"}, 400, "role"),
        ("PUT", f"{API}/repositories/utils/grants/nobody@acme.test", {"role": "read"}, 404, "does not exist"),
        ("PUT", f"{API}/repositories/utils/grants/{DEV}", {"role": "write"}, 409, "already has write"),
        ("DELETE", f"{API}/repositories/secret/grants/{DEV}", None, 404, "has no grant"),
        ("DELETE", f"{API}/repositories/utils", None, 409, "registry package delete acme NAME"),
        ("DELETE", f"{API}/projects/LABS", None, 409, "registry repo delete acme/REPO"),
        ("DELETE", API, None, 409, "Remove them first"),
        ("PATCH", API, {"slug": "other"}, 400, "slug can't change"),
        ("PATCH", f"{API}/repositories/utils", {}, 400, "Give what to change"),
        ("PATCH", f"{API}/repositories/utils", {"slug": "secret"}, 409, "already exists"),
        ("POST", f"{API}/projects", {"key": "core"}, 409, "already exists"),
        ("POST", f"{API}/repositories", {"slug": "x", "project": "NOPE"}, 404, "registry project create"),
    ]
    for method, url, body, status, words in cases:
        answer = await client.request(method, url, json=body, headers=h)
        assert answer.status_code == status and words in answer.json()["detail"], (method, url, answer.text)
    assert world.reg.ledger.head() == head


async def test_a_person_sees_and_renames_themself(client, world):
    h = world.basic(DEV)
    me = await client.get(f"/api/users/{DEV}", headers=h)
    assert me.status_code == 200 and me.json()["tokens"] == 2
    renamed = await client.patch(f"/api/users/{DEV}", json={"name": "Dev Eloper"}, headers=h)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Dev Eloper"
