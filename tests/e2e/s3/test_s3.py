"""What only a bucket does, against a real S3 server (SeaweedFS on 127.0.0.1): uploads streamed as
parts to their content address, conditional creates that never clobber, ranged and redirected
downloads, stale uploads swept, a bucket that can't be reached said in words, and moving a data
directory's files to a bucket. (Uploads, downloads, gc and verify also run on both stores in
test_upload.py, test_api.py, test_blobs.py and test_clients.py.)"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import httpx
import pytest
from litestar.testing import AsyncTestClient
from werkzeug.http import parse_options_header

from registry import maintenance, operations
from registry.blobs import FileBlobStore
from registry.cli import main as cli_main
from registry.config import Settings
from registry.datadir import Registry
from registry.errors import RegistryError
from registry.reads import records
from registry.web.app import create_asgi
from tests.support.helpers import free_port, make_wheel, start_server
from tests.support.world import WS, publish, upload_form

MIB = 2**20


@pytest.fixture
def settings(tmp_path, seaweed, s3_env) -> Settings:
    return Settings(data=str(tmp_path / "data"), max_upload_bytes=64 * MIB, blobs=seaweed.location())


def uploads(store) -> list[str]:
    """The keys of the multipart uploads under way under the store's prefix."""
    answer = store.bucket.client().list_multipart_uploads(Bucket=store.location.bucket, Prefix=store.location.prefix)
    return [u["Key"] for u in answer.get("Uploads", ())]


def eventually(check, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"still not so after {seconds}s"
        time.sleep(0.05)


def staged_with(store, data: bytes, announce: str | None = None):
    staged = store.stage()
    if announce:
        staged.expect(announce)
    for i in range(0, len(data), MIB):
        staged.write(data[i:i + MIB])
    return staged


def test_a_big_upload_streams_to_its_address_while_it_arrives(reg):
    store, data = reg.blobs, os.urandom(20 * MIB + 5)
    sha = hashlib.sha256(data).hexdigest()
    with staged_with(store, data, announce=sha) as staged:
        assert uploads(store) == [store.bucket.key(sha)]  # parts went out before the end arrived
        staged.make_durable()
        assert not store.exists(sha)  # every part sent, nothing visible before it is adopted
        assert store.adopt(staged) == sha and staged.created
    assert store.read(sha) == data and store.size(sha) == len(data)
    assert uploads(store) == [] and list(store.staging.iterdir()) == []


def test_without_an_announced_hash_the_parts_go_once_it_is_hashed(reg):
    store, data = reg.blobs, os.urandom(9 * MIB)
    with staged_with(store, data) as staged:
        assert uploads(store) == []
        staged.make_durable()
        assert uploads(store) == [store.bucket.key(hashlib.sha256(data).hexdigest())]
        sha = store.adopt(staged)
    assert store.read(sha) == data and uploads(store) == []


def test_content_that_does_not_hash_as_announced_leaves_nothing(reg):
    store = reg.blobs
    with staged_with(store, os.urandom(20 * MIB), announce="ab" * 32) as staged:
        assert uploads(store) == [store.bucket.key("ab" * 32)]
        assert staged.finish().sha256 != "ab" * 32
    eventually(lambda: uploads(store) == [])
    assert [s for s, _ in store.list()] == [] and list(store.staging.iterdir()) == []


@pytest.mark.parametrize("size", [5000, 3 * MIB, 12 * MIB])
def test_racing_publishes_of_the_same_bytes_never_clobber_each_other(reg, tmp_path, size, monkeypatch):
    """Eight publishes of one wheel at once, each to its own workspace (so each commits and adopts
    the same object): one request creates it, every other finds it there (412) and leaves it as it
    is; all of them succeed. (They adopt under the ledger's lock, one after another: SeaweedFS's
    If-None-Match on CompleteMultipartUpload is not atomic when completes truly overlap, as AWS's is.)"""
    from registry import identity

    store, op = reg.blobs, identity.operator()
    wheel = make_wheel(tmp_path, "racer", "1.0", payload=size, stored=True)
    for n in range(8):
        operations.create_workspace(reg, op, "cli", f"ws{n}", "W")
        operations.create_project(reg, op, "cli", f"ws{n}", "P", "P")
        operations.create_repository(reg, op, "cli", f"ws{n}", "r", "P")
        operations.create_package(reg, op, "cli", f"ws{n}", "racer", "r")
    created, real = [], store._store

    def spy(staged, **kwargs):
        real(staged, **kwargs)
        created.append(staged.created)

    monkeypatch.setattr(store, "_store", spy)
    start, results = threading.Barrier(8), []

    def race(n):
        start.wait()
        results.append(publish(reg, op, wheel, ws=f"ws{n}"))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(results) == 8 and all(r.commit is not None for r in results)
    assert sorted(created) == [False] * 7 + [True]
    assert store.read(results[0].file.sha256) == wheel.read_bytes()
    eventually(lambda: uploads(store) == [])


@pytest.mark.parametrize("size", [5000, 12 * MIB])
def test_the_collector_and_a_publish_of_the_same_object_take_turns(reg, tmp_path, size, monkeypatch):
    """The collector deletes a bucket's objects after the ledger's lock is released, each held by
    its claim; a publish of the same bytes meanwhile waits for the claim (the ledger stays free for
    every other write), then stores the object again: what its commit names is there."""
    from registry import identity

    op = identity.operator()
    operations.create_workspace(reg, op, "cli", "ws", "W")
    operations.create_project(reg, op, "cli", "ws", "P", "P")
    operations.create_repository(reg, op, "cli", "ws", "r", "P")
    operations.create_package(reg, op, "cli", "ws", "turns", "r")
    wheel = make_wheel(tmp_path, "turns", "1.0", payload=size, stored=True)
    with reg.blobs.stage() as staged:  # an orphan (a publish whose commit never landed): the collector's
        staged.write(wheel.read_bytes())
        orphan = reg.blobs.adopt(staged)
    deleting, go, real_delete = threading.Event(), threading.Event(), reg.blobs.delete

    def slow_delete(sha):
        deleting.set()
        go.wait(20)
        real_delete(sha)

    monkeypatch.setattr(reg.blobs, "delete", slow_delete)
    collector = threading.Thread(target=maintenance.collect, args=(reg,), kwargs={"repack": False})
    collector.start()
    assert deleting.wait(20)
    published: list = []
    publisher = threading.Thread(target=lambda: published.append(publish(reg, op, wheel, ws="ws")))
    publisher.start()
    time.sleep(0.5)
    assert publisher.is_alive() and not published  # (waiting for the object's claim)
    with reg.ledger.write_lock(timeout=0):  # (the ledger's lock is free: no round trip holds it)
        pass
    operations.create_package(reg, op, "cli", "ws", "meanwhile", "r")
    go.set()
    collector.join(20)
    publisher.join(20)
    assert published and published[0].commit is not None
    assert reg.blobs.read(orphan) == wheel.read_bytes() and maintenance.verify(reg).ok


@pytest.mark.parametrize("size", [5000, 12 * MIB])
def test_an_object_already_at_the_address_is_never_overwritten(reg, size):
    """Conditional create: whatever holds the address stays (here other bytes, put there behind the
    store's back, which its hash would never allow: proof that nothing was rewritten)."""
    store, data = reg.blobs, os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    store.bucket.client().put_object(Bucket=store.location.bucket, Key=store.bucket.key(sha), Body=b"first")
    with staged_with(store, data, announce=sha) as staged:
        assert store.adopt(staged) == sha and not staged.created
    assert store.read(sha) == b"first"
    with staged_with(store, data) as staged:  # repair is the one path that replaces, once a copy is not whole
        assert store.repair(staged)
    assert store.read(sha) == data


def test_a_crashed_upload_is_swept(reg):
    store = reg.blobs
    key = store.bucket.key("cd" * 32)
    store.bucket.client().create_multipart_upload(Bucket=store.location.bucket, Key=key)
    assert uploads(store) == [key]
    assert store.sweep_staging(older_than=3600) == 0  # (one under way is left alone)
    assert store.sweep_staging(older_than=-60) == 1 and uploads(store) == []
    (store.claims.directory / ("ab" * 32)).touch()  # a claim its killed holder left; one held stays
    with store.claims.hold("cd" * 32, wait=0):
        store.sweep_staging(older_than=-60)
        assert sorted(os.listdir(store.claims.directory)) == ["cd" * 32]
    assert os.listdir(store.claims.directory) == []


async def test_publish_and_download_through_the_app(client, world, tmp_path):
    """A 20 MiB wheel through the upload endpoint: streamed to the bucket, one commit whose journal
    record carries nothing; then served whole, by ranges, and to HEAD."""
    wheel = make_wheel(tmp_path, "Acme.Utils", "5.0", payload=20 * MIB, stored=True)
    data, files = upload_form(wheel)
    headers = world.basic("dev@acme.test")
    r = await client.post(f"/{WS}/", data=data, files=files, headers=headers)
    assert r.status_code == 200, r.text
    content = wheel.read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    record = list(world.reg.ledger._journal.entries())[-1]
    assert (record.copies, record.synced, record.checks) == ({}, (), {})
    assert world.reg.blobs.size(sha) == len(content) and uploads(world.reg.blobs) == []
    assert list(world.reg.blobs.staging.iterdir()) == []
    url = f"/{WS}/acme-utils/5.0/{wheel.name}"
    whole = await client.get(url, headers=headers)
    assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == sha
    assert whole.headers["etag"] == f'"{sha}"'
    for spec, expected in ((f"bytes=100-{100 + 3 * MIB}", content[100:101 + 3 * MIB]), ("bytes=-10", content[-10:]),
                           (f"bytes={len(content) - 5}-", content[-5:])):
        part = await client.get(url, headers={**headers, "range": spec})
        assert part.status_code == 206 and part.content == expected, spec
    assert (await client.get(url, headers={**headers, "range": f"bytes={len(content)}-"})).status_code == 416
    head = await client.head(url, headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(content))
    metadata = await client.get(url + ".metadata", headers=headers)  # extracted by ranged GETs, cached locally
    assert metadata.status_code == 200 and b"Name: Acme.Utils" in metadata.content


async def test_a_wrong_announced_digest_is_refused_and_leaves_nothing(client, world, tmp_path):
    wheel = make_wheel(tmp_path, "Acme.Utils", "5.0", payload=20 * MIB)
    data, files = upload_form(wheel, sha256_digest="0" * 64, blake2_256_digest=None)
    r = await client.post(f"/{WS}/", data=data, files=files, headers=world.basic("dev@acme.test"))
    assert r.status_code == 400 and "digest supplied does not match" in r.text
    eventually(lambda: uploads(world.reg.blobs) == [])
    assert [s for s, _ in world.reg.blobs.list()] == []


async def test_downloads_redirect_to_a_presigned_url(world, dists, seaweed):
    sdist, wheel = dists[("Acme.Utils", "1.0.0")]
    publish(world.reg, world.principal("dev@acme.test"), wheel)
    settings = Settings(**{**{f: getattr(world.reg.settings, f) for f in world.reg.settings.__struct_fields__},
                           "blobs_redirect": True})
    reg = Registry(settings, world.reg.ledger, world.reg.blobs)
    url, headers = f"/{WS}/acme-utils/1.0.0/{wheel.name}", world.basic("reader@acme.test")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    async with AsyncTestClient(app=create_asgi(settings, reg)) as c:
        r = await c.get(url, headers=headers, follow_redirects=False)
        assert r.status_code == 302 and r.headers["cache-control"] == "no-store"
        location = r.headers["location"]
        assert (location.startswith(seaweed.endpoint) and "X-Amz-Signature=" in location
                and "X-Amz-Expires=300" in location)
        assert (await c.get(url, follow_redirects=False)).status_code == 401  # a stranger is never sent there
        head = await c.head(url, headers=headers)  # HEAD, 304 and .metadata are answered here
        assert head.status_code == 200 and head.headers["content-length"] == str(wheel.stat().st_size)
        assert (await c.get(url, headers={**headers, "if-none-match": f'"{sha}"'},
                            follow_redirects=False)).status_code == 304
        assert (await c.get(url + ".metadata", headers=headers)).status_code == 200
    got = httpx.get(location)  # the bucket serves it, Range included, without the registry's credentials
    assert got.status_code == 200 and got.content == wheel.read_bytes()
    assert parse_options_header(got.headers["content-disposition"]) == ("attachment", {"filename": wheel.name})
    part = httpx.get(location, headers={"range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == wheel.read_bytes()[:10]


async def test_a_bucket_that_cannot_be_reached_is_a_503_that_says_so(world, dists, monkeypatch):
    _, wheel = dists[("Acme.Utils", "1.0.0")]
    publish(world.reg, world.principal("dev@acme.test"), wheel)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    down = Registry.open(world.reg.settings)
    async with AsyncTestClient(app=create_asgi(down.settings, down)) as c:
        data, files = upload_form(make_wheel(world.reg.settings.data_path, "Acme.Utils", "6.0"))
        r = await c.post(f"/{WS}/", data=data, files=files, headers=world.basic("dev@acme.test"))
        assert r.status_code == 503 and "could not be reached" in r.text and "AWS_ENDPOINT_URL" in r.text
        r = await c.get(f"/{WS}/acme-utils/1.0.0/{wheel.name}", headers=world.basic("dev@acme.test"))
        assert r.status_code == 503 and "could not be reached" in r.text
    assert records.get_version(world.reg.snapshot(), WS, "acme-utils", "6.0") is None


def test_serve_refuses_a_bucket_it_cannot_use(tmp_path, seaweed, s3_env, monkeypatch, capsys):
    monkeypatch.setenv("REGISTRY_BLOBS", "s3://no-such-bucket-here")
    monkeypatch.setenv("REGISTRY_PORT", str(free_port()))
    assert cli_main(["--data", str(tmp_path / "d"), "serve"]) == 1
    assert "no-such-bucket-here" in capsys.readouterr().err
    # (a bucket that never answered isn't remembered)
    assert not Settings(data=str(tmp_path / "d")).blobs_location_path.exists()


def make_bucket_later(seaweed, bucket: str, after: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(after), seaweed.client().create_bucket(Bucket=bucket)))
    thread.start()
    return thread


def test_serve_waits_for_a_bucket_being_made_beside_it_first_start_and_later(tmp_path, seaweed):
    """REGISTRY_BLOBS_START_WAIT (as compose sets it, where weed makes the bucket while the registry
    starts) covers the first start, which checks the bucket before recording it, as well as every
    later one: the server says it is waiting, then serves. (The first start once refused at once.)"""
    bucket = f"late-{os.urandom(6).hex()}"
    data = tmp_path / "data"
    maker = make_bucket_later(seaweed, bucket, after=3)
    server = start_server(data, workers=1, env=seaweed.env(), blobs=f"s3://{bucket}", blobs_start_wait="60")
    maker.join()
    try:
        assert "Waiting for the blob store" in server.log.read_text() and bucket in server.log.read_text()
        assert Settings(data=str(data)).blobs_location_path.read_text().strip() == f"s3://{bucket}/"
    finally:
        server.stop()
    client = seaweed.client()
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", ()):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)
    maker = make_bucket_later(seaweed, bucket, after=3)
    server = start_server(data, workers=1, env=seaweed.env(), blobs_start_wait="60")  # (recorded: not told)
    maker.join()
    try:
        assert server.log.read_text().count("Waiting for the blob store") >= 1
        assert httpx.get(f"{server.url}/_/ready", timeout=30).status_code == 200
    finally:
        server.stop()


def test_a_registry_knows_where_its_files_are(tmp_path, seaweed, s3_env, dists, monkeypatch, capsys):
    """Moved to a bucket, a data directory records it: every command uses it without being told;
    pointed elsewhere, or at a bucket while its files are still local, it refuses in words."""
    data = tmp_path / "data"
    files = Registry.open(Settings(data=str(data)), create=True)
    _world_with_a_file(files, dists)
    bucket = seaweed.location()
    with pytest.raises(RegistryError, match="move them to .* first, with `registry blobs migrate --to"):
        Registry.open(Settings(data=str(data), blobs=bucket))
    assert cli_main(["--data", str(data), "blobs", "migrate", "--to", bucket]) == 0
    assert "sent 1 files" in capsys.readouterr().out
    assert Settings(data=str(data)).blobs_location_path.read_text().strip() == bucket + "/"
    assert Registry.open(Settings(data=str(data))).blobs.remote
    with pytest.raises(RegistryError, match="files are in s3://.* not in s3://elsewhere"):
        Registry.open(Settings(data=str(data), blobs="s3://elsewhere"))


def test_migrate_moves_every_file_verified_and_resumes(tmp_path, seaweed, s3_env, dists, capsys):
    data = tmp_path / "data"
    reg = Registry.open(Settings(data=str(data)), create=True)
    files = _world_with_a_file(reg, dists, every=True)
    for f in files:
        records.core_metadata(reg, f)  # cached: moves to the local cache, not to the bucket
    bucket = seaweed.location()
    from registry.blobs.s3 import S3BlobStore

    target = S3BlobStore.from_url(bucket, local=tmp_path / "x", cache=tmp_path / "y")
    first, second = files[0], files[1]
    # as a run that was stopped left it: one file sent, one cut short (the wrong size), none of the rest
    target.put_bytes(reg.blobs.read(first.sha256))
    target.bucket.client().put_object(Bucket=target.location.bucket, Key=target.bucket.key(second.sha256),
                                      Body=b"cut short")
    with reg.ledger.write_lock(5):
        reg.ledger.checkpoint()  # (or a replay of the journal would put the small file back whole)
    local = reg.blobs.local_path(files[2].sha256)
    whole = local.read_bytes()
    local.write_bytes(b"x" * len(whole))  # a damaged local copy is never sent as if whole
    assert cli_main(["--data", str(data), "blobs", "migrate", "--to", bucket]) == 1
    said = capsys.readouterr()
    assert (f"{files[2].sha256} does not hash to its name" in said.err
            and not Settings(data=str(data)).blobs_location_path.exists())
    assert "sent 1 files" in said.out and "1 already there" in said.out  # (and the one cut short was replaced)
    local.write_bytes(whole)
    assert cli_main(["--data", str(data), "blobs", "migrate", "--to", bucket, "--delete-local"]) == 0
    out = capsys.readouterr().out
    metadata = {f.metadata_sha256 for f in files}
    assert "sent 1 files" in out and "2 already there" in out and f"{len(metadata)} cached core metadata" in out
    assert dict(target.inventory()) == {f.sha256: f.size for f in files}
    assert [s for s, _ in FileBlobStore(reg.settings.blobs_path).list()] == []  # (--delete-local)
    moved = Registry.open(Settings(data=str(data)))
    assert moved.blobs.remote and maintenance.verify(moved).ok
    for f in files:
        assert hashlib.sha256(moved.blobs.read(f.sha256)).hexdigest() == f.sha256
        assert moved.blobs.local_path(f.metadata_sha256) is not None
    assert cli_main(["--data", str(data), "blobs", "migrate", "--to", bucket]) == 0  # nothing left to send
    assert "sent 0 files (0 bytes), 0 already there" in capsys.readouterr().out


def _world_with_a_file(reg: Registry, dists, every: bool = False) -> list:
    from registry import identity

    op = identity.operator()
    operations.create_workspace(reg, op, "cli", WS, "Acme")
    operations.create_project(reg, op, "cli", WS, "CORE", "Core")
    operations.create_repository(reg, op, "cli", WS, "utils", "CORE")
    operations.create_package(reg, op, "cli", WS, "Acme.Utils", "utils")
    wanted = [dists[("Acme.Utils", "1.0.0")][1]] + ([dists[("Acme.Utils", "1.1.0")][1],
                                                     dists[("Acme.Utils", "1.0.0")][0]]
                                                     if every else [])
    for path in wanted:
        publish(reg, op, path)
    return [f for v in records.versions(reg.snapshot(), WS, "acme-utils") for f in v.files]


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_pip_and_uv_install_through_redirects_to_the_bucket(seaweed, tmp_path):
    """`REGISTRY_BLOBS_REDIRECT=1` on a served registry: twine publishes, and pip and uv follow the
    redirect to the bucket for the bytes (without taking the registry's credentials there)."""
    import sys
    from urllib.parse import quote

    from tests.support.helpers import (
        build,
        client_env,
        installed_version,
        make_project,
        new_team,
        pip_install,
        run,
        start_server,
        tool,
    )

    live = start_server(tmp_path / "data", workers=1, env=seaweed.env(), blobs=seaweed.location(), blobs_redirect="1")
    try:
        team = new_team(live)
        name = f"redirected{team['n']}"
        live.cli("package", "create", "default", name, "--repo", team["repo"])
        sdist, wheel = build(make_project(tmp_path / "src", name, "1.0"), tmp_path / "dist")
        env = client_env(tmp_path / "home")
        run([sys.executable, "-m", "twine", "upload", "--repository-url", live.index(), "-u", team["email"],
             "-p", team["token"], str(wheel), str(sdist)], env=env)
        r = httpx.get(f"{live.url}/default/{name}/1.0/{wheel.name}", auth=(team["email"], team["read_token"]))
        assert r.status_code == 302 and r.headers["location"].startswith(seaweed.endpoint)
        site, proc = pip_install(live, tmp_path, team["email"], team["read_token"], f"{name}==1.0")
        assert proc.returncode == 0 and installed_version(site, name) == "1.0", proc.stdout + proc.stderr
        host = live.url.split("://", 1)[1]
        index = f"http://{quote(team['email'], safe='')}:{team['read_token']}@{host}/default/"
        target = tmp_path / "uv-site"
        run([tool("uv"), "pip", "install", "--no-cache", "--target", str(target), "--index-url", index, f"{name}==1.0"],
            env=env)
        assert installed_version(target, name) == "1.0"
    finally:
        live.stop()
