"""Answers a newcomer meets: HEAD wherever GET works, one charset, a search that is only a filter,
refusals that say what was wrong (a mistyped workspace, an unescaped '+', a size, a wrong URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import identity, operations
from registry.config import Settings
from registry.errors import size
from tests.support.helpers import OWN_HEADERS, make_wheel
from tests.support.world import WS, publish, upload_form

LIMIT = 600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data=str(tmp_path / "data"), max_upload_bytes=LIMIT)


def _same(head, get, path) -> None:
    assert head.status_code == get.status_code and head.content == b"", path
    ignore = OWN_HEADERS
    assert {k: v for k, v in head.headers.items() if k not in ignore} == \
        {k: v for k, v in get.headers.items() if k not in ignore}, path


async def test_head_answers_wherever_get_does(client, world, tmp_path):
    wheel = make_wheel(tmp_path, "Acme.Utils", "1.0", payload=100)
    publish(world.reg, identity.operator(), wheel)
    auth = world.basic("reader@acme.test")
    await client.get("/-/")  # (a visitor from now on: a first visit's page sets a cookie)
    for path, headers in (("/_/health", {}), ("/_/ledger/checkpoint", {}), ("/_/ledger/checkpoint-key", {}),
                          (f"/api/workspaces/{WS}/packages", auth), (f"/api/workspaces/{WS}/packages", {}),
                          ("/-/", {}), (f"/-/{WS}/", {}), (f"/-/{WS}/packages/secret-pkg/", {}),
                          (f"/{WS}/pypi/acme-utils/1.0/json", auth), (f"/{WS}/acme-utils/", auth)):
        get = await client.get(path, headers=headers, follow_redirects=False)
        head = await client.head(path, headers=headers, follow_redirects=False)
        assert get.content, path
        _same(head, get, path)
    url = f"/{WS}/acme-utils/1.0/{wheel.name}"  # files answer HEAD themselves: ranges included
    head = await client.head(url, headers={**auth, "range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""
    assert (await client.head("/_/oidc/mint-token")).status_code == 405  # (no GET there either)


async def test_text_has_one_charset(client, world):
    for path in ("/_/ledger/checkpoint", "/_/ledger/checkpoint-key", "/_/ledger.git/info/refs?service=git-upload-pack"):
        assert (await client.get(path)).headers["content-type"] == "text/plain; charset=utf-8", path


async def test_a_search_is_a_filter_not_a_name(client, world):
    auth = world.basic("reader@acme.test")
    for q in ("zz ", "%", "a'b", "   "):
        r = await client.get(f"/api/workspaces/{WS}/packages", params={"q": q}, headers=auth)
        assert r.status_code == 200, (q, r.text)
        assert (r.json()["items"] == []) == (q.strip() != ""), q
    r = await client.get(f"/api/workspaces/{WS}/packages", params={"q": " Acme.UTILS "}, headers=auth)
    assert [p["name"] for p in r.json()["items"]] == ["acme-utils"]


async def test_ledger_refusals_name_the_tokens_that_fetch_it(client, world):
    refs = "/_/ledger.git/info/refs?service=git-upload-pack"
    r = await client.get(refs, headers={"authorization": "Basic " + "ZGV2QGFjbWUudGVzdDpub3Bl"})  # dev@acme.test:nope
    assert r.status_code == 401 and "--witness" in r.text and r.headers["www-authenticate"]
    r = await client.get(refs, headers=world.basic("wsadmin@acme.test"))
    assert r.status_code == 403 and "replica tokens" in r.text and "--witness" in r.text


async def test_a_mistyped_workspace_is_not_blamed_on_the_package(client, world):
    auth = world.basic("reader@acme.test")
    r = await client.get("/acmee/acme-utils/", headers=auth)
    assert r.status_code == 404 and "No workspace 'acmee' with a package 'acme-utils' is visible to you" in r.text
    r = await client.get(f"/{WS}/no-such-pkg/", headers=auth)  # (a workspace they see: the package is what's missing)
    assert r.status_code == 404 and f"does not exist in workspace {WS}" in r.text
    operations.create_workspace(world.reg, identity.operator(), "cli", "acmex", "Hidden")
    hidden = await client.get("/acmex/acme-utils/", headers=auth)
    assert (hidden.status_code, hidden.text.replace("acmex", "acmee")) == (r.status_code, (
        await client.get("/acmee/acme-utils/", headers=auth)).text)  # (hidden reads as missing)


async def test_format_with_an_unescaped_plus(client, world):
    auth = world.basic("reader@acme.test")
    r = await client.get(f"/{WS}/?format=application/vnd.pypi.simple.v1+html", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.pypi.simple.v1+html"
    r = await client.get(f"/{WS}/?format=application/vnd.pypi.simple.v9+html", headers=auth)
    assert r.status_code == 406 and "write it %2B" in r.text


def test_sizes_read_as_sizes():
    assert [size(n) for n in (600, 1536, 2 * 2**20)] == ["600 bytes", "1536 bytes (1.5 KiB)", "2097152 bytes (2 MiB)"]


async def test_too_large_and_wrong_upload_urls_say_so(client, world, tmp_path):
    head = world.reg.ledger.head()
    data, files = upload_form(make_wheel(tmp_path, "Acme.Utils", "1.0", payload=4000))
    r = await client.post(f"/{WS}/", data=data, files=files, headers=world.basic("dev@acme.test"))
    assert r.status_code == 413 and f"the limit is {LIMIT} bytes." in r.text and "MiB" not in r.text
    for url in ("/legacy/", "/legacy"):
        r = await client.post(url, data=data, files=files, headers=world.basic("dev@acme.test"))
        assert r.status_code == 405 and "Uploads go to a workspace's URL, /<workspace>/" in r.text, url
    assert world.reg.ledger.head() == head
