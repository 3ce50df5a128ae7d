"""`registry serve` stops within seconds of SIGINT or SIGTERM (registry/web/stopping.py), whatever
its connections are doing: a replica's long poll is answered at once, an upload still arriving is
refused with a 503 that says to send it again, and nothing acknowledged is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import LiveServer, make_wheel, start_server
from tests.support.world import upload_form

STOPS_WITHIN = 5.0  # seconds, with something in flight
IDLE_STOPS_WITHIN = 3.0


def _with_replica(tmp_path: Path, workers: int) -> tuple[LiveServer, LiveServer]:
    primary = start_server(tmp_path / "primary", workers=workers)
    primary.cli("user", "create", "replica@example.com", "--name", "Read replica")
    token = primary.cli("token", "create", "replica@example.com", "--replica").stdout.strip()
    replica = start_server(tmp_path / "replica", workers=1, env={"REGISTRY_FOLLOW_TOKEN": token},
                           follow=primary.url)
    head = httpx.get(f"{primary.url}/_/health").json()["ledger"]
    deadline = time.monotonic() + 15
    while httpx.get(f"{replica.url}/_/health").json()["ledger"] != head:  # (following: its long poll is open)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    return primary, replica


def _stop(live: LiveServer, sig: signal.Signals) -> float:
    started = time.monotonic()
    live.process.send_signal(sig)
    try:
        live.process.wait(30)
    except subprocess.TimeoutExpired:
        live.process.kill()
        raise
    return time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_idle_primary_with_a_replica_following_it_stops_at_once(tmp_path, sig):
    primary, replica = _with_replica(tmp_path, workers=2)
    try:
        took = _stop(primary, sig)
        assert took < IDLE_STOPS_WITHIN, f"the primary took {took:.1f} s to stop:\n{primary.log.read_text()[-3000:]}"
        took = _stop(replica, sig)
        assert took < IDLE_STOPS_WITHIN, f"the replica took {took:.1f} s to stop:\n{replica.log.read_text()[-3000:]}"
    finally:
        replica.stop()
        primary.stop()


def test_a_slow_upload_is_refused_not_waited_for_and_nothing_acknowledged_is_lost(tmp_path):
    primary, replica = _with_replica(tmp_path, workers=1)
    try:
        primary.cli("package", "create", "default", "slow-pkg", "--repo", "packages")
        primary.cli("package", "create", "default", "quick-pkg", "--repo", "packages")
        quick = make_wheel(tmp_path, "quick-pkg", "1.0")
        slow = make_wheel(tmp_path, "slow-pkg", "1.0", payload=64 * 1024)
        auth = (primary.admin, primary.token)
        data, files = upload_form(quick)
        done = httpx.post(f"{primary.url}/default/", auth=auth, data=data, files=files, timeout=30)
        assert done.status_code == 200, done.text  # (acknowledged: it must survive the stop)
        data, files = upload_form(slow)
        request = httpx.Request("POST", f"{primary.url}/default/", data=data, files=files)
        body = request.read()
        answers: list = []

        def trickle():
            yield body[:4096]
            for at in range(4096, len(body), 2048):  # (2 KiB/s: above the minimum body rate, far from done)
                time.sleep(1)
                yield body[at:at + 2048]

        def send() -> None:
            try:
                answers.append(httpx.post(request.url, content=trickle(), headers=dict(request.headers), auth=auth,
                                          timeout=30))
            except httpx.HTTPError as exc:
                answers.append(exc)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(2)  # (its first bytes are in: the server is reading it)
        took = _stop(primary, signal.SIGINT)
        assert took < STOPS_WITHIN, f"the primary took {took:.1f} s to stop:\n{primary.log.read_text()[-3000:]}"
        sender.join(10)
        [answer] = answers
        assert isinstance(answer, httpx.Response) and answer.status_code == 503, answer
        assert "stopping" in answer.text and "Send it again" in answer.text
        # the ledger is whole, the acknowledged upload in it, the refused one not
        verify = primary.cli("verify")
        assert "ok" in verify.stdout.lower(), verify.stdout
        log = primary.cli("log", "default").stdout
        assert "publish quick-pkg 1.0" in log and "publish slow-pkg" not in log
        restarted = start_server(primary.data, workers=1, port=int(primary.url.rsplit(":", 1)[1]))
        try:
            page = httpx.get(f"{restarted.url}/default/quick-pkg/", auth=auth)
            assert page.status_code == 200 and quick.name in page.text
        finally:
            restarted.stop()
    finally:
        replica.stop()
        primary.stop()


def test_a_refused_upload_appears_on_the_servers_stderr(tmp_path):
    """The access log, for real: twine's refused upload is a line on the server's stderr, without the token."""
    data = tmp_path / "data"
    live = start_server(data, workers=1)
    try:
        live.cli("user", "create", "reader@example.com")
        live.cli("grant", "default/packages", "reader@example.com", "read")
        token = live.cli("token", "create", "reader@example.com").stdout.strip()
        live.cli("package", "create", "default", "refused-pkg", "--repo", "packages")
        wheel = make_wheel(tmp_path, "refused-pkg", "1.0")
        proc = subprocess.run([sys.executable, "-m", "twine", "upload", "--non-interactive", "--repository-url",
                               f"{live.url}/default/", "-u", "reader@example.com", "-p", token, str(wheel)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and "403" in proc.stdout + proc.stderr
    finally:
        live.stop()
    lines = [line for line in live.log.read_text().splitlines() if "registry.access" in line]
    refused = [line for line in lines if "POST /default/ 403 " in line]
    assert refused and refused[-1].split()[-2] == "reader@example.com", lines  # (then the request id)
    assert all(token not in line for line in lines)
