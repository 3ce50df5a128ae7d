"""Read replicas (`registry serve --follow`): a primary and two replicas as real processes on 127.0.0.1,
with real twine, pip and uv; the files in the replicas' own blobs/ (fetched from the primary) or in
a bucket they share (SeaweedFS). Then the primary goes away and comes back, rewrites its history, or
is followed with a bad token. The fast checks at the end are in-process."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pygit2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import identity, operations
from registry.web.app import create_asgi
from tests.support import tampering
from tests.support.helpers import (
    LiveServer,
    build,
    client_env,
    free_port,
    installed_version,
    make_project,
    make_wheel,
    run,
    start_server,
    tool,
)

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")]


class Cluster:
    """A primary, its replica token, and replicas following it."""

    def __init__(self, tmp: Path, *, blobs: str = "", env: dict | None = None, workers: int = 1) -> None:
        self.tmp, self.env = tmp, dict(env or {})
        extra = dict(blobs=blobs) if blobs else {}
        self.extra = extra
        self.primary = start_server(tmp / "primary", workers=workers, env=self.env, **extra)
        self.primary.cli("user", "create", "replica@example.com", "--name", "Read replica")
        self.token = self.primary.cli("token", "create", "replica@example.com", "--replica").stdout.strip()
        self.replicas: list[LiveServer] = []

    def replica(self, name: str, workers: int = 2, blobs: str | None = None, **settings) -> LiveServer:
        extra = self.extra if blobs is None else dict(blobs=blobs)
        live = start_server(self.tmp / name, workers=workers, env={**self.env, "REGISTRY_FOLLOW_TOKEN": self.token},
                            follow=self.primary.url, **extra, **settings)
        self.replicas.append(live)
        return live

    def head(self) -> str:
        return httpx.get(f"{self.primary.url}/_/health", timeout=10).json()["ledger"]

    def caught_up(self, replica: LiveServer, timeout: float = 15) -> dict:
        head, deadline = self.head(), time.monotonic() + timeout
        while True:
            health = httpx.get(f"{replica.url}/_/health", timeout=10).json()
            if health["ledger"] == head or time.monotonic() > deadline:
                assert health["ledger"] == head, health
                return health
            time.sleep(0.05)

    def stop(self) -> None:
        for live in [*self.replicas, self.primary]:
            live.stop()


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    yield made
    made.stop()


def team(primary: LiveServer, name: str) -> tuple[str, str]:
    """A developer with write access to ``name`` (made on the primary): (email, token)."""
    email = f"dev-{name}@example.com"
    primary.cli("user", "create", email)
    primary.cli("repo", "create", f"default/{name}", "--project", "MAIN")
    primary.cli("grant", f"default/{name}", email, "write")
    primary.cli("package", "create", "default", name, "--repo", name)
    return email, primary.cli("token", "create", email).stdout.strip()


def twine_upload(server: LiveServer, email: str, token: str, files: list[Path], home: Path) -> None:
    run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/default/", "-u", email, "-p",
         token,
         *map(str, files)], env=client_env(home))


def index_url(server: LiveServer, email: str, token: str) -> str:
    return f"http://{quote(email, safe='')}:{token}@{server.url.split('://', 1)[1]}/default/"


def install_both(server: LiveServer, email: str, token: str, requirement: str, module: str, tmp: Path) -> None:
    """pip and uv install ``requirement`` from ``server`` (each into a fresh target)."""
    index = index_url(server, email, token)
    site = tmp / f"pip-site-{server.url.rsplit(':', 1)[1]}"
    run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(site), "--index-url", index,
         requirement], env=client_env(tmp / "pip-home"))
    assert installed_version(site, module) == requirement.split("==")[1]
    site = tmp / f"uv-site-{server.url.rsplit(':', 1)[1]}"
    run([tool("uv"), "pip", "install", "--no-cache", "--target", str(site), "--index-url", index, requirement],
        env=client_env(tmp / "uv-home"))
    assert installed_version(site, module) == requirement.split("==")[1]


def upload_form(wheel: Path, name: str, version: str) -> tuple[dict, dict]:
    return ({":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
             "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
             "sha256_digest": hashlib.sha256(wheel.read_bytes()).hexdigest()},
            {"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")})


# --- two replicas, for real clients ----------------------------------------------------------------


def test_publish_through_one_replica_install_from_the_other(cluster, tmp_path):
    """Local blobs: replica B has no copy of the file until someone asks it, then gets it from the primary."""
    a, b = cluster.replica("replica-a"), cluster.replica("replica-b")
    email, token = team(cluster.primary, "acme-replicated")
    src = make_project(tmp_path / "src", "acme-replicated", "1.0.0")
    sdist, wheel = build(src, src / "dist")
    twine_upload(a, email, token, [wheel, sdist], tmp_path / "twine-home")
    # read-your-writes on A: its answer came once it held the commit
    page = httpx.get(f"{a.url}/default/acme-replicated/", auth=(email, token), timeout=10)
    assert page.status_code == 200 and wheel.name in page.text and sdist.name in page.text
    health = cluster.caught_up(b)
    assert health["role"] == "replica" and health["primary"] == cluster.primary.url and health["status"] == "ok"
    assert health["lag"] == {"commits": 0, "seconds": 0.0} and health["last_fetch"]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    kept = b.data / "blobs" / "sha256" / sha[:2] / sha
    deadline = time.monotonic() + 10
    while not kept.exists():  # B fetches what is published, by itself
        assert time.monotonic() < deadline, "replica B did not fetch the published file"
        time.sleep(0.05)
    kept.unlink()  # (and a file it lacks is fetched on first read)
    install_both(b, email, token, "acme-replicated==1.0.0", "acme_replicated", tmp_path)
    assert kept.read_bytes() == wheel.read_bytes()
    # the JSON API, .metadata and the history index, from B's own clone
    api = httpx.get(f"{b.url}/api/workspaces/default/packages/pypi/acme-replicated/versions/1.0.0",
                    auth=(email, token), timeout=10)
    assert api.status_code == 200 and api.json()["files"], api.text
    meta = httpx.get(f"{b.url}/default/acme-replicated/1.0.0/{wheel.name}.metadata", auth=(email, token), timeout=10)
    assert meta.status_code == 200 and "Name: acme-replicated" in meta.text
    deadline = time.monotonic() + 10
    while True:
        history = httpx.get(f"{b.url}/api/workspaces/default/packages/pypi/acme-replicated/history",
                            auth=(email, token), timeout=10)
        if "publish acme-replicated 1.0.0" in history.text or time.monotonic() > deadline:
            break  # (the history index is caught up in the background)
        time.sleep(0.2)
    assert history.status_code == 200 and "publish acme-replicated" in history.text, history.text
    # the management API through a replica: the yank is seen by the replica that forwarded it at once
    yank = httpx.post(f"{b.url}/api/workspaces/default/packages/pypi/acme-replicated/versions/1.0.0/yank",
                      auth=(email, token), json={"reason": "test"}, timeout=30)
    assert yank.status_code == 200, yank.text
    assert re.fullmatch(r"[0-9a-f]{40}", yank.headers["x-registry-commit"])
    detail = httpx.get(f"{b.url}/default/acme-replicated/", auth=(email, token), timeout=10,
                       headers={"accept": "application/vnd.pypi.simple.v1+json"})
    assert all(f["yanked"] == "test" for f in detail.json()["files"])
    # nothing of it was committed on the replicas themselves
    for replica in (a, b):
        assert not (replica.data / "keys").exists() or not any((replica.data / "keys").iterdir())
        refused = replica.cli("package", "create", "default", "other", "--repo", "acme-replicated", check=False)
        assert refused.returncode == 1 and "read replica of" in refused.stderr
        refused = replica.cli("gc", check=False)  # (it might free what a commit it hasn't fetched yet needs)
        assert refused.returncode == 1 and "run `registry gc` on the primary" in refused.stderr
    checked = b.cli("verify", check=False)  # its copy holds up on its own: every record, file and signature
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_web_ui_sign_in_through_a_replica(cluster):
    """A session made by the primary (the sign-in form is forwarded) is good on the replica, which holds
    only the public half of the key sessions are signed with: a replica token makes nobody's session."""
    replica = cluster.replica("replica-ui", workers=1)
    seed = (cluster.primary.data / "web-session.key").read_bytes()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert not (replica.data / "web-session.key").exists()
    assert (replica.data / "web-session.pub").read_bytes() == public
    email, token = team(cluster.primary, "ui-pkg")
    with httpx.Client(base_url=replica.url, timeout=30) as browser:
        form = browser.get("/-/_/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        signed = browser.post("/-/_/signin", data={"csrf": csrf, "email": email, "token": token, "next": ""})
        assert signed.status_code in (302, 303), signed.text
        assert signed.headers["location"].startswith("/"), signed.headers  # (stays on the replica)
        page = browser.get("/-/default/packages/ui-pkg/")
        assert page.status_code == 200 and "ui-pkg" in page.text and email in page.text
        # a token made through the replica: its secret is shown once, on the page the form redirects to
        tokens = browser.get("/-/_/tokens")
        csrf = re.search(r'name="csrf" value="([^"]+)"', tokens.text).group(1)
        made = browser.post("/-/_/tokens", data={"csrf": csrf, "label": "through the replica", "scope": "read"})
        assert made.status_code == 303, made.text
        shown = browser.get(made.headers["location"])
        secret = re.search(r"rgy_[A-Za-z0-9_-]{20,}", shown.text)
        assert shown.status_code == 200 and secret, shown.text
        assert secret[0] not in browser.get("/-/_/tokens").text  # (once)


def test_replicas_on_a_shared_bucket(seaweed, tmp_path):
    """A replica on the primary's bucket serves files from it, and keeps none of its own."""
    made = Cluster(tmp_path, blobs=seaweed.location(), env=seaweed.env())
    try:
        a, b = made.replica("replica-a"), made.replica("replica-b")
        email, token = team(made.primary, "bucket-pkg")
        wheel = make_wheel(tmp_path, "bucket-pkg", "2.0")
        twine_upload(a, email, token, [wheel], tmp_path / "twine-home")
        made.caught_up(b)
        index = index_url(b, email, token)
        site = tmp_path / "uv-site"
        run([tool("uv"), "pip", "install", "--no-cache", "--target", str(site), "--index-url", index,
             "bucket-pkg==2.0"],
            env=client_env(tmp_path / "uv-home"))
        assert (site / "bucket_pkg").exists()
        got = httpx.get(f"{a.url}/default/bucket-pkg/2.0/{wheel.name}", auth=(email, token), timeout=30)
        assert got.status_code == 200 and got.content == wheel.read_bytes()
        for replica in (a, b):
            assert not (replica.data / "blobs").exists() or not any((replica.data / "blobs").rglob("*-*"))
            assert ((replica.data / "blobs-location").read_text().strip()
                    == (made.primary.data / "blobs-location").read_text().strip())
    finally:
        made.stop()


def test_a_replica_on_a_bucket_of_its_own_fills_it_from_the_primary(seaweed, tmp_path):
    """A primary on its data directory, a replica (say, in another region) on a bucket of its own: what
    is published reaches the replica's bucket, and is served from there with the primary gone."""
    made = Cluster(tmp_path, env=seaweed.env())
    try:
        replica = made.replica("replica-own-bucket", workers=1, blobs=seaweed.location())
        email, token = team(made.primary, "own-bucket")
        wheel = make_wheel(tmp_path, "own-bucket", "1.0")
        twine_upload(made.primary, email, token, [wheel], tmp_path / "twine-home")
        made.caught_up(replica)
        got = httpx.get(f"{replica.url}/default/own-bucket/1.0/{wheel.name}", auth=(email, token), timeout=30)
        assert got.status_code == 200 and got.content == wheel.read_bytes()
        assert not (replica.data / "blobs").exists() or not any((replica.data / "blobs").rglob("*-*"))
        made.primary.stop()
        site = tmp_path / "uv-site"
        run([tool("uv"), "pip", "install", "--no-cache", "--target", str(site), "--index-url",
             index_url(replica, email, token), "own-bucket==1.0"], env=client_env(tmp_path / "uv-home"))
        assert (site / "own_bucket").exists()
        checked = replica.cli("verify", check=False)  # every file its ledger names is in its bucket, whole
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        made.stop()


# --- the primary goes away, comes back, or lies ---------------------------------------------------


def test_primary_down_reads_continue_writes_refused_then_caught_up(cluster, tmp_path):
    a, b = cluster.replica("replica-a", workers=1), cluster.replica("replica-b", workers=1)
    email, token = team(cluster.primary, "uptime")
    wheel = make_wheel(tmp_path, "uptime", "1.0")
    data, files = upload_form(wheel, "uptime", "1.0")
    assert httpx.post(f"{a.url}/default/", auth=(email, token), data=data, files=files, timeout=30).status_code == 200
    cluster.caught_up(b)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    deadline = time.monotonic() + 10
    while not all((r.data / "blobs" / "sha256" / sha[:2] / sha).exists() for r in (a, b)):
        assert time.monotonic() < deadline, "the replicas did not fetch the published file by themselves"
        time.sleep(0.05)
    port = int(cluster.primary.url.rsplit(":", 1)[1])
    cluster.primary.stop()
    for replica in (a, b):
        page = httpx.get(f"{replica.url}/default/uptime/", auth=(email, token), timeout=10)
        assert page.status_code == 200 and wheel.name in page.text
    got = httpx.get(f"{a.url}/default/uptime/1.0/{wheel.name}", auth=(email, token), timeout=10)
    assert got.status_code == 200 and got.content == wheel.read_bytes()
    wheel2 = make_wheel(tmp_path, "uptime", "1.1")
    data, files = upload_form(wheel2, "uptime", "1.1")
    refused = httpx.post(f"{b.url}/default/", auth=(email, token), data=data, files=files, timeout=30)
    assert refused.status_code == 503, refused.text
    assert f"The primary registry at {cluster.primary.url} is unreachable" in refused.text and "Retry" in refused.text
    refused = httpx.post(f"{b.url}/api/workspaces/default/packages", auth=(email, token),
                         json={"name": "x", "repository": "uptime"}, timeout=30)
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert "unreachable" in refused.json()["detail"]  # (the API's refusals are problem documents, here too)
    deadline = time.monotonic() + 15
    while (health := httpx.get(f"{a.url}/_/health", timeout=10).json())["primary_reachable"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    assert health["status"] == "ok" and "unreachable" in health["error"]

    old = cluster.primary
    cluster.primary = start_server(old.data, workers=1, port=port)
    cluster.primary.token = old.token
    r = httpx.post(f"{cluster.primary.url}/default/", auth=(email, token), data=data, files=files, timeout=30)
    assert r.status_code == 200, r.text
    for replica in (a, b):  # by themselves: no one asked them
        health = cluster.caught_up(replica, timeout=20)
        assert health["primary_reachable"] and "error" not in health
        page = httpx.get(f"{replica.url}/default/uptime/", auth=(email, token), timeout=10)
        assert wheel2.name in page.text


def test_a_rewritten_primary_is_refused(cluster, tmp_path):
    replica = cluster.replica("replica", workers=1)
    email, token = team(cluster.primary, "rewritten")
    before = cluster.caught_up(replica)["ledger"]
    tampering.amend_last(cluster.primary.data, tmp_path / "clone")
    cluster.primary.cli("user", "create", "after@example.com")  # (a new head, on the rewritten history)
    deadline = time.monotonic() + 15
    while (health := httpx.get(f"{replica.url}/_/health", timeout=10).json())["status"] != "stopped":
        assert time.monotonic() < deadline, health
        time.sleep(0.1)
    assert "rewrite" in health["stopped"] and cluster.primary.url in health["stopped"], health
    assert health["ledger"] == before and "start it on an empty data directory" in health["action"]
    # it keeps serving what it had, and takes no writes
    page = httpx.get(f"{replica.url}/default/rewritten/", auth=(email, token), timeout=10)
    assert page.status_code == 200
    refused = httpx.post(f"{replica.url}/api/workspaces/default/packages", auth=(email, token),
                         json={"name": "x", "repository": "rewritten"}, timeout=30)
    assert refused.status_code == 503 and "no longer follows" in refused.text
    # and says so again when restarted
    replica.stop()
    again = start_server(replica.data, workers=1, env={"REGISTRY_FOLLOW_TOKEN": cluster.token},
                         follow=cluster.primary.url)
    cluster.replicas.append(again)
    assert "WARNING" in again.log.read_text() and "rewrite" in again.log.read_text()
    assert httpx.get(f"{again.url}/_/health", timeout=10).json()["status"] == "stopped"


def test_bad_or_missing_replica_tokens_are_refused(cluster, tmp_path):
    serve = [sys.executable, "-m", "registry", "--data", str(tmp_path / "r"), "serve", "--port",
             str(free_port()), "--follow", cluster.primary.url]
    env = {"PATH": "/usr/bin:/bin"}
    missing = run(serve, env=env, check=False, timeout=60)
    assert missing.returncode == 1 and "needs a replica token" in missing.stderr and "--replica" in missing.stderr
    bad = run([*serve, "--token", "rgy_not-a-token"], env=env, check=False, timeout=60)
    assert bad.returncode == 1 and "refused the replica token (401" in bad.stderr, bad.stderr
    email, token = team(cluster.primary, "tokens")  # a person's write token is no replica token
    wrong = run(serve, env={**env, "REGISTRY_FOLLOW_TOKEN": token}, check=False, timeout=60)
    assert wrong.returncode == 1 and "refused the replica token (403" in wrong.stderr
    assert not (tmp_path / "r").exists()  # (a refused start leaves no data directory behind)
    there = tmp_path / "there"  # ... but never removes one that was there before
    there.mkdir()
    (there / "notes.txt").write_text("mine")
    kept = run([*serve[:4], str(there), *serve[5:], "--token", "rgy_not-a-token"], env=env, check=False, timeout=60)
    assert kept.returncode == 1 and (there / "notes.txt").read_text() == "mine"
    unreachable = run([*serve[:-1], f"http://127.0.0.1:{free_port()}", "--token", cluster.token], env=env,
                      check=False, timeout=60)
    assert unreachable.returncode == 1 and "unreachable" in unreachable.stderr and not (tmp_path / "r").exists()
    # a replica token reads nothing but the ledger and files
    auth = ("__token__", cluster.token)
    assert httpx.get(f"{cluster.primary.url}/default/tokens/", auth=auth, timeout=10).status_code == 404
    wheel = make_wheel(tmp_path, "tokens", "1.0")
    data, files = upload_form(wheel, "tokens", "1.0")
    # (its scope publishes nothing: told so, in the same words whether the package exists or not)
    refused = httpx.post(f"{cluster.primary.url}/default/", auth=auth, data=data, files=files, timeout=30)
    assert refused.status_code == 403 and "replica scope" in refused.text
    data, files = upload_form(make_wheel(tmp_path, "nothing-here", "1.0"), "nothing-here", "1.0")
    again = httpx.post(f"{cluster.primary.url}/default/", auth=auth, data=data, files=files, timeout=30)
    assert (again.status_code, again.text) == (refused.status_code, refused.text)
    assert httpx.get(f"{cluster.primary.url}/_/blobs/{'0' * 64}", auth=(email, token), timeout=10).status_code == 403
    assert httpx.get(f"{cluster.primary.url}/_/blobs/{'0' * 64}", timeout=10).status_code == 401
    assert httpx.get(f"{cluster.primary.url}/_/blobs/{'0' * 64}", auth=auth, timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/default/", "/default/packages", "/-/", "/anything/at/all/"])
def test_a_primary_given_by_a_url_below_its_root_is_followed_at_its_root(cluster, path):
    """A workspace's URL (what users copy from the index settings) was followed as the root, and every
    request to the primary was a project page: "'_' is not a valid project name"."""
    replica = start_server(cluster.tmp / f"below-{len(cluster.replicas)}", workers=1,
                           env={"REGISTRY_FOLLOW_TOKEN": cluster.token}, follow=cluster.primary.url + path)
    cluster.replicas.append(replica)
    out = replica.log.read_text()
    assert (f"--follow {cluster.primary.url}{path.rstrip('/')}: that is a page of the registry at "
            f"{cluster.primary.url}") in out and f"Give --follow {cluster.primary.url} " in out
    assert f"Serving a read replica of {cluster.primary.url} " in out
    assert (replica.data / "replica-of").read_text().strip() == cluster.primary.url
    cluster.primary.cli("user", "create", f"seen{len(cluster.replicas)}@example.com")
    assert cluster.caught_up(replica)["role"] == "replica"


# --- in-process -----------------------------------------------------------------------------------


async def test_the_checkpoint_waits_for_the_next_commit(world):
    import threading

    from litestar.testing import AsyncTestClient

    app = create_asgi(world.reg.settings, world.reg)
    async with AsyncTestClient(app=app) as c:
        head = world.reg.ledger.head()
        started = time.monotonic()
        later = threading.Timer(0.3,
                                lambda: operations.create_user(world.reg, identity.operator(), "cli", "late@acme.test"))
        later.start()  # (a thread: the test client holds this event loop while it waits)
        r = await c.get("/_/ledger/checkpoint", params={"wait": head})
        later.join()
        assert r.status_code == 200 and 0.3 <= time.monotonic() - started < 5
        assert world.reg.ledger.head() != head
        other = await c.get("/_/ledger/checkpoint", params={"wait": "0" * 40})  # (another head: at once)
        assert other.status_code == 200


async def test_every_write_names_its_commit(client, world):
    r = await client.post("/api/workspaces/acme/packages", headers=world.basic("owner@acme.test"),
                          json={"name": "named", "repository": "utils"})
    assert r.status_code == 201 and r.headers["x-registry-commit"] == world.reg.ledger.head()
    again = await client.post("/api/workspaces/acme/packages", headers=world.basic("owner@acme.test"),
                              json={"name": "named", "repository": "utils"})
    assert again.status_code == 409 and "x-registry-commit" not in again.headers
    assert again.headers["x-registry-head"] == world.reg.ledger.head()
    assert "x-registry-commit" not in (await client.get("/acme/", headers=world.basic("owner@acme.test"))).headers


def test_a_replica_token_is_made_by_the_operator_only(world):
    with pytest.raises(Exception, match="replica tokens"):
        operations.create_token(world.reg, world.principal("owner@acme.test"), "api", "owner@acme.test", "replica")
    secret, record = operations.create_token(world.reg, identity.operator(), "cli", "owner@acme.test", "replica")
    who = identity.check_token(world.reg.snapshot(), "__token__", secret)
    assert who.kind == "replica" and identity.may_fetch_ledger(who) and identity.may_read_blobs(who)


async def test_a_write_the_replica_cannot_show_in_time_is_a_504_that_says_so(tmp_path):
    """The primary did it, the replica's copy didn't get there in time: not a failure to retry blindly."""
    from registry.web.forward import Forwarder

    primary = start_server(tmp_path / "primary", workers=1)
    try:
        class Behind:  # a follower whose copy never catches up
            def __init__(self) -> None:
                self.primary = primary.url
                self.timeout = 8.0

            def stopped(self) -> None:
                return None

            async def wait_for(self, commit: str) -> bool:
                return False

        forward = Forwarder(Behind())
        sent: list[dict] = []
        body = b'{"name": "late-pkg", "repository": "packages"}'
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive():
            return next(messages)

        async def send(message):
            sent.append(message)

        basic = base64.b64encode(f"{primary.admin}:{primary.token}".encode())
        scope = {"type": "http", "method": "POST", "path": "/api/workspaces/default/packages",
                 "raw_path": b"/api/workspaces/default/packages", "query_string": b"", "client": ("127.0.0.1", 1),
                 "headers": [(b"authorization", b"Basic " + basic), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode()), (b"host", b"replica.test")]}
        await forward(scope, receive, send)
        await forward.aclose()
        assert sent[0]["status"] == 504
        text = sent[1]["body"].decode()
        assert f"The primary at {primary.url} did the write (commit " in text and "retry the read here" in text
        made = httpx.get(f"{primary.url}/api/workspaces/default/packages/pypi/late-pkg",
                         auth=(primary.admin, primary.token), timeout=10)
        assert made.status_code == 200  # (it was done, as the 504 said)
    finally:
        primary.stop()


def test_how_long_a_forwarded_write_waits_is_a_setting(monkeypatch, tmp_path):
    from registry.config import Settings
    from registry.ledger import Ledger
    from registry.replica.follow import Follower

    monkeypatch.setenv("REGISTRY_FOLLOW_WAIT_SECONDS", "45")
    settings = Settings.load(data=str(tmp_path / "replica"), follow="http://primary.test")
    pygit2.init_repository(str(settings.ledger_path), bare=True, initial_head="main")  # (as a new replica's)
    assert Follower(settings, Ledger(settings.ledger_path)).wait_write == 45
    monkeypatch.setenv("REGISTRY_FOLLOW_WAIT_SECONDS", "0")
    with pytest.raises(SystemExit, match="REGISTRY_FOLLOW_WAIT_SECONDS='0': give a number of seconds above 0"):
        Settings.load()
