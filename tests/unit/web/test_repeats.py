"""Repeat requests answered before the front door (registry/web/repeats.py): the same answer for the
same bytes, each with its own request id, logged and counted; HEAD and conditional repeats; never
past the ledger's next commit or the credentials' expiry. (The generated sequences across commits
are in tests/adversarial/test_cache_keys.py.)"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from registry import metrics
from registry.web.caches import Page
from registry.web.repeats import ANSWERED, ROUTE, Repeats, request_key
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
    expires = time.time() + 60
    repeats.keep(key, {ANSWERED: ("c1", expires, page), "headers": list(key[3])}, 200,
                 [(b"content-type", b"text/html"), (b"content-length", b"6")], "someone", "/{ws}/{project}/")
    assert repeats.find(key, "c1")[1] == b"<html>"
    assert repeats.find(key, "c2") is None  # (another tip)
    assert repeats.find(("HEAD", *key[1:]), "c1") is None  # (another method: another request)
    monkeypatch.setattr(time, "time", lambda: expires + 1)
    assert repeats.find(key, "c1") is None
    monkeypatch.undo()
    del page
    assert repeats.find(key, "c1") is None  # (its page gone from the page cache)


def test_only_reads_with_hashable_headers_are_keyed():
    scope = {"method": "GET", "path": "/a/", "query_string": b"", "headers": [(b"a", b"1")]}
    assert request_key(scope) == ("GET", "/a/", b"", ((b"a", b"1"),))
    assert request_key({**scope, "method": "POST"}) is None
    assert request_key({**scope, "headers": [[b"a", b"1"]]}) is None


async def test_a_whole_metadata_file_is_a_repeat_and_a_range_of_it_is_not(client, world, published):
    path = f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl.metadata"
    headers = list(world.basic("reader@acme.test").items())
    answers = [await call(client.served, "GET", path, headers) for _ in range(3)]
    assert repeats_of(client).hits == 2  # (the first marked by the handler: repeats from the second on)
    first = answers[0]
    assert first.status == 200 and first.body.startswith(b"Metadata-Version")
    for answer in answers[1:]:
        assert (answer.status, answer.body) == (200, first.body)
        assert sorted(h for h in answer.headers if h[0] != b"x-request-id") == \
               sorted(h for h in first.headers if h[0] != b"x-request-id")
    heads = [await call(client.served, "HEAD", path, headers) for _ in range(2)]
    assert all(h.status == 200 and h.body == b"" and h.header("content-length") == str(len(first.body)) for h in heads)
    hits = repeats_of(client).hits
    ranged = [await call(client.served, "GET", path, [*headers, ("range", "bytes=0-9")]) for _ in range(3)]
    assert all(r.status == 206 and r.body == first.body[:10] for r in ranged) and repeats_of(client).hits == hits
    outsider = await call(client.served, "GET", path, list(world.basic("outsider@acme.test").items()))
    assert outsider.status == 404


async def test_a_small_stored_file_is_a_repeat_read_anew_each_time(client, world, published):
    path = f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl"
    headers = world.basic("reader@acme.test")  # (through the test client: a file is streamed)
    answers = [await client.get(path, headers=headers) for _ in range(3)]
    first = answers[0]
    assert first.status_code == 200 and first.content[:2] == b"PK" and repeats_of(client).hits == 2
    for answer in answers[1:]:
        assert (answer.status_code, answer.content) == (200, first.content)
        assert {k: v for k, v in answer.headers.items() if k != "x-request-id"} == \
               {k: v for k, v in first.headers.items() if k != "x-request-id"}
    [repeat] = [v for k, v in repeats_of(client).items() if k[1] == path]
    assert repeat.path is not None and repeat.page is None  # (its bytes are never kept)
    assert "{filename}" in repeat.route  # (counted under the downloads' route, not the index's)
    Path(repeat.path).rename(repeat.path + ".away")  # the bytes gone from the store: not a repeat, said as damage
    try:
        gone = await client.get(path, headers=headers)
        assert gone.status_code == 503 and "missing" in gone.text
    finally:
        Path(repeat.path + ".away").rename(repeat.path)
    again = await client.get(path, headers=headers)
    assert again.content == first.content
