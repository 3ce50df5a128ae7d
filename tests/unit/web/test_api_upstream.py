"""The upstream settings over the API: one audited edit at a time by a workspace admin, credentials
taken and never answered back, refusals that say what to send."""

from __future__ import annotations

from registry import layout, model
from tests.support.world import WS

ADMIN, READER, OUTSIDER = "wsadmin@acme.test", "reader@acme.test", "outsider@acme.test"
URL = f"/api/workspaces/{WS}/upstream"


async def test_a_workspace_admin_edits_and_everyone_who_sees_the_workspace_reads(client, world):
    added = await client.post(URL, json={"op": "add", "name": "corp", "url": "https://corp.example/simple",
                                         "username": "bot", "password": "pa ss"}, headers=world.basic(ADMIN))
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["upstreams"] == [{"name": "corp", "url": "https://corp.example/simple/", "credentials": True,
                                  "added_by": ADMIN, "added_at": body["upstreams"][0]["added_at"]}]
    assert "pa ss" not in added.text
    for edit in ({"op": "rule", "kind": "deny", "pattern": "acme-*", "reason": "ours"},
                 {"op": "block", "name": "Requests", "version": "2.0.0", "reason": "CVE"},
                 {"op": "cooldown", "days": 7}, {"op": "exempt", "name": "certifi", "reason": "CA updates"}):
        assert (await client.post(URL, json=edit, headers=world.basic(ADMIN))).status_code == 200, edit
    seen = (await client.get(URL, headers=world.basic(READER))).json()
    assert seen["cooldown_days"] == 7 and seen["deny"][0]["name"] == "acme-*"
    assert seen["blocked"][0]["name"] == "requests" and seen["blocked"][0]["version"] == "2.0.0"
    assert seen["exempt"][0] == {"name": "certifi", "reason": "CA updates", "by": ADMIN,
                                 "at": seen["exempt"][0]["at"]}
    commit = world.reg.ledger.snapshot_at(world.reg.ledger.head())
    assert commit.get(layout.upstream(WS), model.UpstreamPolicy).cooldown_seconds == 7 * 86400
    # its settings are its members' business: not shown to whoever only reads its public repository
    outsider = await client.get(URL, headers=world.basic(OUTSIDER))
    assert outsider.status_code == 403 and "members" in outsider.json()["detail"] and "corp" not in outsider.text
    assert (await client.get(URL)).status_code == 401


async def test_refusals_say_what_to_do_and_change_nothing(client, world):
    head = world.reg.ledger.head()
    denied = await client.post(URL, json={"op": "cooldown", "days": 1}, headers=world.basic(READER))
    assert denied.status_code == 403 and "admin permission on workspace" in denied.json()["detail"]
    anonymous = await client.post(URL, json={"op": "cooldown", "days": 1})
    assert anonymous.status_code == 401
    bad = await client.post(URL, json={"op": "teleport"}, headers=world.basic(ADMIN))
    assert bad.status_code == 400 and "add, remove, rule" in bad.json()["detail"]
    for edit, words in (({"op": "add", "name": "x", "url": "ftp://x"}, "http(s) URL"),
                        ({"op": "add", "name": "x", "url": "https://u:p@x.example/simple/"}, "not in its URL"),
                        ({"op": "add", "name": "Bad Name", "url": "https://x.example/"}, "Invalid upstream name"),
                        ({"op": "rule", "kind": "deny", "pattern": "a/b", "reason": "r"}, "Invalid name pattern"),
                        ({"op": "block", "name": "x", "version": "1.0", "reason": ""}, "Give a reason"),
                        ({"op": "cooldown", "days": 9999}, "cooldown of 0"),
                        ({"op": "remove", "name": "never"}, "no upstream named")):
        answer = await client.post(URL, json=edit, headers=world.basic(ADMIN))
        assert 400 <= answer.status_code < 500 and words in answer.json()["detail"], (edit, answer.text)
    assert world.reg.ledger.head() == head


async def test_the_package_api_names_an_upstream_that_also_lists_an_owned_name(client, world, tmp_path):
    from registry import identity
    from registry.operations import upstream as verbs
    from tests.support.helpers import make_wheel
    from tests.support.upstream_index import Index, Served

    index = Index()
    try:
        index.files["acme_utils-9.0-py3-none-any.whl"] = Served(make_wheel(tmp_path, "acme-utils", "9.0").read_bytes())
        verbs.add_upstream(world.reg, identity.operator(), "cli", WS, "up", index.url)
        view = await client.get(f"/api/workspaces/{WS}/packages/pypi/acme-utils", headers=world.basic(READER))
        assert view.json()["also_published_upstream"] == "up"
        listed = await client.get(f"{URL}/also-published", headers=world.basic(READER))
        assert listed.json()["packages"] == [{"name": "acme-utils", "upstream": "up"}]
        other = await client.get(f"/api/workspaces/{WS}/packages/pypi/public-pkg", headers=world.basic(READER))
        assert other.json()["also_published_upstream"] is None
    finally:
        index.close()
