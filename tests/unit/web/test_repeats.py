"""Repeat requests answered before the front door (registry/web/repeats.py): the same answer for the
same bytes, each with its own request id, logged and counted; HEAD and conditional repeats; never
past the ledger's next commit or the credentials' expiry. (The generated sequences across commits
are in tests/adversarial/test_cache_keys.py.)"""

from __future__ import annotations

import logging
import time
import weakref

import pytest

from registry import metrics
from registry.web.caches import Answer, Page
from registry.web.repeats import ROUTE, Repeats, request_key
from tests.support.asgi import call
from tests.support.world import WS, publish

JSON = ("accept", "application/vnd.pypi.simple.v1+json")


@pytest.fixture
def published(world, dists):
    for path in dists[("Acme.Utils", "1.0.0")]:
        publish(world.reg, world.principal("dev@acme.test"), path)
    return world


def repeats_of(client):
    return client.served._state.repeats._repeats


async def test_the_same_bytes_get_the_same_answer_each_with_its_own_request_id(client, world, published, caplog):
    caplog.set_level(logging.INFO, logger="registry.access")
    headers = [*world.basic("reader@acme.test").items(), JSON]
    answers = [await call(client.served, "GET", f"/{WS}/acme-utils/", headers) for _ in range(4)]
    assert repeats_of(client).hits == 2  # (the first rendered, the second from the answers cache, then repeats)
    first = answers[0]
    for answer in answers[1:]:
        assert (answer.status, answer.body) == (200, first.body)
        assert sorted(h for h in answer.headers if h[0] != b"x-request-id") == \
               sorted(h for h in first.headers if h[0] != b"x-request-id")
    assert len({a.header("x-request-id") for a in answers}) == 4
    logged = [r.getMessage() for r in caplog.records if r.name == "registry.access"]
    assert len(logged) == 4 and all(" 200 " in line and "reader@acme.test" in line for line in logged)
    assert all(line.endswith(a.header("x-request-id")) for line, a in zip(logged, answers, strict=True))
    metrics.flush()
    count = metrics.REQUESTS.labels(ROUTE, "GET", "200")._value.get()
    await call(client.served, "GET", f"/{WS}/acme-utils/", headers)
    metrics.flush()
    assert metrics.REQUESTS.labels(ROUTE, "GET", "200")._value.get() == count + 1


async def test_a_clients_own_request_id_is_kept(client, world, published):
    headers = [*world.basic("reader@acme.test").items(), JSON, ("x-request-id", "proxy-7")]
    answers = [await call(client.served, "GET", f"/{WS}/acme-utils/", headers) for _ in range(3)]
    assert repeats_of(client).hits == 1 and {a.header("x-request-id") for a in answers} == {"proxy-7"}


async def test_head_and_conditional_repeats(client, world, published):
    headers = [*world.basic("reader@acme.test").items(), JSON]
    get = await call(client.served, "GET", f"/{WS}/acme-utils/", headers)
    for _ in range(3):
        head = await call(client.served, "HEAD", f"/{WS}/acme-utils/", headers)
        assert head.status == 200 and head.body == b"" and head.header("content-length") == str(len(get.body))
    etag = [*headers, ("if-none-match", get.header("etag"))]
    for _ in range(3):
        answer = await call(client.served, "GET", f"/{WS}/acme-utils/", etag)
        assert answer.status == 304 and answer.body == b"" and answer.header("etag") == get.header("etag")
    assert repeats_of(client).hits >= 2


async def test_the_next_commit_ends_a_repeat(client, world, published, dists):
    headers = [*world.basic("reader@acme.test").items(), JSON]
    for _ in range(3):
        before = await call(client.served, "GET", f"/{WS}/acme-utils/", headers)
    publish(world.reg, world.principal("dev@acme.test"), dists[("Acme.Utils", "1.1.0")][0])
    after = await call(client.served, "GET", f"/{WS}/acme-utils/", headers)
    assert b"1.1.0" in after.body and b"1.1.0" not in before.body


def test_expired_credentials_or_a_page_let_go_end_a_repeat(monkeypatch):
    repeats = Repeats()
    page = Page(b"<html>", '"etag"', "text/html")
    key = ("GET", "/acme/pkg/", b"", ((b"authorization", b"Basic x"),))
    answer = Answer("c1", time.time() + 60, weakref.ref(page), [(b"content-type", b"text/html")])
    repeats.keep(key, {"registry.answered": (answer, page), "headers": list(key[3])}, "someone")
    assert repeats.find(key, "c1")[1] == b"<html>"
    assert repeats.find(key, "c2") is None  # (another tip)
    assert repeats.find(("HEAD", *key[1:]), "c1") is None  # (another method: another request)
    monkeypatch.setattr(time, "time", lambda: answer.expires + 1)
    assert repeats.find(key, "c1") is None
    monkeypatch.undo()
    del page
    assert repeats.find(key, "c1") is None  # (its page gone from the page cache)


def test_only_reads_with_hashable_headers_are_keyed():
    scope = {"method": "GET", "path": "/a/", "query_string": b"", "headers": [(b"a", b"1")]}
    assert request_key(scope) == ("GET", "/a/", b"", ((b"a", b"1"),))
    assert request_key({**scope, "method": "POST"}) is None
    assert request_key({**scope, "headers": [[b"a", b"1"]]}) is None
