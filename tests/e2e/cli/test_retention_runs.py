"""`registry serve` applying the retention policies itself (REGISTRY_RETENTION_APPLY=daily), with two
workers and a short interval: versions beyond a keep-the-newest-2 policy are deleted once each (one
worker runs it: the ledger holds one scheduled commit per version, whatever the number of runs), and
/_/health and the retention API say when it ran and what it did; with the setting off, nothing goes."""

from __future__ import annotations

import base64
import re
import time

import httpx
import pygit2
import pytest

from registry.audit import T
from registry.ledger import Commit
from tests.support.helpers import LiveServer, make_wheel, start_server
from tests.support.world import upload_form

INTERVAL = 2  # seconds between runs
VERSIONS = ("1.0", "1.1", "1.2", "2.0", "2.1")


def auth(server: LiveServer) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{server.admin}:{server.token}".encode()).decode()}


def publish_under_a_policy(server: LiveServer, tmp_path) -> None:
    server.cli("package", "create", "default", "pruned", "--repo", "packages")
    r = httpx.put(f"{server.url}/api/workspaces/default/retention/keep-two", headers=auth(server), timeout=30,
                  json={"repository": "packages", "keep_newest": 2})
    assert r.status_code == 200, r.text
    for v in VERSIONS:
        fields, files = upload_form(make_wheel(tmp_path, "pruned", v))
        r = httpx.post(f"{server.url}/default/", data=fields, files=files, headers=auth(server), timeout=30)
        assert r.status_code == 200, r.text


def versions(server: LiveServer) -> list[str]:
    r = httpx.get(f"{server.url}/default/pypi/pruned/json", headers=auth(server), timeout=10)
    assert r.status_code == 200, r.text
    return sorted(r.json()["releases"])


def scheduled(server: LiveServer) -> list[Commit]:
    repo = pygit2.Repository(str(server.data / "ledger.git"))
    return [c for c in (Commit.of(x) for x in repo.walk(repo.head.target)) if c.trailer(T.SCHEDULED)]


def health(server: LiveServer) -> dict:
    return httpx.get(f"{server.url}/_/health", timeout=10).json()


def test_the_server_deletes_what_the_policies_select_once_and_says_so(tmp_path):
    started = time.time()
    server = start_server(tmp_path / "data", workers=2, retention_apply="daily",
                          retention_interval=str(INTERVAL))
    try:
        publish_under_a_policy(server, tmp_path)
        deadline = time.monotonic() + 60
        while versions(server) != ["2.0", "2.1"]:
            assert time.monotonic() < deadline, f"not deleted: {versions(server)}\n{server.log.read_text()}"
            time.sleep(0.2)
        # several runs later, by either worker: still one commit per version deleted
        time.sleep(3 * INTERVAL)
        commits = scheduled(server)
        assert sorted(c.trailer(T.VERSION) for c in commits) == ["1.0", "1.1", "1.2"]
        for c in commits:
            assert (c.trailer(T.RETENTION_POLICY), c.trailer(T.SCHEDULED), c.trailer(T.CHANNEL)) == (
                "keep-two", "REGISTRY_RETENTION_APPLY=daily", "cli")
        said = health(server)["retention"]
        assert said["apply"] == "daily" and said["interval_seconds"] == INTERVAL
        last = said["last_run"]
        assert last is not None and last["failed"] is False and last["refused"] == 0
        assert said["next_run"] > last["started"]
        r = httpx.get(f"{server.url}/api/workspaces/default/retention", headers=auth(server), timeout=10)
        shown = r.json()["schedule"]
        assert shown["apply"] == "daily" and shown["last_run_started"] and shown["next_run"]
        assert r.json()["deletions"] == []
        # one worker ran them all, each a run at most every INTERVAL seconds
        runs = re.findall(r"scheduled retention run \(worker (\d+)\)", server.log.read_text())
        assert len(set(runs)) == 1 and 1 <= len(runs) <= (time.time() - started) / INTERVAL + 1, runs
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()


@pytest.mark.parametrize("setting", [{}, {"retention_apply": "off"}])
def test_with_the_setting_off_nothing_is_deleted(tmp_path, setting):
    server = start_server(tmp_path / "data", workers=2, retention_interval=str(INTERVAL), **setting)
    try:
        publish_under_a_policy(server, tmp_path)
        time.sleep(3 * INTERVAL)
        assert versions(server) == sorted(VERSIONS) and scheduled(server) == []
        said = health(server)["retention"]
        assert (said["apply"], said["next_run"], said["last_run"]) == ("off", None, None)
        r = httpx.get(f"{server.url}/api/workspaces/default/retention", headers=auth(server), timeout=10)
        assert [d["version"] for d in r.json()["deletions"]] == ["1.2", "1.1", "1.0"]  # (the dry run, unapplied)
        assert not (server.data / "retention-run.json").exists()
    finally:
        server.stop()
