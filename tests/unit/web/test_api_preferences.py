"""A person's default workspace over the API: their own only; every refusal a problem document that
changes nothing."""

from __future__ import annotations

from registry import identity, operations
from tests.support.world import WS

URL = "/api/users/{}/default-workspace"


async def test_a_person_reads_sets_and_clears_their_default_workspace(client, world):
    me = world.basic("reader@acme.test")
    r = await client.get(URL.format("reader@acme.test"), headers=me)
    assert r.status_code == 200 and r.json() == {"user": "reader@acme.test", "workspace": None}
    r = await client.put(URL.format("reader@acme.test"), json={"workspace": WS}, headers=me)
    assert r.status_code == 200 and r.json() == {"user": "reader@acme.test", "workspace": WS}
    assert (await client.get(URL.format("reader@acme.test"), headers=me)).json()["workspace"] == WS
    r = await client.delete(URL.format("reader@acme.test"), headers=me)
    assert r.status_code == 200 and r.json()["workspace"] is None


async def test_every_refusal_says_why_and_changes_nothing(client, world):
    operations.create_workspace(world.reg, identity.operator(), "cli", "beta")
    cases = [  # (headers, method, email, body, status, words)
        ({}, "put", "reader@acme.test", {"workspace": WS}, 401, "requires credentials"),
        (world.basic("dev@acme.test"), "put", "reader@acme.test", {"workspace": WS}, 403, "of your own"),
        (world.basic("dev@acme.test"), "get", "reader@acme.test", None, 403, "of your own"),
        (world.basic("reader@acme.test"), "put", "reader@acme.test", {"workspace": "beta"}, 404, "visible to you"),
        (world.basic("reader@acme.test"), "put", "reader@acme.test", {"workspace": "../x"}, 400, "slug"),
        (world.basic("reader@acme.test"), "put", "reader@acme.test", {"ws": WS}, 400, "workspace"),
        (world.basic("dev-readonly"), "put", "dev@acme.test", {"workspace": WS}, 403, "read scope"),
    ]
    for headers, method, email, body, status, words in cases:
        head = world.reg.ledger.head()
        kwargs = {"json": body} if body is not None else {}
        r = await client.request(method.upper(), URL.format(email), headers=headers, **kwargs)
        assert r.status_code == status and words in r.text, (method, email, body, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert world.reg.ledger.head() == head
