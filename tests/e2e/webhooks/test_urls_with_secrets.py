"""A webhook URL whose path carries the receiver's secret (Slack, Teams, Zapier, ...): from a real
server, nothing of that path reaches the ledger (every blob and every commit message of its git
repository), the API's, the UI's or the CLI's listings and history, or the server's log; the hook
still delivers to the whole URL, which only the data directory keeps (0600)."""

from __future__ import annotations

import time

import httpx
import pygit2
import pytest

from registry.webhooks.secrets import fingerprint
from tests.e2e.webhooks.test_webhooks import publish
from tests.support.helpers import make_wheel, new_team, start_server
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

# Secrets in the path, shaped as their services make them (the host is the receiver's, on 127.0.0.1).
SECRETS = {
    "slack": "/services/T0SLACKAAA/B0SLACKBBB/XsLaCkToKeN4242abcdEFGH",
    "teams": "/webhookb2/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d@5e6f7a8b-9c0d/IncomingWebhook/TeAmSsEcReT77xy/0c1d2e3f",
    "zapier": "/hooks/catch/1234567/zApIeRsEcReT9q/",
    "discord": "/api/webhooks/112233445566778899/DiScOrDtOkEnAbCdEfGhIjKlMnOp-_qRsT",
    "opaque": "/in/6f1ed002ab5595859014ebf0951522d9",
}


def pieces(path: str) -> list[str]:
    """The parts of a path that must appear nowhere (the secret-like ones: 8 characters or more, digits
    among them; no common words)."""
    return [p for p in path.replace("@", "/").split("/") if len(p) >= 8 and any(c.isdigit() for c in p)]


def ledger_text(data) -> str:
    """Every blob and every commit message of the ledger's git repository."""
    repo = pygit2.Repository(str(data / "ledger.git"))
    out = []
    for oid in repo.odb:
        obj = repo.get(oid)
        if isinstance(obj, pygit2.Blob):
            out.append(obj.data.decode("utf-8", "replace"))
        elif isinstance(obj, pygit2.Commit):
            out.append(obj.message)
    return "\n".join(out)


def test_nothing_of_a_urls_path_leaves_the_data_directory(tmp_path):
    receiver = Receiver().start()
    data = tmp_path / "data"
    server = start_server(data, workers=1, webhooks_private="1")  # (the receiver is on 127.0.0.1)
    try:
        team = new_team(server)
        server.cli("package", "create", "default", "hooked", "--repo", team["repo"])
        admin = (server.admin, server.token)
        base = "/".join(receiver.url.split("/")[:3])
        for name, path in SECRETS.items():
            answer = httpx.put(f"{server.url}/api/workspaces/default/webhooks/{name}", auth=admin,
                               json={"url": base + path, "events": ["publish"]})
            assert answer.status_code == 200, answer.text
            view = answer.json()
            assert view["url"] == base + "/…" and view["fingerprint"] == fingerprint(base + path)
        # Replaced once (a new URL, a new secret): neither version's path is anywhere either.
        answer = httpx.put(f"{server.url}/api/workspaces/default/webhooks/slack", auth=admin,
                           json={"url": base + SECRETS["slack"] + "2", "events": ["publish"],
                                 "signing": "hmac-sha256"})
        assert answer.status_code == 200, answer.text
        publish(server.url, team["email"], team["token"], make_wheel(tmp_path, "hooked", "1.0"))
        deadline = time.monotonic() + 30
        while len(receiver.got) < len(SECRETS) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Delivered to each whole URL.
        assert sorted(g.path for g in receiver.got) == sorted([*(p for n, p in SECRETS.items() if n != "slack"),
                                                               SECRETS["slack"] + "2"])
        assert (data / "webhook-secrets.json").stat().st_mode & 0o777 == 0o600
        listed = server.cli("webhook", "list", "default").stdout
        shown = [
            ledger_text(data),
            httpx.get(f"{server.url}/api/workspaces/default/webhooks", auth=admin).text,
            *(httpx.get(f"{server.url}/api/workspaces/default/webhooks/{n}/deliveries", auth=admin).text
              for n in SECRETS),
            listed,
            server.cli("webhook", "deliveries", "default", "slack", check=False).stdout,
            server.cli("log", "default", "--limit", "0", check=False).stdout,
            server.cli("webhook", "remove", "default", "zapier").stdout,
            server.log.read_text(),
        ]
        for name, path in SECRETS.items():
            for piece in pieces(path):
                for i, text in enumerate(shown):
                    assert piece not in text, (name, piece, i)
        assert f"{base}/…" in listed and fingerprint(base + SECRETS["teams"]) in listed  # (the listing: scheme://host/…)
    finally:
        server.stop()
        receiver.stop()
