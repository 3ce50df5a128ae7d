"""The legacy upload endpoint in-process: every bad input is a clear 4xx that changes nothing; each
test runs with the files in the data directory and in a bucket (SeaweedFS)."""

import base64
import hashlib
import zipfile

import pytest

from registry import layout, model, operations
from registry.reads import records
from tests.support.helpers import make_wheel
from tests.support.world import BOTH, WS, publish, upload_form
from tests.unit.test_dists import wheel

pytestmark = BOTH


def state(world):
    """Everything an upload could change: the branch tip, the stored blobs, the staging area."""
    blobs = world.reg.blobs
    return world.reg.ledger.head(), sorted(s for s, _ in blobs.list()), sorted(blobs.staging.iterdir())


async def post(client, world, path, who="dev@acme.test", url=f"/{WS}/", **overrides):
    data, files = upload_form(path, **overrides)
    headers = world.basic(who) if who else {}
    return await client.post(url, data=data, files=files, headers=headers)


async def test_publish_wheel_and_sdist(client, world, dists):
    sdist, wheel = dists[("Acme.Utils", "1.0.0")]
    for path in (wheel, sdist):
        r = await post(client, world, path)
        assert r.status_code == 200, r.text
        assert r.text.startswith(f"Published acme-utils 1.0.0: {path.name}")
    snap = world.reg.snapshot()
    version = snap.get(layout.version(WS, "acme-utils", "1"), model.Version)
    assert [f.filename for f in version.files] == sorted([wheel.name, sdist.name])
    f = next(f for f in version.files if f.filename == wheel.name)
    assert f.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest() and f.size == wheel.stat().st_size
    assert (f.uploaded.by, f.uploaded.channel,
            f.uploaded.token) == ("dev@acme.test", "upload", world.principal("dev@acme.test").token_id)
    assert world.reg.blobs.exists(f.sha256)
    assert not world.reg.blobs.exists(f.metadata_sha256)  # a cache, filled when first asked for
    assert hashlib.sha256(records.core_metadata(world.reg, f)).hexdigest() == f.metadata_sha256
    assert world.reg.blobs.exists(f.metadata_sha256)
    commit = world.reg.ledger.commit(world.reg.ledger.head())
    assert commit.summary == f"publish acme-utils 1.0.0: {sdist.name}"
    assert commit.author_email == "dev@acme.test"
    assert dict(commit.trailers)["Channel"] == "upload" and dict(commit.trailers)["Package"] == "acme-utils"


async def test_the_identical_file_again_is_ok_and_changes_nothing(client, world, dists):
    _, wheel = dists[("Acme.Utils", "1.0.0")]
    assert (await post(client, world, wheel)).status_code == 200
    before = state(world)
    r = await post(client, world, wheel)
    assert r.status_code == 200 and "already published with identical content" in r.text
    assert state(world) == before


async def test_same_filename_other_bytes_is_file_already_exists(client, world, dists, tmp_path):
    _, wheel = dists[("Acme.Utils", "1.0.0")]
    assert (await post(client, world, wheel)).status_code == 200
    impostor = tmp_path / wheel.name  # the same filename, rebuilt with one more file in it
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(impostor, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("acme_utils/extra.py", "sneaky = True\n")
    before = state(world)
    r = await post(client, world, wheel, content=impostor.read_bytes(),
                   sha256_digest=hashlib.sha256(impostor.read_bytes()).hexdigest(), blake2_256_digest=None)
    assert r.status_code == 400
    assert r.text.startswith(f"File already exists ('{wheel.name}', with blake2_256 hash")
    assert state(world) == before


async def test_a_deleted_filename_is_never_accepted_again(client, world, dists):
    _, wheel = dists[("Acme.Utils", "1.0.0")]
    assert (await post(client, world, wheel)).status_code == 200
    operations.delete_version(world.reg, world.principal("dev@acme.test"), "api", WS, "acme-utils", "1.0.0")
    before = state(world)
    r = await post(client, world, wheel)
    assert r.status_code == 400 and "previously used by a file that has since been deleted" in r.text
    assert state(world) == before


async def test_an_upload_waits_for_another_writer_in_a_thread(client, world, dists):
    """Small uploads commit on the event loop only when the ledger is free; when another writer
    (here: another thread, as another process would) holds it, they wait for it off the loop."""
    import asyncio
    import threading

    _, wheel = dists[("Acme.Utils", "1.0.0")]
    held, release = threading.Event(), threading.Event()

    def writer():
        with world.reg.ledger.write_lock(5):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait(5)
    before = world.reg.ledger.head()
    sent = []
    upload = asyncio.ensure_future(_serve_upload(client, world, wheel, sent))
    await asyncio.sleep(0.3)  # (this sleep ends only if the event loop isn't blocked)
    assert not upload.done() and world.reg.ledger.head() == before
    release.set()
    await asyncio.wait_for(upload, 5)
    thread.join()
    assert sent[0]["status"] == 200 and sent[1]["body"].startswith(b"Published acme-utils 1.0.0"), sent
    assert world.reg.ledger.head() != before


async def _serve_upload(client, world, path, sent: list, cut: int | None = None):
    """One upload through the app as served, on this event loop (the test client would run the app
    in a thread of its own); ``cut``: the client hangs up after that many bytes of the body."""
    import httpx

    data, files = upload_form(path)
    request = httpx.Request("POST", f"http://test/{WS}/", data=data, files=files, headers=world.basic("dev@acme.test"))
    body = request.read()
    if cut is None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
    else:
        messages = [{"type": "http.request", "body": body[:cut], "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": f"/{WS}/", "raw_path": f"/{WS}/".encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await client.served(scope, receive, send)


async def test_small_wheels_commit_on_the_event_loop_and_sdists_in_a_thread(client, world, dists, monkeypatch, backend):
    """Finding an sdist's PKG-INFO may mean decompressing a lot: never on the event loop. Nor is
    storing a file in a bucket (a round trip)."""
    import registry.web.upload as upload_module

    hops, real = [], upload_module.anyio.to_thread.run_sync

    async def spy(fn, *args, **kwargs):
        hops.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(upload_module.anyio.to_thread, "run_sync", spy)
    sdist, wheel = dists[("Acme.Utils", "1.0.0")]
    assert (await post(client, world, wheel)).status_code == 200
    assert hops == ([] if backend == "file" else ["check_and_publish"])
    hops.clear()
    assert (await post(client, world, sdist)).status_code == 200
    assert hops == ["check_and_publish"]


async def test_an_upload_over_a_mib_is_spilled_to_disk_and_made_durable_before_its_record(
        client, world, tmp_path, backend):
    """Files: synced (data and name) before the record, which holds its size and hash for a replay.
    A bucket: stored by a request that returned before the record was written: the record carries
    nothing (no copy, nothing to check at a replay: the object is the bucket's to keep)."""

    # random: it doesn't compress (limit here: 2 MiB)
    wheel = make_wheel(tmp_path, "Acme.Utils", "4.0", payload=3 * 2**19)
    r = await post(client, world, wheel)
    assert r.status_code == 200, r.text
    version = world.reg.snapshot().get(layout.version(WS, "acme-utils", "4"), model.Version)
    sha256 = version.files[0].sha256
    assert world.reg.blobs.read(sha256) == wheel.read_bytes()
    record = list(world.reg.ledger._journal.entries())[-1]
    if backend == "s3":
        assert (record.copies, record.synced, record.checks) == ({}, (), {})
        assert world.reg.blobs.local_path(sha256) is None  # (in the bucket only)
    else:
        assert record.copies == {} and any(p.endswith(sha256) for p in record.synced)  # too big to carry
        assert {size for size, _ in record.checks.values()} == {wheel.stat().st_size}  # checked at a replay
    assert list(world.reg.blobs.staging.iterdir()) == []


async def test_legacy_path_and_no_trailing_slash_accept_uploads_without_redirecting(client, world, dists):
    sdist, wheel = dists[("Acme.Utils", "1.1.0")]
    assert (await post(client, world, wheel, url=f"/{WS}/legacy/")).status_code == 200
    assert (await post(client, world, sdist, url=f"/{WS}")).status_code == 200
    wrong = await post(client, world, sdist, url=f"/{WS}/elsewhere/")
    assert wrong.status_code == 404 and wrong.text.startswith(f"Uploads go to /{WS}/ (or /{WS}/legacy/)")


async def test_a_client_that_hangs_up_mid_upload_leaves_nothing_behind(client, world, dists):
    _, wheel = dists[("Acme.Utils", "1.0.0")]
    before = state(world)
    sent = []
    await _serve_upload(client, world, wheel, sent, cut=wheel.stat().st_size // 2)
    assert sent == [] and state(world) == before


def wheel_of(dists):
    return dists[("Acme.Utils", "1.0.0")][1]


BAD = [
    # (overrides, status, message)
    (dict(sha256_digest="0" * 64), 400, "digest supplied does not match"),
    (dict(blake2_256_digest="f" * 64), 400, "digest supplied does not match"),
    (dict(md5_digest="0" * 32), 400, "digest supplied does not match"),
    (dict(sha256_digest=None, blake2_256_digest=None), 400, "Include at least one message digest"),
    # (a name the uploader may publish to: another is refused for permission, before the file is read)
    (dict(name="public-pkg", who="wsadmin@acme.test"), 400, "doesn't match the file's metadata name"),
    (dict(version="9.9"), 400, "doesn't match the file's metadata version"),
    (dict(version="not a version"), 400, "invalid value for Version"),
    (dict(name="bad name!"), 400, "Invalid package name"),
    (dict(name=None), 400, "Missing required form field 'name'"),
    (dict(filetype="bdist_egg"), 400, "Use a known file type"),
    (dict(filetype="sdist", pyversion="source"), 400, "is not a sdist"),
    (dict(pyversion=None), 400, "Python version is required"),
    (dict(filename="../../etc/acme_utils-1.0.0-py3-none-any.whl"), 400, "Invalid filename"),
    (dict(filename="acme_utils-1.0.0.tar.bz2", filetype="sdist", pyversion="source"), 400, "Invalid file extension"),
    # a .zip sdist is accepted, but a wheel's bytes are not one
    (dict(filename="acme_utils-1.0.0.zip", filetype="sdist", pyversion="source"), 400,
     "acme_utils-1.0.0/PKG-INFO is missing"),
    (dict(filename="acme_utils-1.0.0-py3-none-any.whl", content=b"not a zip at all"), 400, "not a zip archive"),
    (dict(**{":action": "submit"}), 410, "pre-registration is no longer required"),
    (dict(**{":action": "frobnicate"}), 400, ":action"),
    (dict(protocol_version="2"), 400, "Unknown protocol version"),
]


@pytest.mark.parametrize(("overrides", "status", "message"), BAD)
async def test_bad_uploads(client, world, dists, overrides, status, message):
    wheel = wheel_of(dists)
    content = overrides.get("content")
    if content is not None and "sha256_digest" not in overrides:
        overrides = {**overrides, "sha256_digest": hashlib.sha256(content).hexdigest(), "blake2_256_digest": None}
    before = state(world)
    r = await post(client, world, wheel, **overrides)
    assert r.status_code == status, r.text
    assert message in r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert state(world) == before


@pytest.mark.parametrize(("who", "status", "message"), [
    (None, 401, "Publishing requires credentials"),
    ("reader@acme.test", 403, "needs write permission on repository acme/utils"),
    # (it may not read it: answered as a missing package, a 403 saying how a package gets created)
    ("outsider@acme.test", 403, "Package 'acme-utils' does not exist in workspace acme"),
    ("dev-readonly", 403, "read scope"),
])
async def test_who_may_publish(client, world, dists, who, status, message):
    before = state(world)
    data, files = upload_form(wheel_of(dists))
    headers = world.basic(who) if who else {}
    r = await client.post(f"/{WS}/", data=data, files=files, headers=headers)
    assert r.status_code == status and message in r.text, r.text
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic")
    assert state(world) == before


async def test_wrong_token_is_401(client, world, dists):
    data, files = upload_form(wheel_of(dists))
    bad = {"authorization": "Basic " + base64.b64encode(b"dev@acme.test:rgy_wrong").decode()}
    r = await client.post(f"/{WS}/", data=data, files=files, headers=bad)
    assert r.status_code == 401 and "Invalid credentials" in r.text and r.headers["www-authenticate"]


async def test_package_must_be_created_first(client, world, dists, tmp_path):
    before = state(world)
    r = await post(client, world, dists[("public-pkg", "0.1")][1], who="wsadmin@acme.test")
    assert r.status_code == 200  # public-pkg exists
    operations.delete_package(world.reg, world.principal("wsadmin@acme.test"), "api", WS, "public-pkg")
    before = state(world)
    r = await post(client, world, dists[("public-pkg", "0.1")][1], who="wsadmin@acme.test")
    assert r.status_code == 403 and "registry package create acme public-pkg --repo REPO" in r.text
    assert "registry repo set acme/REPO --create-on-publish" in r.text
    assert state(world) == before
    # where its repository creates packages on publish, the publish creates it again, there
    operations.set_create_on_publish(world.reg, world.principal("wsadmin@acme.test"), "api", WS, "public-lib", True)
    r = await post(client, world, dists[("public-pkg", "0.1")][1], who="wsadmin@acme.test")
    assert r.status_code == 400 and "previously used" in r.text  # (its deleted filenames stay spent)
    r = await post(client, world, make_wheel(tmp_path, "public-pkg", "0.2"), who="wsadmin@acme.test")
    assert r.status_code == 200 and "created package public-pkg, linked to acme/public-lib" in r.text


async def test_oversize_is_413_with_the_limit(client, world, dists):
    junk = b"PK" + bytes(3 * 2**20)
    before = state(world)
    r = await post(client, world, wheel_of(dists), content=junk, sha256_digest=hashlib.sha256(junk).hexdigest(),
                   blake2_256_digest=None)
    assert r.status_code == 413 and "limit is 2097152 bytes (2 MiB)" in r.text
    assert state(world) == before


async def test_malformed_multipart(client, world):
    before = state(world)
    headers = world.basic("dev@acme.test") | {"content-type": "multipart/form-data; boundary=xyz"}
    r = await client.post(f"/{WS}/", content=b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
                          headers=headers)
    assert r.status_code == 400 and "Malformed multipart body" in r.text
    r = await client.post(f"/{WS}/", content=b"name=x",
                          headers=world.basic("dev@acme.test") | {"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "multipart/form-data" in r.text
    assert state(world) == before


async def test_no_file_part(client, world, dists):
    data, _ = upload_form(wheel_of(dists))
    r = await client.post(f"/{WS}/", data=data, files={"other": ("x.txt", b"x")}, headers=world.basic("dev@acme.test"))
    assert r.status_code == 400 and "does not have a file" in r.text


async def test_unknown_workspace(client, world, dists):
    r = await post(client, world, wheel_of(dists), url="/nowhere/")
    assert r.status_code == 404 and "Workspace 'nowhere' does not exist" in r.text


async def test_publish_helper_matches_endpoint(world, dists):
    published = publish(world.reg, world.principal("dev@acme.test"), wheel_of(dists))
    assert published.commit is not None and published.version.version == "1.0.0"


async def test_one_wheel_spelt_two_ways_is_refused(client, world, tmp_path):
    first = wheel(tmp_path, "acme_utils-1.0-py3-none-any.whl", name="Acme.Utils")
    assert (await post(client, world, first)).status_code == 200
    (tmp_path / "old").mkdir()
    other = wheel(tmp_path / "old", "Acme.Utils-1.0-py3-none-any.whl", name="Acme.Utils")  # as older tools spell it
    before = state(world)
    r = await post(client, world, other)
    assert r.status_code == 400
    assert "File already exists under another spelling ('acme_utils-1.0-py3-none-any.whl')" in r.text
    assert state(world) == before
    # another build of the same version (other tags) is a file of its own
    (tmp_path / "py2").mkdir()
    assert (await post(client, world, wheel(tmp_path / "py2", "Acme.Utils-1.0-py2.py3-none-any.whl",
                                            name="Acme.Utils"))).status_code == 200
