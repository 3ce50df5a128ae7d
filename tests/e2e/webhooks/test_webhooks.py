"""Webhooks from a real server (granian, two workers): one deliverer per server (nothing twice while
nothing fails), the API that adds them, and at-least-once delivery in commit order across receiver
restarts and SIGKILLs of the registry during delivery."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pygit2
import pytest

from tests.support.helpers import make_wheel, new_team, start_server
from tests.support.receiver import Receiver
from tests.support.world import upload_form

pytestmark = pytest.mark.e2e


def publish(url: str, email: str, token: str, path: Path) -> None:
    fields, files = upload_form(path)
    answer = httpx.post(f"{url}/default/", data=fields, files=files, auth=(email, token), timeout=30)
    assert answer.status_code == 200, answer.text


def publishes(data: Path) -> list[str]:
    """The publish commits of the ledger, oldest first (read from the git directory itself)."""
    repo = pygit2.Repository(str(data / "ledger.git"))
    walker = repo.walk(repo.head.target, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    return [str(c.id) for c in walker if "\nAction: publish\n" in c.message + "\n"]


def first_seen(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i)
    return list(seen)


def test_kills_and_receiver_restarts_lose_nothing(tmp_path):
    receiver = Receiver().start()
    data = tmp_path / "data"
    server = start_server(data, workers=2, webhooks_private="1")  # (the receiver is on 127.0.0.1)
    try:
        team = new_team(server)
        server.cli("package", "create", "default", "hooked", "--repo", team["repo"])
        admin = (server.admin, server.token)
        # Bad inputs over the API: a clear 4xx each, nothing committed.
        head = (data / "ledger.git" / "refs" / "heads" / "main").read_text()
        for body in ({"url": "ftp://127.0.0.1/x", "events": ["publish"]},
                     {"url": "http://example.com/hook", "events": ["publish"]},
                     {"url": receiver.url, "events": ["published"]},
                     {"url": receiver.url, "events": ["publish"], "signing": "ed25519", "secret": "x" * 20}):
            answer = httpx.put(f"{server.url}/api/workspaces/default/webhooks/ci", json=body, auth=admin)
            assert answer.status_code == 400, (body, answer.text)
        answer = httpx.put(f"{server.url}/api/workspaces/default/webhooks/ci", auth=(team["email"], team["token"]),
                           json={"url": receiver.url, "events": ["publish"]})
        assert answer.status_code in (403, 404), answer.text
        assert (data / "ledger.git" / "refs" / "heads" / "main").read_text() == head
        answer = httpx.put(f"{server.url}/api/workspaces/default/webhooks/ci", auth=admin,
                           json={"url": receiver.url, "events": ["publish"]})
        assert answer.status_code == 200, answer.text

        # Two workers, one deliverer: every publish exactly once while nothing fails.
        for i in range(5):
            publish(server.url, team["email"], team["token"], make_wheel(tmp_path, "hooked", f"0.{i}"))
        receiver.wait_for(5)
        time.sleep(0.5)
        assert receiver.ids() == publishes(data)

        # The receiver goes down and comes back five times; in three of them the registry is killed
        # mid-delivery (the bar: 5 receiver restarts, 3 registry kills).
        version = 0
        for round_ in range(5):
            receiver.stop()
            for _ in range(10):
                version += 1
                publish(server.url, team["email"], team["token"], make_wheel(tmp_path, "hooked", f"1.{version}"))
            receiver.delay = 0.05
            receiver.start()
            before = len(receiver.got)
            receiver.wait_for(before + 3, timeout=60)  # (delivering now: its backoff ran out)
            if round_ % 2:
                continue
            os.kill(server.process.pid, signal.SIGKILL)
            for child in _children(server.process.pid):
                os.kill(child, signal.SIGKILL)
            server.process.wait(10)
            server = start_server(data, workers=2, webhooks_private="1")  # (the receiver is on 127.0.0.1)
        wanted = publishes(data)
        deadline = time.monotonic() + 120
        while set(wanted) - set(receiver.ids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        got = receiver.ids()
        assert set(got) == set(wanted), "an event was lost"
        assert first_seen(got) == wanted, "out of commit order"
        listed = httpx.get(f"{server.url}/api/workspaces/default/webhooks/ci/deliveries", auth=admin).json()
        assert listed["delivered"] in wanted and listed["attempts"][0]["ok"]
        assert any(not a["ok"] for a in listed["attempts"]) or len(got) > len(wanted)
    finally:
        server.stop()
        receiver.stop()


def _children(pid: int) -> list[int]:
    """granian's worker processes (killed with their parent, as a machine's crash would)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return out
