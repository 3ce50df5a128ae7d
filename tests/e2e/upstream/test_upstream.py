"""One index for everything: a workspace's own packages and its upstream indexes' through one URL,
with real servers on 127.0.0.1 as upstreams (a second registry: JSON, upload-time, PEP 658; a
pypiserver: HTML only, credentials, no upload-time) and real clients (pip, uv, poetry).

The confusion attempt is the point: upstream holds the workspace's own name at a much higher
version, with another payload; every client pointed at the workspace alone gets the workspace's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.clients.test_import import start_pypiserver
from tests.support.helpers import client_env, make_wheel, run, start_server, tool
from tests.support.upstream_index import Index, Served
from tests.support.world import upload_form

pytestmark = pytest.mark.e2e


def publish(url: str, ws: str, email: str, token: str, path: Path) -> None:
    fields, files = upload_form(path)
    answer = httpx.post(f"{url}/{ws}/", data=fields, files=files, auth=(email, token), timeout=30)
    assert answer.status_code == 200, answer.text


def installed(site: Path) -> dict[str, str]:
    """name -> version of what pip or uv installed into ``site``."""
    out = {}
    for d in site.glob("*.dist-info"):
        name, version = d.name.removesuffix(".dist-info").rsplit("-", 1)
        out[name.lower().replace("_", "-")] = version
    return out


class Upstreams:
    """The two upstream indexes and the registry under test, with the packages each holds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        wheels = root / "wheels"
        wheels.mkdir()
        # upstream 1: another registry, the team's corporate mirror (JSON, upload-time, PEP 658)
        self.mirror = start_server(root / "mirror", workers=1)
        m = self.mirror
        m.cli("user", "create", "pub@mirror.test")
        m.cli("repo", "create", "default/mirrored", "--project", "MAIN")
        m.cli("grant", "default/mirrored", "pub@mirror.test", "write")
        self.mirror_token = m.cli("token", "create", "pub@mirror.test").stdout.strip()
        self.mirror_read = m.cli("token", "create", "pub@mirror.test", "--scope", "read").stdout.strip()
        for name, version, requires in (
                ("acme-utils", "99.0", ()),  # the squatter: the workspace's own name, a higher version
                ("acme-tools", "99.0", ()),  # ... and of a name the workspace deletes
                ("dep-a", "1.0", ("dep-c",)), ("dep-a", "2.0", ("dep-c>=1.1",)), ("dep-b", "1.0", ()),
                ("evil-pkg", "1.0", ())):
            if version in ("99.0", "1.0"):  # (the first file of each name)
                m.cli("package", "create", "default", name, "--repo", "mirrored")
            publish(m.url, "default", "pub@mirror.test", self.mirror_token,
                    make_wheel(wheels, name, version, payload=2048, requires=requires))
        # upstream 2: pypiserver behind a password (HTML only, no upload-time)
        served = root / "pypiserver-packages"
        served.mkdir()
        for name, version in (("dep-c", "1.0"), ("dep-c", "1.1"), ("acme-utils", "100.0")):
            make_wheel(served, name, version, payload=1024)
        self.pypiserver, self.pypiserver_url = start_pypiserver(served, "up", "s3cret pass")
        # the registry under test: its workspace owns acme-utils and our-app
        self.front = start_server(root / "front", workers=2)
        f = self.front
        f.cli("repo", "create", "default/app", "--project", "MAIN")
        owned = (("acme-utils", "1.0", ()), ("acme-tools", "1.0", ()),
                 ("our-app", "1.0", ("acme-utils", "dep-a", "dep-b")))
        for name, version, requires in owned:
            f.cli("package", "create", "default", name, "--repo", "app")
            publish(f.url, "default", f.admin, f.token, make_wheel(wheels, name, version, requires=requires))
        f.cli("upstream", "add", "default", "mirror", m.index(), "--username", "pub@mirror.test",
              "--password", self.mirror_read)
        f.cli("upstream", "add", "default", "pyserver", self.pypiserver_url + "/simple/", "--username", "up",
              "--password", "s3cret pass")

    def index(self) -> str:
        host = self.front.url.split("://", 1)[1]
        return f"http://{quote(self.front.admin, safe='')}:{self.front.token}@{host}/default/"

    def stop_upstreams(self) -> None:
        self.mirror.stop()
        self.pypiserver.terminate()
        self.pypiserver.wait(10)

    def close(self) -> None:
        self.stop_upstreams()
        self.front.stop()


@pytest.fixture(scope="module")
def ups(tmp_path_factory):
    u = Upstreams(tmp_path_factory.mktemp("upstream"))
    yield u
    u.close()


def pip(ups: Upstreams, tmp_path: Path, *requirements: str) -> tuple[Path, subprocess.CompletedProcess]:
    target = tmp_path / f"pip-{len(list(tmp_path.glob('pip-*')))}"
    proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target),
                "--index-url", ups.index(), *requirements], env=client_env(tmp_path / "pip-home"), check=False)
    return target, proc


def uv(ups: Upstreams, tmp_path: Path, *requirements: str) -> tuple[Path, subprocess.CompletedProcess]:
    target = tmp_path / f"uv-{len(list(tmp_path.glob('uv-*')))}"
    proc = run([tool("uv"), "pip", "install", "--no-cache", "--python", sys.executable, "--target", str(target),
                "--index-url", ups.index(), *requirements], env=client_env(tmp_path / "uv-home"), check=False)
    return target, proc


def poetry_lock(ups: Upstreams, tmp_path: Path, requirement: str) -> tuple[str, subprocess.CompletedProcess]:
    """`poetry add` from the workspace alone (its only source, primary): the lock file and the process."""
    project = tmp_path / f"poetry-{len(list(tmp_path.glob('poetry-*')))}"
    project.mkdir()
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [tool.poetry]
        name = "consumer"
        version = "0.1.0"
        description = ""
        authors = ["Test <test@example.com>"]
        package-mode = false

        [tool.poetry.dependencies]
        python = "^3.11"

        [[tool.poetry.source]]
        name = "registry"
        url = "{ups.front.index()}"
        priority = "primary"
        """))
    env = client_env(tmp_path / "poetry-home")
    run([tool("poetry"), "config", "http-basic.registry", ups.front.admin, ups.front.token], env=env, cwd=project)
    proc = run([tool("poetry"), "add", "--lock", requirement], env=env, cwd=project, check=False)
    lock = project / "poetry.lock"
    return (lock.read_text() if lock.exists() else ""), proc


def locked(lock: str) -> dict[str, str]:
    out, name = {}, None
    for line in lock.splitlines():
        if line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith("version = ") and name:
            out[name] = line.split('"')[1]
            name = None
    return out


TREE = {"our-app": "1.0", "acme-utils": "1.0", "dep-a": "2.0", "dep-b": "1.0", "dep-c": "1.1"}


def the_tree_installs_with_every_client(ups: Upstreams, tmp_path: Path) -> None:
    site, proc = pip(ups, tmp_path, "our-app")
    assert proc.returncode == 0, proc.stderr
    assert installed(site) == TREE
    site, proc = uv(ups, tmp_path, "our-app")
    assert proc.returncode == 0, proc.stderr
    assert installed(site) == TREE
    lock, proc = poetry_lock(ups, tmp_path, "our-app")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert locked(lock) == TREE


def test_a_half_private_tree_installs_from_the_one_url_with_pip_uv_and_poetry(ups, tmp_path):
    the_tree_installs_with_every_client(ups, tmp_path)
    lock, proc = poetry_lock(ups, tmp_path, "our-app")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert locked(lock) == TREE


@pytest.mark.parametrize("client", ["pip", "uv", "poetry"])
def test_upstream_never_answers_for_a_name_the_workspace_owns(ups, tmp_path, client):
    """acme-utils 99.0 (mirror) and 100.0 (pypiserver) lose to the workspace's 1.0, whatever the client."""
    if client == "poetry":
        lock, proc = poetry_lock(ups, tmp_path, "acme-utils")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert locked(lock) == {"acme-utils": "1.0"}
    else:
        site, proc = (pip if client == "pip" else uv)(ups, tmp_path, "acme-utils")
        assert proc.returncode == 0, proc.stderr
        assert installed(site) == {"acme-utils": "1.0"}
    page = httpx.get(ups.front.index() + "acme-utils/", auth=(ups.front.admin, ups.front.token),
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert page["versions"] == ["1.0"]
    # nor a file of upstream's under the owned name, asked for directly
    answer = httpx.get(ups.front.index() + "acme-utils/99.0/acme_utils-99.0-py3-none-any.whl",
                       auth=(ups.front.admin, ups.front.token))
    assert answer.status_code == 404


@pytest.mark.parametrize("client", ["pip", "uv", "poetry"])
def test_a_deleted_name_stays_the_workspaces(ups, tmp_path, client):
    """acme-tools, deleted here, has 99.0 upstream: no client pointed at the workspace installs it."""
    if client == "pip":  # (the first of the three deletes it)
        ups.front.cli("package", "delete", "default", "acme-tools")
    if client == "poetry":
        lock, proc = poetry_lock(ups, tmp_path, "acme-tools")
        assert proc.returncode != 0 and "99.0" not in lock
    else:
        site, proc = (pip if client == "pip" else uv)(ups, tmp_path, "acme-tools")
        assert proc.returncode != 0, proc.stdout
        assert not site.exists() or "acme-tools" not in installed(site)
    # the upstream's 99.0 exists, and is what a client would have got without the reservation
    assert httpx.get(f"{ups.mirror.index()}acme-tools/", auth=("pub@mirror.test", ups.mirror_read)).status_code == 200


def test_the_files_come_from_upstream_once_and_are_recorded_with_where_from(ups, tmp_path):
    auth = (ups.front.admin, ups.front.token)
    pip(ups, tmp_path, "dep-b")
    log = run(["git", "--git-dir", str(ups.front.data / "ledger.git"), "log", "--format=%H%n%B%n--"],
              env=None).stdout
    entries = [e for e in log.split("--\n") if "Action: fetch-upstream" in e and "dep_b-1.0" in e]
    assert len(entries) == 1, log
    commit = entries[0].split("\n", 1)[0]
    assert f"Upstream-Url: {ups.mirror.index()}" in entries[0] and "Upstream: mirror" in entries[0]
    assert "s3cret" not in log and ups.mirror_read not in log
    # the index at that commit lists what was fetched by then, and reproduces the install
    past = httpx.get(f"{ups.front.url}/default/@{commit}/dep-b/", auth=auth,
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert [f["filename"] for f in past["files"]] == ["dep_b-1.0-py3-none-any.whl"]
    wheel = httpx.get(f"{ups.front.url}/default/@{commit}/dep-b/1.0/dep_b-1.0-py3-none-any.whl", auth=auth)
    assert hashlib.sha256(wheel.content).hexdigest() == past["files"][0]["hashes"]["sha256"]
    before = httpx.get(f"{ups.front.url}/default/@{commit}~1/dep-b/", auth=auth)
    assert before.status_code in (400, 404)


def test_strangers_learn_nothing_and_upstream_never_unhides_a_private_name(ups, tmp_path):
    f = ups.front
    assert httpx.get(f.index() + "dep-b/").status_code == 401
    f.cli("user", "create", "outsider@front.test")
    token = f.cli("token", "create", "outsider@front.test").stdout.strip()
    stranger = httpx.get(f.index() + "dep-b/", auth=("outsider@front.test", token))
    nothing = httpx.get(f.index() + "no-such-name-anywhere/", auth=("outsider@front.test", token))
    assert stranger.status_code == nothing.status_code == 404
    assert stranger.text.replace("dep-b", "X") == nothing.text.replace("no-such-name-anywhere", "X")
    # a reader of another repository of the workspace reads upstream, but not the private owned name
    f.cli("user", "create", "reader@front.test")
    f.cli("repo", "create", "default/other", "--project", "MAIN")
    f.cli("grant", "default/other", "reader@front.test", "read")
    rtoken = f.cli("token", "create", "reader@front.test", "--scope", "read").stdout.strip()
    assert httpx.get(f.index() + "dep-b/", auth=("reader@front.test", rtoken)).status_code == 200
    private = httpx.get(f.index() + "acme-utils/", auth=("reader@front.test", rtoken))
    assert private.status_code == 404 and "99.0" not in private.text


def test_a_replica_answers_for_upstream_through_its_primary_which_records(ups, tmp_path):
    f = ups.front
    f.cli("user", "create", "replica@front.test")
    token = f.cli("token", "create", "replica@front.test", "--replica").stdout.strip()
    replica = start_server(ups.root / "replica", workers=2, env={"REGISTRY_FOLLOW_TOKEN": token}, follow=f.url)
    try:
        host = replica.url.split("://", 1)[1]
        index = f"http://{quote(f.admin, safe='')}:{f.token}@{host}/default/"
        target = tmp_path / "via-replica"
        proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target), "--index-url",
                    index, "dep-a==1.0", "our-app"], env=client_env(tmp_path / "pip-home"), check=False)
        assert proc.returncode == 0, proc.stderr
        assert installed(target)["dep-a"] == "1.0"
        log = run(["git", "--git-dir", str(f.data / "ledger.git"), "log", "--format=%B"], env=None).stdout
        assert "fetch dep-a 1.0 from upstream mirror: dep_a-1.0-py3-none-any.whl" in log  # (the primary recorded it)
    finally:
        replica.stop()


def test_many_clients_through_both_workers_cause_one_fetch(ups, tmp_path):
    """Four clients at once ask for one new, slowly sent file: whichever worker each lands on, the
    upstream sends it once, and each client gets it whole."""
    f = ups.front
    index = Index()
    try:
        name = "slow_dep-1.0-py3-none-any.whl"
        index.files[name] = Served(make_wheel(tmp_path, "slow-dep", "1.0", payload=3 * 2**20).read_bytes(),
                                   per_chunk_delay=0.01)
        f.cli("workspace", "create", "pulls")
        f.cli("grant", "pulls", f.admin, "admin")
        f.cli("upstream", "add", "pulls", "slow", index.url)
        auth = (f.admin, f.token)
        assert httpx.get(f"{f.url}/pulls/slow-dep/", auth=auth).status_code == 200
        want = hashlib.sha256(index.files[name].data).hexdigest()
        got: list[str] = []

        def fetch() -> None:
            answer = httpx.get(f"{f.url}/pulls/slow-dep/1.0/{name}", auth=auth, timeout=60)
            got.append(hashlib.sha256(answer.content).hexdigest() if answer.status_code == 200 else answer.text)

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [want] * 4
        assert index.asked[f"/files/{name}"] == 1
    finally:
        index.close()


def machine_index() -> str | None:
    """The http(s) index pip on this machine is configured with, if any (never a hard-coded host)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("index-url"):
            for url in value.strip().strip("'\"").split():
                if url.startswith(("http://", "https://")):
                    return url
    return None


@pytest.mark.skipif(machine_index() is None, reason="pip on this machine is configured with no http(s) index")
def test_the_index_pip_is_configured_with_serves_as_an_upstream(ups, tmp_path):
    f = ups.front
    f.cli("workspace", "create", "machine")
    f.cli("grant", "machine", f.admin, "admin")
    f.cli("upstream", "add", "machine", "configured", machine_index())
    auth = (f.admin, f.token)
    page = httpx.get(f"{f.url}/machine/pip/", auth=auth, headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                     timeout=60)
    assert page.status_code == 200, page.text
    smallest = min((x for x in page.json()["files"] if x.get("size") and x["hashes"].get("sha256")),
                   key=lambda x: x["size"])
    answer = httpx.get(f"{f.url}/machine/pip/{smallest['url']}", auth=auth, timeout=120)
    assert hashlib.sha256(answer.content).hexdigest() == smallest["hashes"]["sha256"]


def test_with_the_upstreams_stopped_the_tree_installs_from_the_cache(ups, tmp_path):
    """Last in this module: it stops the upstreams. Pages are then served as cached (and said to be)."""
    site, proc = pip(ups, tmp_path, "our-app")  # (everything fetched at least once)
    assert proc.returncode == 0, proc.stderr
    ups.stop_upstreams()
    # the cached pages are made stale, as if their time had run out: each is asked for again, and fails
    for page in (ups.front.data / "upstream-cache" / "pages").rglob("*.json"):
        cached = json.loads(page.read_bytes())
        page.write_text(json.dumps({**cached, "fetched": 0}))
    fresh = ups.front.cli("token", "create", ups.front.admin).stdout.strip()  # (no answer remembered for it)
    answer = httpx.get(ups.front.index() + "dep-b/", auth=(ups.front.admin, fresh))
    assert answer.status_code == 200 and "mirror:" in answer.headers["x-upstream-stale"]
    assert "dep_b-1.0-py3-none-any.whl" in answer.text
    shutil.rmtree(tmp_path / "pip-home", ignore_errors=True)
    the_tree_installs_with_every_client(ups, tmp_path)
