"""Upstream indexes through the workspace's index, in-process against a real index on 127.0.0.1
(tests/support/upstream_index.py) whose behaviour each test sets: rules, the block list, the
cooldown, tracking, hashes that don't match, a stalled or failing index, one fetch for many askers.
Real clients against real upstreams: tests/e2e/upstream."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from registry import identity, layout, model
from registry.config import Settings
from registry.operations import upstream as verbs
from registry.reads.records import upstream_files
from tests.support.helpers import make_wheel
from tests.support.upstream_index import Index, Served
from tests.support.world import WS

OP = identity.operator()
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data=str(tmp_path / "data"), max_upload_bytes=2 * 2**20, upstream_timeout_seconds=1.0)


@pytest.fixture
def index():
    i = Index()
    yield i
    i.close()


@pytest.fixture
def upstream(world, index):
    verbs.add_upstream(world.reg, OP, "cli", WS, "up", index.url)
    return index


def wheel(tmp_path, name: str, version: str, payload: int = 256) -> bytes:
    return make_wheel(tmp_path, name, version, payload=payload).read_bytes()


def offer(index: Index, tmp_path, name: str, version: str, age: timedelta | None = timedelta(days=30),
          payload: int = 256, **kw) -> str:
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    born = datetime.now(UTC) - age if age else None
    index.files[filename] = Served(wheel(tmp_path, name, version, payload), upload_time=born, **kw)
    return filename


async def page(client, world, name: str, who: str = "dev@acme.test"):
    return await client.get(f"/{WS}/{name}/", headers={**JSON, **world.basic(who)})


async def recorded(world, name: str, filename: str, within: float = 5.0) -> model.UpstreamFile | None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = upstream_files(world.reg.snapshot(), WS, name).get(filename)
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    return None


async def test_a_name_the_workspace_doesnt_own_comes_from_upstream_and_is_recorded_once(client, world, upstream,
                                                                                       tmp_path):
    filename = offer(upstream, tmp_path, "requests", "2.0")
    answer = await page(client, world, "requests")
    assert answer.status_code == 200, answer.text
    files = answer.json()["files"]
    assert [f["filename"] for f in files] == [filename]
    got = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("dev@acme.test"))
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == files[0]["hashes"]["sha256"]
    record = await recorded(world, "requests", filename)
    assert record is not None and record.sha256 == files[0]["hashes"]["sha256"] and record.upstream == "up"
    assert record.fetched.by == "dev@acme.test" and record.url == upstream.url.replace("/simple/", f"/files/{filename}")
    again = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("reader@acme.test"))
    assert again.content == got.content
    assert upstream.asked[f"/files/{filename}"] == 1  # (the second came from here)


async def test_owned_names_never_come_from_upstream_unless_tracked(client, world, upstream, tmp_path):
    for v in ("0.9", "1.0", "99.0"):
        offer(upstream, tmp_path, "acme-utils", v)
    from tests.support.world import publish

    (tmp_path / "own").mkdir()
    publish(world.reg, world.principal("dev@acme.test"), make_wheel(tmp_path / "own", "acme-utils", "1.0"))
    answer = await page(client, world, "acme-utils")
    assert answer.json()["versions"] == ["1.0"]
    assert all("99.0" not in f["filename"] for f in answer.json()["files"])
    direct = await client.get(f"/{WS}/acme-utils/99.0/acme_utils-99.0-py3-none-any.whl",
                              headers=world.basic("dev@acme.test"))
    assert direct.status_code == 404
    # an explicit, audited opt-in mixes in the releases it lacks; its own 1.0 stays its own
    verbs.exempt(world.reg, OP, "cli", WS, "tracks", "acme-utils", "we follow the upstream fork")
    mixed = (await page(client, world, "acme-utils")).json()
    assert mixed["versions"] == ["0.9", "1.0", "99.0"] and mixed["tracks"]
    own = [f for f in mixed["files"] if f["filename"].startswith("acme_utils-1.0")]
    assert len(own) == 1 and own[0]["url"] == "1.0/acme_utils-1.0-py3-none-any.whl"
    # a reader who may not read the package learns nothing of upstream's either
    verbs.exempt(world.reg, OP, "cli", WS, "tracks", "secret-pkg", "x")
    offer(upstream, tmp_path, "secret-pkg", "5.0")
    hidden = await page(client, world, "secret-pkg", "reader@acme.test")
    nowhere = await page(client, world, "nowhere-at-all", "reader@acme.test")
    assert hidden.status_code == nowhere.status_code == 404
    assert hidden.text.replace("secret-pkg", "X") == nowhere.text.replace("nowhere-at-all", "X")


async def test_deleted_names_stay_the_workspaces(client, world, upstream, tmp_path):
    from registry import operations

    offer(upstream, tmp_path, "public-pkg", "9.0")
    operations.delete_package(world.reg, OP, "cli", WS, "public-pkg")
    answer = await page(client, world, "public-pkg", "wsadmin@acme.test")
    assert answer.status_code == 404 and "9.0" not in answer.text


async def test_strangers_learn_nothing(client, world, upstream, tmp_path):
    offer(upstream, tmp_path, "requests", "2.0")
    assert (await client.get(f"/{WS}/requests/", headers=JSON)).status_code == 401
    outsider = await page(client, world, "requests", "outsider@acme.test")
    missing = await page(client, world, "nothing-anywhere", "outsider@acme.test")
    assert outsider.status_code == missing.status_code == 404
    assert outsider.text.replace("requests", "X") == missing.text.replace("nothing-anywhere", "X")


async def test_deny_and_allow_rules_refuse_with_the_rule_named(client, world, upstream, tmp_path):
    offer(upstream, tmp_path, "evil-pkg", "1.0")
    offer(upstream, tmp_path, "requests", "2.0")
    verbs.add_rule(world.reg, OP, "cli", WS, "deny", "evil-*", "typosquats of our names")
    refused = await page(client, world, "evil-pkg")
    assert refused.status_code == 403
    assert "'evil-*'" in refused.text and "typosquats of our names" in refused.text
    assert (await page(client, world, "requests")).status_code == 200
    verbs.add_rule(world.reg, OP, "cli", WS, "allow", "numpy", "only what we reviewed")
    refused = await page(client, world, "requests")
    assert refused.status_code == 403 and "allow rules" in refused.text and "numpy" in refused.text


async def test_blocked_versions_are_left_out_and_refused_with_their_reason(client, world, upstream, tmp_path):
    offer(upstream, tmp_path, "requests", "2.0")
    bad = offer(upstream, tmp_path, "requests", "2.1")
    verbs.block(world.reg, OP, "cli", WS, "requests", "2.1", "CVE-2099-1")
    assert (await page(client, world, "requests")).json()["versions"] == ["2.0"]
    refused = await client.get(f"/{WS}/requests/2.1/{bad}", headers=world.basic("dev@acme.test"))
    assert refused.status_code == 403 and "CVE-2099-1" in refused.text and "unblock" in refused.text
    assert upstream.asked[f"/files/{bad}"] == 0


async def test_the_cooldown_hides_young_releases_until_exempted(client, world, upstream, tmp_path):
    offer(upstream, tmp_path, "requests", "2.0", age=timedelta(days=30))
    young = offer(upstream, tmp_path, "requests", "2.1", age=timedelta(days=2))
    offer(upstream, tmp_path, "requests", "2.2", age=None)  # no upload-time: judged by when first seen here
    verbs.set_cooldown(world.reg, OP, "cli", WS, 7)
    assert (await page(client, world, "requests")).json()["versions"] == ["2.0"]
    refused = await client.get(f"/{WS}/requests/2.1/{young}", headers=world.basic("dev@acme.test"))
    assert refused.status_code == 403 and "cooldown" in refused.text and "2.0 days" in refused.text
    policy = verbs.exempt(world.reg, OP, "cli", WS, "exempt", "requests", "security fix we need now")
    assert policy.exempt[0].granted.by == OP.actor and policy.exempt[0].reason == "security fix we need now"
    assert (await page(client, world, "requests")).json()["versions"] == ["2.0", "2.1", "2.2"]


async def test_a_file_that_doesnt_hash_as_declared_is_cut_short_and_never_stored(client, world, upstream, tmp_path):
    filename = offer(upstream, tmp_path, "requests", "2.0", sha256="0" * 64)
    await page(client, world, "requests")
    with pytest.raises(Exception):  # noqa: B017 (the answer ends before its Content-Length: a broken transfer)
        answer = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("dev@acme.test"))
        assert len(answer.content) < len(upstream.files[filename].data)
        raise RuntimeError("short")
    assert await recorded(world, "requests", filename, within=0.5) is None


async def test_bytes_changed_upstream_are_refused_and_the_recorded_ones_kept(client, world, upstream, tmp_path):
    filename = offer(upstream, tmp_path, "requests", "2.0")
    await page(client, world, "requests")
    first = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("dev@acme.test"))
    await recorded(world, "requests", filename)
    (tmp_path / "other").mkdir()
    upstream.files[filename] = Served(wheel(tmp_path / "other", "requests", "2.0", payload=999),
                                      upload_time=datetime.now(UTC))
    for cached in (world.reg.settings.upstream_cache_path / "pages").rglob("*.json"):
        cached.unlink()  # (the page is fetched again: it now declares the other bytes)
    listed = (await page(client, world, "requests")).json()["files"]
    assert listed[0]["hashes"]["sha256"] == hashlib.sha256(first.content).hexdigest()
    again = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("dev@acme.test"))
    assert again.content == first.content


async def test_many_askers_one_fetch(client, world, upstream, tmp_path):
    filename = offer(upstream, tmp_path, "bigdep", "1.0", payload=2 * 2**20, per_chunk_delay=0.002)
    await page(client, world, "bigdep")
    answers = await asyncio.gather(*(client.get(f"/{WS}/bigdep/1.0/{filename}", headers=world.basic("dev@acme.test"))
                                     for _ in range(4)))
    want = hashlib.sha256(upstream.files[filename].data).hexdigest()
    assert [hashlib.sha256(a.content).hexdigest() for a in answers] == [want] * 4
    assert upstream.asked[f"/files/{filename}"] == 1


async def test_a_failing_or_stalled_upstream_is_named_and_a_cached_page_stands_in(client, world, upstream, tmp_path):
    offer(upstream, tmp_path, "requests", "2.0")
    upstream.mode = "fail"
    failed = await page(client, world, "requests")
    assert failed.status_code == 502 and "'up'" in failed.text and "500" in failed.text
    upstream.mode = "stall"
    started = time.monotonic()
    stalled = await page(client, world, "requests")
    assert stalled.status_code == 504 and "'up'" in stalled.text
    assert time.monotonic() - started < 5
    upstream.mode = "serve"
    assert (await page(client, world, "requests")).status_code == 200
    for cached in (world.reg.settings.upstream_cache_path / "pages").rglob("*.json"):
        cached.write_bytes(cached.read_bytes().replace(b'"fetched":', b'"fetched":1,"was":'))
    upstream.mode = "stall"
    stale = await page(client, world, "requests", "reader@acme.test")  # (another caller: no answer remembered)
    assert stale.status_code == 200 and "up:" in stale.headers["x-upstream-stale"]
    assert [f["filename"] for f in stale.json()["files"]] == ["requests-2.0-py3-none-any.whl"]


async def test_metadata_is_passed_through_checked(client, world, upstream, tmp_path):
    filename = offer(upstream, tmp_path, "requests", "2.0", metadata=b"Metadata-Version: 2.1\nName: requests\n")
    listed = (await page(client, world, "requests")).json()["files"][0]
    assert listed["core-metadata"]["sha256"] == hashlib.sha256(upstream.files[filename].metadata).hexdigest()
    meta = await client.get(f"/{WS}/requests/2.0/{filename}.metadata", headers=world.basic("dev@acme.test"))
    assert meta.status_code == 200 and meta.content == upstream.files[filename].metadata


def test_settings_are_records_and_credentials_never_enter_the_ledger(world, index):
    verbs.add_upstream(world.reg, OP, "cli", WS, "private", index.url, username="bot", password="hunter2-secret")
    policy = world.reg.snapshot().get(layout.upstream(WS), model.UpstreamPolicy)
    assert policy.upstreams[0].credentials is True
    every = b"".join(world.reg.ledger.repo()[o].read_raw() for o in world.reg.ledger.repo().odb)
    assert b"hunter2-secret" not in every
    verbs.remove_upstream(world.reg, OP, "cli", WS, "private")
    assert b"hunter2" not in world.reg.settings.upstream_credentials_path.read_bytes()


async def test_fetched_files_are_kept_by_gc_checked_by_verify_and_their_metadata_extracted(client, world, upstream,
                                                                                          tmp_path):
    import io
    import zipfile

    from registry import maintenance

    filename = offer(upstream, tmp_path, "requests", "2.0")
    with zipfile.ZipFile(io.BytesIO(upstream.files[filename].data)) as zf:
        real = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA")))
    upstream.files[filename].metadata = real  # (the index declares the wheel's own METADATA, PEP 658)
    await page(client, world, "requests")  # (which fetches the newest release's metadata ahead, for the resolver)
    meta_sha = hashlib.sha256(real).hexdigest()
    for _ in range(100):
        if world.reg.blobs.local_path(meta_sha) is not None:
            break
        await asyncio.sleep(0.02)
    assert upstream.asked[f"/files/{filename}.metadata"] == 1
    got = await client.get(f"/{WS}/requests/2.0/{filename}", headers=world.basic("dev@acme.test"))
    record = await recorded(world, "requests", filename)
    assert record is not None
    world.reg.blobs.delete(meta_sha)  # (a cache: gone, it is extracted from the wheel kept here)
    meta = await client.get(f"/{WS}/requests/2.0/{filename}.metadata", headers=world.basic("dev@acme.test"))
    assert meta.content == real and upstream.asked[f"/files/{filename}.metadata"] == 1
    maintenance.collect(world.reg, grace_seconds=0, repack=False)
    assert world.reg.blobs.local_path(record.sha256) is not None
    assert maintenance.verify(world.reg).ok
    world.reg.blobs.local_path(record.sha256).write_bytes(got.content[:-1] + b"!")
    problems = maintenance.verify(world.reg).problems
    assert any("fetched from upstream up" in p and "corrupt" in p for p in problems), problems
