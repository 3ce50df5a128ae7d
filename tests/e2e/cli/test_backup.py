"""`registry backup` of a running registry and `registry restore` into a new data directory, served
again: every project's pages, at the head and at older commits, byte for byte the original's."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import make_sdist, make_wheel, new_team, start_server
from tests.support.world import upload_form

pytestmark = pytest.mark.e2e
SIMPLE_JSON = {"accept": "application/vnd.pypi.simple.v1+json"}


def _publish(url: str, team: dict, path: Path) -> None:
    fields, files = upload_form(path)
    answer = httpx.post(f"{url}/default/", data=fields, files=files, auth=(team["email"], team["token"]), timeout=30)
    assert answer.status_code == 200, answer.text


def _cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(data), *args], capture_output=True,
                          text=True, timeout=600)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def _pages(url: str, team: dict, projects: list[str], commits: list[str]) -> dict[str, bytes]:
    """Every project's Simple JSON and JSON API page now, and its Simple JSON and the index at each commit."""
    auth = (team["email"], team["read_token"])
    wanted = {}
    for p in projects:
        wanted[f"/default/{p}/ json"] = (f"/default/{p}/", SIMPLE_JSON)
        wanted[f"/default/pypi/{p}/json"] = (f"/default/pypi/{p}/json", {})
        for c in commits:
            wanted[f"/default/@{c}/{p}/ json"] = (f"/default/@{c}/{p}/", SIMPLE_JSON)
    for c in commits:
        wanted[f"/default/@{c}/"] = (f"/default/@{c}/", SIMPLE_JSON)
    out = {}
    for key, (path, headers) in wanted.items():
        answer = httpx.get(url + path, headers=headers, auth=auth, timeout=30)
        out[key] = f"{answer.status_code} {answer.headers.get('etag')}\n".encode() + answer.content
    return out


def test_back_up_publish_back_up_wipe_restore_serve_the_same_pages(tmp_path):
    data, dest, dists = tmp_path / "data", tmp_path / "backup", tmp_path / "dists"
    dists.mkdir()
    live = start_server(data, workers=2)
    try:
        team = new_team(live)
        projects = ["alpha", "beta", "gamma"]
        for p in projects:
            live.cli("package", "create", "default", p, "--repo", team["repo"])
        for v in ("1.0", "1.1"):
            for p in projects:
                _publish(live.url, team, make_wheel(dists, p, v))
        _publish(live.url, team, make_sdist(dists, "alpha", "1.1"))
        first = _cli(data, "backup", str(dest)).stdout
        assert "backup 000001" in first
        # uploads running while the next backup is taken: it is of one commit, whatever lands meanwhile
        stop = threading.Event()

        def uploads() -> None:
            n = 0
            while not stop.is_set() and n < 40:
                _publish(live.url, team, make_wheel(dists, "beta", f"2.{n}"))
                n += 1

        racing = threading.Thread(target=uploads)
        racing.start()
        try:
            second = _cli(data, "backup", str(dest)).stdout
        finally:
            stop.set()
            racing.join()
        assert "backup 000002" in second
        assert "backup 000003" in _cli(data, "backup", str(dest)).stdout  # (what landed after its commit)
        _publish(live.url, team, make_wheel(dists, "gamma", "3.0"))
        fourth = _cli(data, "backup", str(dest)).stdout
        assert "backup 000004" in fourth and ": 1 commits" in fourth and ", 1 new files" in fourth  # (incremental)
        publishes = subprocess.run(["git", "-C", str(data / "ledger.git"), "rev-list", "main", "--grep=^publish "],
                                   capture_output=True, text=True, check=True).stdout.split()
        head = publishes[0]  # (three older: each project had a version by the third publish)
        older = [publishes[1], publishes[len(publishes) // 2], publishes[-3]]
        original = _pages(live.url, team, projects, older)
        assert all(page.startswith(b"200 ") for page in original.values()), [k for k, v in original.items()
                                                                             if not v.startswith(b"200 ")]
    finally:
        live.stop()
    port = live.url.rsplit(":", 1)[1]
    keys = tmp_path / "keys-kept-apart"
    shutil.copytree(data / "keys", keys)
    shutil.rmtree(data)  # wiped

    restored = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(keys)).stdout
    assert f"head {head}" in restored
    assert "OK" in _cli(tmp_path / "new", "verify").stdout
    again = start_server(tmp_path / "new", workers=2, port=int(port))  # (the same URL: pages name it)
    try:
        assert _pages(again.url, team, projects, older) == original
        _publish(again.url, team, make_wheel(dists, "alpha", "9.0"))  # (it signs on with the kept keys)
    finally:
        again.stop()
    assert "OK" in _cli(tmp_path / "new", "verify").stdout

    # the backup taken during the uploads restores consistently at its own head
    second_head = second.split(" up to ")[1].split(",")[0]
    mid = _cli(tmp_path / "mid", "restore", str(dest), "--at", second_head, "--keys", str(keys)).stdout
    assert f"head {second_head}" in mid
    assert "OK" in _cli(tmp_path / "mid", "verify").stdout
    # without the keys it restores too, and says that nothing can be committed until they are back
    bare = _cli(tmp_path / "bare", "restore", str(dest), "--no-keys").stdout
    assert "no signing keys" in bare and "signing key" in _cli(tmp_path / "bare", "verify", check=False).stdout


def test_a_corrupt_file_in_the_backup_fails_the_restore_naming_it(tmp_path):
    data, dest = tmp_path / "data", tmp_path / "backup"
    live = start_server(data, workers=1)
    try:
        team = new_team(live)
        live.cli("package", "create", "default", "alpha", "--repo", team["repo"])
        (tmp_path / "dists").mkdir()
        _publish(live.url, team, make_wheel(tmp_path / "dists", "alpha", "1.0"))
        _cli(data, "backup", str(dest))
    finally:
        live.stop()
    victim = next((dest / "blobs" / "sha256").glob("*/*"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    proc = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(data / "keys"), check=False)
    assert proc.returncode == 1 and str(victim) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()
    bundle = dest / "bundles" / "000001.bundle"
    bundle.write_bytes(bundle.read_bytes()[:100])
    proc = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(data / "keys"), check=False)
    assert proc.returncode == 1 and f"{bundle} has 100 bytes" in proc.stderr
