"""`registry import` through the CLI against a live `registry serve`, from pypiserver and from a PEP 691 JSON
index (the importer's rules are tested in-process in tests/unit/test_importer.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.support.helpers import (
    BIN,
    build,
    client_env,
    free_port,
    make_project,
    make_wheel,
    run,
)


def start_pypiserver(packages: Path, user: str, password: str):
    """pypiserver from this venv, on 127.0.0.1, never falling back to another index."""
    htpasswd = packages.parent / "htpasswd"
    run([str(BIN / "python"), "-W", "ignore", "-c",
         "import sys; from passlib.apache import HtpasswdFile as H; h = H(sys.argv[1], new=True); "
         "h.set_password(sys.argv[2], sys.argv[3]); h.save()", str(htpasswd), user, password], env=None)
    port = free_port()
    proc = subprocess.Popen([str(BIN / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port), "-P", str(htpasswd),
                             "-a", "list,download,update", "--disable-fallback", str(packages)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            threading.Event().wait(0.05)
    proc.kill()
    raise RuntimeError("pypiserver did not start")


@pytest.fixture
def repo(server):
    n = len(list(server.data.parent.glob("import-*"))) + 1
    (server.data.parent / f"import-{n}").mkdir()
    server.cli("repo", "create", f"default/imports{n}", "--project", "MAIN")
    return f"imports{n}", n


def head(server) -> str:
    return httpx.get(f"{server.url}/_/health").json()["ledger"]


def test_from_pypiserver_then_pip_installs_it_and_a_rerun_skips_all(server, repo, tmp_path):
    slug, n = repo
    name = f"Migrated.Pkg{n}"
    packages = tmp_path / "packages"
    (packages / "old").mkdir(parents=True)
    _, wheel = build(make_project(tmp_path / "src1", name, "1.0"), packages / "old")
    build(make_project(tmp_path / "src2", name, "1.1"), packages)
    (packages / "junk-1.0.tar.gz").write_bytes(b"\x1f\x8b not really")
    proc, url = start_pypiserver(packages, "mover", "p@ss word")
    try:
        before = head(server)
        no_creds = server.cli("import", "default", "--repo", slug, "--index-url", f"{url}/simple/", check=False)
        assert no_creds.returncode != 0 and "Traceback" not in no_creds.stderr
        assert no_creds.stderr.strip().count("\n") == 0 and "401" in no_creds.stderr and not no_creds.stdout
        assert head(server) == before

        creds = f"http://mover:{quote('p@ss word')}@{url.split('://')[1]}/simple/"
        first = server.cli("import", "default", "--repo", slug, "--index-url", creds, check=False)
        assert first.returncode == 1, first.stdout + first.stderr  # (the junk file is refused)
        lines = first.stdout.splitlines()
        assert lines[-2].startswith("imported 4, skipped 0, refused 1, conflicts 0")
        assert lines[-1].startswith("refused   junk-1.0.tar.gz: ") and "p@ss" not in first.stdout
        log = server.cli("log", "default", name).stdout
        assert log.count("\n    publish ") == 4 and "channel import" in log
        assert f"import-source {url}/packages/old/{wheel.name}" in log  # (no credentials in the ledger)

        again = run([sys.executable, "-m", "registry", "--data", str(server.data), "import", "default", "--repo", slug,
                     "--index-url", f"{url}/simple/", "--username", "mover", "--password", "-"],
                    env=client_env(tmp_path / "home"), input="p@ss word\n", check=False)
        assert again.stdout.splitlines()[-2].startswith("imported 0, skipped 4, refused 1, conflicts 0")
    finally:
        proc.terminate()
        proc.wait(10)

    host = server.url.split("://", 1)[1]
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(site), "--index-url",
         f"http://{server.admin}:{server.token}@{host}/default/", f"{name}==1.0"], env=client_env(tmp_path / "pip"))
    module = name.lower().replace(".", "_")
    assert (site / module / "__init__.py").read_text().count('"1.0"') == 1


class JsonIndex:
    """A PEP 691 JSON Simple index on 127.0.0.1 that gives upload times, behind a token."""

    def __init__(self, files: dict[str, tuple[Path, str]], token: str) -> None:
        self.files, self.auth = files, "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.headers.get("authorization") != index.auth:
                    return self._send(401, b"", "text/plain")
                if self.path.startswith("/dl/"):
                    return self._send(200, index.files[self.path[4:]][0].read_bytes(), "application/octet-stream")
                projects = sorted({n.split("-")[0].replace("_", "-") for n in index.files})
                if self.path == "/simple/":
                    body = {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in projects]}
                else:
                    project = self.path.strip("/").split("/")[-1]
                    body = {"meta": {"api-version": "1.1"}, "name": project, "files": [
                        {"filename": f, "url": f"/dl/{f}", "upload-time": t,
                         "hashes": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()}}
                        for f, (p, t) in index.files.items() if f.startswith(project.replace("-", "_") + "-")]}
                self._send(200, json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json")

            def _send(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_upload_times_survive_the_move_for_uv_exclude_newer(server, repo, tmp_path):
    slug, n = repo
    name = f"dated{n}"
    files = {}
    for version, stamp in (("1.0", "2021-03-04T05:06:07.123456Z"), ("2.0", "2024-01-01T00:00:00Z")):
        _, wheel = build(make_project(tmp_path / f"src-{version}", name, version), tmp_path / "dist")
        files[wheel.name] = (wheel, stamp)
    index = JsonIndex(files, token="tok")
    try:
        done = server.cli("import", "default", "--repo", slug, "--index-url", index.url, "--token", "tok")
    finally:
        index.close()
    assert done.stdout.splitlines()[-1].startswith("imported 2, skipped 0, refused 0, conflicts 0")
    auth_ = (server.admin, server.token)
    page = httpx.get(f"{server.url}/default/{name}/", auth=auth_,
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert {f["upload-time"] for f in page["files"]} == {"2021-03-04T05:06:07.123456Z", "2024-01-01T00:00:00.000000Z"}
    api = httpx.get(f"{server.url}/default/pypi/{name}/1.0/json", auth=auth_).json()
    assert api["urls"][0]["upload_time_iso_8601"] == "2021-03-04T05:06:07.123456Z"
    log = server.cli("log", "default", name).stdout
    assert "upload-time 2021-03-04T05:06:07.123456+00:00, import-source http://127.0.0.1:" in log

    host = server.url.split("://", 1)[1]
    site = tmp_path / "site"
    run([str(BIN / "uv"), "pip", "install", "--target", str(site), "--no-cache", "--exclude-newer",
         "2022-01-01T00:00:00Z",
         "--index-url", f"http://{quote(server.admin, safe='')}:{server.token}@{host}/default/", name],
        env=client_env(tmp_path / "uv"))
    assert '"1.0"' in (site / name / "__init__.py").read_text()  # 2.0 was uploaded after that date


def test_a_directory_through_the_cli_reports_conflicts_with_a_nonzero_exit(server, repo, tmp_path):
    slug, n = repo
    name = f"dir-pkg{n}"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    make_wheel(first, name, "1.0")
    make_wheel(second, name, "1.0")  # the same filename, other bytes
    make_wheel(second, name, "1.1")
    assert server.cli("import", "default", "--repo", slug, str(first)).stdout.splitlines()[-1].startswith("imported 1,")
    proc = server.cli("import", "default", str(second), "--repo", slug, check=False)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    assert out[0] == "2 files to import"
    assert out[-2].startswith("imported 1, skipped 0, refused 0, conflicts 1")
    assert out[-1].startswith(f"conflict  {name.replace('-', '_')}-1.0-py3-none-any.whl: already here with other bytes")
    bad = server.cli("import", "default", "--repo", "no-such-repo", str(second), check=False)
    assert bad.returncode == 1 and bad.stderr == "registry: Repository default/no-such-repo does not exist.\n"


@pytest.mark.parametrize("root", ["", "/"])
def test_from_pypiserver_given_by_its_root_url(server, repo, tmp_path, root):
    """pypiserver's `/` is its welcome page: the import finds `/simple/` from it, and says so."""
    slug, n = repo
    name = f"Rooted.Pkg{n}"
    packages = tmp_path / "packages"
    packages.mkdir()
    build(make_project(tmp_path / "src", name, "1.0"), packages)
    proc, url = start_pypiserver(packages, "mover", "pw")
    try:
        given = f"http://mover:pw@{url.split('://')[1]}{root}"
        done = server.cli("import", "default", "--repo", slug, "--index-url", given, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "imported 2, skipped 0, refused 0, conflicts 0" in done.stdout
        assert f"note: {url}/ is the index's front page, not its Simple API: imported from {url}/simple/" in done.stdout
        assert "here" not in done.stdout and ":pw@" not in done.stdout
    finally:
        proc.terminate()
        proc.wait(10)
