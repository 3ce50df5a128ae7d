"""What a worker keeps in memory is bounded in bytes, whatever it is sent.

Every cache is one of `registry.cache`'s, so they are enumerated from there: a new cache can't
escape. Each is filled far beyond its bound (large keys, large values) and never accounts more; what
each accounts for an entry covers what the entry keeps alive (measured object by object, after real
traffic); and the two ways memory was seen to grow (distinct 60 KB query strings, and publishes)
stay within the bounds.
"""

from __future__ import annotations

import gc
import secrets
import sys
import tracemalloc

import msgspec
import pytest

import registry.reads.timeline  # noqa: F401  (every module that declares a cache)
import registry.replica.blobs  # noqa: F401
from registry import cache, identity, operations
from registry.config import Settings
from registry.web.app import create_asgi
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish, upload_form

KiB = 1024
LIBRARIES = set(cache.LIBRARY_CACHES)


def cache_settings() -> set[str]:
    return {f.name for f in msgspec.structs.fields(Settings) if f.name.startswith("cache_")}


# every cache of ours, by the setting that bounds it (the first test checks both ways)
OURS = sorted(s.removeprefix("cache_").removesuffix("_bytes").replace("_", "-") for s in cache_settings()
              if s not in {cache.setting(n) for n in LIBRARIES})


def small(bound: int, **overrides) -> dict[str, int]:
    """Every cache's setting at ``bound`` bytes."""
    return {name: bound for name in cache_settings()} | overrides


@pytest.fixture
def app(world):
    return create_asgi(world.reg.settings, world.reg)  # (its WebState holds the web layer's caches)


def test_every_cache_is_declared_and_has_a_setting(app, world):
    """A cache made anywhere in the process is one of `registry.cache`'s, with a setting."""
    assert {c.name for c in cache.caches()} == set(cache.NAMES) == set(OURS)  # (the app made one of each)
    assert cache_settings() == {cache.setting(name) for name in set(OURS) | LIBRARIES}
    empty = Settings(data=str(world.reg.settings.data_path.parent / "nothing-here"))
    assert cache.ceiling(empty) == (cache.IDLE_WORKER + cache.WORKING_MEMORY + cache.GIT_DELTA_BASES
                                    + sum(getattr(empty, s) for s in cache_settings()))


@pytest.mark.parametrize("name", OURS)
def test_a_cache_never_accounts_more_than_its_bound(app, world, name):
    bound = 64 * KiB
    cache.configure(Settings(data=world.reg.settings.data, **small(bound)))
    found = [c for c in cache.caches() if c.name == name]
    assert found, f"no {name} cache in this process"
    for c in found:
        for i in range(300):
            key = (secrets.token_hex(2_000 + i * 37 % 9_000), i) if i % 2 else secrets.token_bytes(i * 101 % 30_000)
            value = secrets.token_bytes(i * 211 % 40_000)
            c.put(key, value, len(value))
            assert c.used <= bound
            assert sum(cache.deep_size(k) + cache.deep_size(v) for k, v, _ in c.sizes()) <= bound
        c.put("too big", b"x" * bound, bound)  # (larger than the whole bound: not kept)
        assert c.get("too big") is None and c.used <= bound and len(c) > 0


async def test_each_cache_accounts_for_what_its_entries_keep_alive(app, world, dists):
    """After real traffic of every kind, each entry's accounted size covers its key and value,
    object by object."""
    from litestar.testing import AsyncTestClient

    from tests.unit.web.ui.test_pages import sign_in

    cache.configure(Settings(data=world.reg.settings.data))
    dev = world.principal("dev@acme.test")
    for version in ("1.0.0", "1.1.0", "2.0.0rc1", "3.0"):
        for path in dists[("Acme.Utils", version)]:
            publish(world.reg, dev, path)
    publish(world.reg, identity.operator(), dists[("public-pkg", "0.1")][1])
    head = world.reg.ledger.head()
    browser = {"accept": "text/html,application/xhtml+xml"}
    async with AsyncTestClient(app=app) as client:
        for who in ("reader@acme.test", "dev@acme.test", None):
            auth = world.basic(who) if who else {}
            for path in (f"/{WS}/", "/", f"/{WS}/acme-utils/", f"/{WS}/public-pkg/", f"/{WS}/@{head[:12]}/",
                         f"/{WS}/@2999-01-01T00:00:00Z/acme-utils/", f"/api/workspaces/{WS}/packages",
                         f"/api/workspaces/{WS}/packages/pypi/acme-utils", f"/{WS}/pypi/acme-utils/json"):
                for accept in ("application/vnd.pypi.simple.v1+json", "text/html"):
                    for _ in range(3):  # (the third answered as a repeat: repeats.py)
                        await client.get(path, headers={**auth, "accept": accept})
        await client.get(f"/{WS}/", headers={"authorization": "Basic " + "A" * 2000})  # (refused, and remembered)
        assert (await client.get("/_/ledger/checkpoint")).status_code == 200
        await sign_in(client, world, "dev@acme.test")
        for path in ("/-/", f"/-/{WS}/", f"/-/{WS}/?sort=published", f"/-/{WS}/packages/acme-utils/",
                     f"/-/{WS}/packages/acme-utils/1.0.0/", f"/-/{WS}/history"):
            assert (await client.get(path, headers=browser)).status_code == 200, path
    used = {c.name for c in cache.caches() if len(c)}
    assert used >= set(cache.NAMES) - {"in-bucket"}  # (a replica's, on a bucket of its own)
    short = [f"{c.name}: an entry keeps {kept} bytes alive, accounted at {size}"
             for c in cache.caches() for key, value, size in c.sizes()
             if (kept := cache.deep_size(key) + cache.deep_size(value)) > size]
    assert not short, "\n".join(short)



def settle_interned_strings() -> None:
    """Give the interpreter's table of interned strings room before a measurement. pathlib interns
    every part of every path it parses (a wheel's members, a blob's hash, a pack's name: a dozen new
    strings a publish, each dropped again), so the table is reallocated whenever its slots run out,
    and tracemalloc counts the new table (3.8 MB at 2^18 slots) but not the untraced old one it
    replaces: kept memory that depends only on how many modules the process happened to import
    before. Interning many strings, then dropping them, reallocates it now, with room to spare;
    strings a request really keeps are still counted, as their own blocks."""
    room = [sys.intern(f"settling-{i}") for i in range(200_000)]
    del room


def retained(before: tracemalloc.Snapshot) -> int:
    gc.collect()
    return sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))


async def asgi_get(app, path: str, query: bytes = b"", headers: tuple = ()) -> int:
    """One GET straight through the app as served (no client: its own caches would be measured too)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
               "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
               "headers": [(b"host", b"registry.test"), *headers], "client": ("127.0.0.1", 4000),
               "server": ("registry.test", 80), "state": {}}, receive, send)
    return sent[0]["status"]


async def test_distinct_query_strings_keep_no_more_than_the_bounds(world):
    """A stranger's requests of one public page, each with another 60 KB query string: what the
    worker keeps afterwards stays within its caches' bounds (Answers kept 50,000 of them, Litestar
    1,024 of each of several parsings)."""
    from litestar.testing import AsyncTestClient

    settings = Settings(data=world.reg.settings.data, **small(256 * KiB))
    world.reg.settings = settings
    total = sum(getattr(settings, s) for s in cache_settings())
    app = create_asgi(settings, world.reg)
    async with AsyncTestClient(app=app):  # (its lifespan)
        assert await asgi_get(app, f"/{WS}/public-pkg/", b"x=warm") == 200
        settle_interned_strings()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(300):
                assert await asgi_get(app, f"/{WS}/public-pkg/", f"x={secrets.token_hex(30_000)}".encode()) == 200
            grown = retained(before)
        finally:
            tracemalloc.stop()
    assert grown < total, f"{grown // KiB} KiB kept after 300 requests of 60 KB each (the bounds: {total // KiB} KiB)"


async def test_publishes_keep_no_more_than_the_bounds(world, tmp_path):
    """200 publishes through the upload endpoint, each followed by reads of what it changed: what
    the worker keeps grows no further than its caches' bounds (it grew by every index page, project
    page and record it ever made, up to caches of hundreds of MiB)."""
    from litestar.testing import AsyncTestClient

    settings = Settings(data=world.reg.settings.data, max_upload_bytes=2**20, **small(128 * KiB))
    world.reg.settings = settings
    total = sum(getattr(settings, s) for s in cache_settings() if s not in {cache.setting(n) for n in LIBRARIES})
    operations.grant(world.reg, identity.operator(), "cli", WS, "dev@acme.test", "write", repository="public-lib")
    auth = world.basic("dev@acme.test")
    app = create_asgi(settings, world.reg)

    async def one(client, i: int) -> None:
        wheel = make_wheel(tmp_path, "public-pkg", f"1.{i}", payload=64)
        data, files = upload_form(wheel)
        assert (await client.post(f"/{WS}/", data=data, files=files, headers=auth)).status_code == 200
        wheel.unlink()
        for path in (f"/{WS}/", f"/{WS}/public-pkg/", f"/api/workspaces/{WS}/packages/pypi/public-pkg",
                     f"/{WS}/pypi/public-pkg/json"):
            assert (await client.get(path, headers=auth)).status_code == 200

    async with AsyncTestClient(app=app) as client:
        for i in range(20):  # (warm: the first requests build what every later one shares)
            await one(client, i)
        settle_interned_strings()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for i in range(20, 220):
                await one(client, i)
            grown = retained(before)
        finally:
            tracemalloc.stop()
    assert grown < total, f"{grown // KiB} KiB kept after 200 publishes (the bounds: {total // KiB} KiB)"


def test_reading_the_ledger_leaves_nothing_behind(world):
    """Every lookup of a record by path, found or not (pygit2 1.21 kept each path it was given)."""
    from registry import layout
    from registry.model import Package
    from registry.reads import Reader

    snap = world.reg.snapshot()
    Reader(world.reg).package(WS, "public-pkg")
    settle_interned_strings()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(5_000):
            snap.get(layout.package(WS, f"no-such-package-{i}"), Package)
            assert snap.exists(layout.package(WS, "public-pkg"))
            Reader(world.reg).package(WS, "public-pkg")
        grown = retained(before)
    finally:
        tracemalloc.stop()
    assert grown < 64 * KiB, f"{grown // KiB} KiB kept after 5,000 reads"
