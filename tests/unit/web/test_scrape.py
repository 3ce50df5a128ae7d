"""GET /_/metrics in-process (registry/web/scrape.py): who may read it under each setting, every
refusal saying what to do; routes counted by their template, so no path a client makes up adds a
series; the gauges read at the scrape."""

from __future__ import annotations

import secrets

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from registry import identity, operations
from registry.datadir import Registry
from registry.web.app import create_asgi
from tests.support.world import WS


def _series(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _witness(world) -> dict[str, str]:
    op = identity.operator()
    operations.create_user(world.reg, op, "cli", "scraper@acme.test")
    world.tokens["scraper@acme.test"], _ = operations.create_token(world.reg, op, "cli", "scraper@acme.test", "witness")
    return world.basic("scraper@acme.test")


async def _client(world, **settings):
    chosen = msgspec.structs.replace(world.reg.settings, **settings)
    return AsyncTestClient(app=create_asgi(chosen, Registry.open(chosen)))


@pytest.mark.parametrize("mode", ["loopback", "token"])
async def test_only_a_witness_or_replica_token_reads_them_from_elsewhere_and_each_refusal_says_how(world, mode):
    scraper = _witness(world)
    async with await _client(world, metrics=mode) as c:  # (the test client is not on the loopback)
        anonymous = await c.get("/_/metrics")
        assert anonymous.status_code == 401 and "--witness" in anonymous.text
        assert ("own host" in anonymous.text) == (mode == "loopback")
        for who in ("wsadmin@acme.test", "dev@acme.test"):
            refused = await c.get("/_/metrics", headers=world.basic(who))
            assert refused.status_code == 403 and "witness or replica token" in refused.text
        wrong = await c.get("/_/metrics", headers={"authorization": "Basic " + "eDp5"})  # x:y
        assert wrong.status_code == 401
        r = await c.get("/_/metrics", headers=scraper)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert r.headers["cache-control"] == "no-store"
        assert ("registry_ledger_journal_bytes", frozenset()) in _series(r.text)


@pytest.mark.parametrize(("given", "public_url", "local"), [
    (None, None, 200), (None, "https://pypi.example.com", 401),  # (a public URL: behind a proxy)
    ("loopback", "https://pypi.example.com", 200), ("token", None, 401), ("off", None, 404)])
async def test_a_request_from_this_host_is_let_in_only_under_loopback_which_a_public_url_turns_off(
        world, given, public_url, local):
    """A same-host proxy that adds no forwarding header makes every request it passes on look like
    this host's: with a public URL set (behind a proxy) and no REGISTRY_METRICS, only a token reads them."""
    from tests.support.asgi import call

    chosen = msgspec.structs.replace(world.reg.settings, metrics=given, public_url=public_url)
    app = create_asgi(chosen, Registry.open(chosen))
    plain = await call(app, "GET", "/_/metrics")  # (from 127.0.0.1)
    assert plain.status == local, plain.body
    forwarded = await call(app, "GET", "/_/metrics", headers=[("x-forwarded-for", "203.0.113.9")])
    assert forwarded.status == (404 if given == "off" else 401)
    if local == 401:
        assert b"--witness" in plain.body


async def test_off_is_a_404_that_says_so_even_to_a_witness(world):
    scraper = _witness(world)
    async with await _client(world, metrics="off") as c:
        for headers in ({}, scraper):
            r = await c.get("/_/metrics", headers=headers)
            assert r.status_code == 404 and "REGISTRY_METRICS=off" in r.text


async def _junk_round(c) -> int:
    """Requests to paths of every shape (unknown, deep, a project, a file, a UI page, an API one), with
    made-up methods too; how many."""
    for _ in range(40):
        junk = secrets.token_hex(6)
        for path in (f"/{junk}", f"/{WS}/{junk}/", f"/{WS}/{junk}/{junk}", f"/-/{junk}", f"/api/{junk}",
                     f"/{junk}/{junk}/{junk}/{junk}/{junk}", f"/_/{junk}"):
            await c.get(path, follow_redirects=False)
        await c.request("X" + secrets.token_hex(3).upper(), f"/{junk}")
    return 40 * 8


def _requests(series: dict) -> float:
    return sum(v for (name, _), v in series.items() if name == "registry_http_requests_total")


async def test_requests_count_by_route_template_and_made_up_paths_add_no_series(world):
    scraper = _witness(world)
    async with await _client(world) as c:
        # (the metrics are the process's: other tests' requests are in them; this test's are what is new)
        earlier = set(_series((await c.get("/_/metrics", headers=scraper)).text))
        await _junk_round(c)
        before = _series((await c.get("/_/metrics", headers=scraper)).text)
        made = await _junk_round(c)
        after = _series((await c.get("/_/metrics", headers=scraper)).text)
    http = [{k for k in series if k[0].startswith("registry_http_")} for series in (before, after)]
    assert http[0] == http[1]  # (the same paths' shapes again: not one series more)
    assert _requests(after) - _requests(before) == made + 1  # (+ the first scrape)
    new = [labels for name, labels in set(after) - earlier if name == "registry_http_requests_total"]
    routes = {dict(labels)["route"] for labels in new}
    methods = {dict(labels)["method"] for labels in new}
    assert len(routes) <= 12 and methods <= {"GET", "other"}, (routes, methods)
    assert all("{" in r or r.startswith(("/_/", "(")) for r in routes), routes  # (templates, never paths)


async def test_every_answer_carries_a_request_id_the_clients_if_sane(client):
    mine = "req-1234.abc:DEF"
    r = await client.get("/_/health", headers={"x-request-id": mine})
    assert r.headers["x-request-id"] == mine
    fresh = {(await client.get(f"/{WS}/nothing-here/")).headers["x-request-id"] for _ in range(5)}
    assert len(fresh) == 5 and all(len(i) == 16 for i in fresh)
    for bad in ("a b", "x" * 129, "line\\nbreak", "<script>", "%C3%BC", ""):
        r = await client.get("/_/health", headers={"x-request-id": bad})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 16


async def test_publishes_of_distinct_files_and_names_add_no_series(world, tmp_path):
    """Every label takes its values from a set the code fixes: 200 more publishes (each a new file),
    refused uploads of 200 new names and reads of 200 new projects move counts, never add a series."""
    from tests.support.helpers import make_wheel
    from tests.support.world import upload_form

    operations.grant(world.reg, identity.operator(), "cli", WS, "dev@acme.test", "write", repository="public-lib")
    auth, scraper = world.basic("dev@acme.test"), _witness(world)

    async def one(c, i: int) -> None:
        for name, status in (("public-pkg", 200), (f"no-such-{secrets.token_hex(4)}", 404)):
            wheel = make_wheel(tmp_path, name, f"1.{i}", payload=64)
            data, files = upload_form(wheel)
            assert (await c.post(f"/{WS}/", data=data, files=files, headers=auth)).status_code in (status, 403)
            wheel.unlink()
        for path in (f"/{WS}/public-pkg/", f"/{WS}/project-{i}/", f"/{WS}/pypi/public-pkg/1.{i}/json"):
            await c.get(path, headers=auth)

    async with await _client(world) as c:
        for i in range(20):
            await one(c, i)
        await c.get("/_/metrics", headers=scraper)  # (a scrape is a request too: counted in the next)
        before = _series((await c.get("/_/metrics", headers=scraper)).text)
        for i in range(20, 220):
            await one(c, i)
        after = _series((await c.get("/_/metrics", headers=scraper)).text)
    assert set(after) == set(before), sorted(set(after) ^ set(before))
    published = ("registry_publishes_total", frozenset({("outcome", "published")}))
    assert after[published] - before[published] == 200  # (and they were counted)
    assert sum(v for (name, _), v in after.items() if name == "registry_publish_refusals_total") - sum(
        v for (name, _), v in before.items() if name == "registry_publish_refusals_total") == 200
