"""Retention policies and usage over the API: a repository admin sets and removes a policy, the GET
answers the dry run (what would go, why) and changes nothing; a bad body is a 400 that changes
nothing; usage is the workspace admins'."""

from __future__ import annotations

from registry import identity, operations
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

API = f"/api/workspaces/{WS}"


async def test_a_policy_over_the_api_and_its_dry_run(client, world, tmp_path):
    reg = world.reg
    for v in ("1.0", "1.1", "1.2"):
        publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Acme.Utils", v))
    h = world.basic("owner@acme.test")
    answer = await client.put(f"{API}/retention/two", json={"repository": "utils", "keep_newest": 2,
                                                             "protect_environments": ["Production"]}, headers=h)
    assert answer.status_code == 200, answer.text
    assert answer.json()["keep_newest"] == 2 and "keep the newest 2" in answer.json()["described"]
    head = reg.ledger.head()
    shown = (await client.get(f"{API}/retention", headers=h)).json()
    assert reg.ledger.head() == head
    assert [(d["package"], d["version"], d["policy"]) for d in shown["deletions"]] == [("acme-utils", "1.0", "two")]
    for body in ({"repository": "utils"}, {"keep_newest": 2}, {"repository": "utils", "keep_newest": "2"},
                 {"repository": "utils", "keep_newest": 2, "extra": 1}, [1]):
        answer = await client.put(f"{API}/retention/bad", json=body, headers=h)
        assert answer.status_code == 400, (body, answer.text)
    answer = await client.put(f"{API}/retention/two", json={"repository": "utils", "keep_newest": 1},
                              headers=world.basic("dev@acme.test"))
    assert answer.status_code == 403
    assert reg.ledger.head() == head
    assert (await client.delete(f"{API}/retention/two", headers=h)).status_code == 200
    assert (await client.get(f"{API}/retention", headers=h)).json()["policies"] == []


async def test_policies_are_shown_to_the_admins_of_what_they_cover(client, world, tmp_path):
    """A workspace admin sees every policy and the whole plan; a repository admin the policies and
    plan of their repositories (not another's slug, admins or versions); anyone else a refusal
    that says whose they are, or the answer for a missing workspace."""
    reg, op = world.reg, identity.operator()
    for v in ("1.0", "1.1"):
        publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Acme.Utils", v))
        publish(reg, op, make_wheel(tmp_path, "Secret.Pkg", v))
    operations.set_retention(reg, op, "cli", WS, "utils-one", repository="utils", keep_newest=1)
    operations.set_retention(reg, op, "cli", WS, "secret-one", repository="secret", keep_newest=1)

    async def shown(who):
        answer = await client.get(f"{API}/retention", headers=world.basic(who))
        assert answer.status_code == 200, answer.text
        got = answer.json()
        return {p["name"] for p in got["policies"]}, {(d["package"], d["version"]) for d in got["deletions"]}

    assert await shown("wsadmin@acme.test") == ({"utils-one", "secret-one"},
                                                {("acme-utils", "1.0"), ("secret-pkg", "1.0")})
    assert await shown("owner@acme.test") == ({"utils-one"}, {("acme-utils", "1.0")})
    # (the workspace has a public repository: everyone signed in sees it, so is told whose they are)
    for who in ("reader@acme.test", "dev@acme.test", "projreader@acme.test", "outsider@acme.test"):
        answer = await client.get(f"{API}/retention", headers=world.basic(who))
        assert answer.status_code == 403 and "admins" in answer.json()["detail"], (who, answer.text)
        assert "secret" not in answer.text
    answer = await client.get("/api/workspaces/nowhere/retention", headers=world.basic("owner@acme.test"))
    assert answer.status_code == 404
    assert (await client.get(f"{API}/retention")).status_code == 401


async def test_usage_is_the_workspace_admins(client, world, tmp_path):
    publish(world.reg, world.principal("dev@acme.test"), wheel := make_wheel(tmp_path, "Acme.Utils", "1.0"))
    operations.set_quota(world.reg, identity.operator(), "cli", WS, 10**6)
    answer = await client.get(f"{API}/usage", headers=world.basic("wsadmin@acme.test"))
    assert answer.status_code == 200
    size = wheel.stat().st_size
    assert answer.json() == {"workspace": WS, "bytes": size, "files": 1, "quota_bytes": 10**6,
                             "repositories": {"utils": size, "public-lib": 0, "secret": 0},
                             "packages": {"acme-utils": size, "public-pkg": 0, "secret-pkg": 0}}
    assert (await client.get(f"{API}/usage", headers=world.basic("owner@acme.test"))).status_code == 403
    assert (await client.get(f"{API}/usage")).status_code == 401


async def test_the_servers_last_run_is_shown_its_counts_to_the_workspace_admins_only(client, world, tmp_path):
    from registry import retention_runs

    reg = world.reg
    for v in ("1.0", "1.1", "1.2"):
        publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Acme.Utils", v))
    operations.set_retention(reg, world.principal("owner@acme.test"), "api", WS, "two", repository="utils",
                             keep_newest=2)
    shown = (await client.get(f"{API}/retention", headers=world.basic("wsadmin@acme.test"))).json()["schedule"]
    assert shown == {"apply": "off", "interval_seconds": 86400, "next_run": None, "last_run_started": None,
                     "last_run_finished": None, "deleted": None, "refused": None, "refusals": [], "failed": None}
    run = retention_runs.run_once(reg)  # (a run from when the setting was on: still shown)
    retention_runs.save(reg.settings, run)
    shown = (await client.get(f"{API}/retention", headers=world.basic("wsadmin@acme.test"))).json()["schedule"]
    assert (shown["deleted"], shown["refused"], shown["failed"]) == (1, 0, None)
    assert shown["last_run_started"].startswith(run.started.isoformat()[:19]) and shown["next_run"] is None
    mine = (await client.get(f"{API}/retention", headers=world.basic("owner@acme.test"))).json()["schedule"]
    assert mine["last_run_started"] == shown["last_run_started"] and mine["deleted"] is None
