"""REGISTRY_EVENT_LOG=json on a live registry with 2 workers: after a publish, a yank and refused
uploads (a file clashing with a published one, a package its reader may not publish to, no
credentials), every event line parses as one JSON object, names the request that caused it by the
X-Request-Id its answer carried (the client's, or one the server chose) and the commit by the
X-Registry-Commit the answer named; no token is anywhere in the log; commits made by the CLI, another
process, are not this server's to log."""

from __future__ import annotations

import base64
import json
import secrets
import time

import httpx

from tests.support.helpers import make_wheel, start_server
from tests.support.world import upload_form


def events(server, wanted: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        lines = [x for x in server.log.read_text().splitlines() if '"logger":"registry.events"' in x]
        if len(lines) >= wanted or time.monotonic() > deadline:
            return [json.loads(x) for x in lines]
        time.sleep(0.1)


def test_every_commit_and_refused_upload_is_a_json_line_naming_its_request(tmp_path):
    server = start_server(tmp_path / "data", workers=2, event_log="json", access_log="json")
    try:
        server.cli("package", "create", "default", "evented", "--repo", "packages")
        server.cli("user", "create", "outsider@example.com")
        server.cli("grant", "default/packages", "outsider@example.com", "read")  # (sees it; may not publish)
        token = server.cli("token", "create", server.admin).stdout.strip()  # (never printed by the server)
        outsider = server.cli("token", "create", "outsider@example.com").stdout.strip()
        auth = {"authorization": "Basic " + base64.b64encode(f"{server.admin}:{token}".encode()).decode()}
        mine = "trace-" + secrets.token_hex(4)

        fields, files = upload_form(make_wheel(tmp_path, "evented", "1.0"))
        published = httpx.post(f"{server.url}/default/", data=fields, files=files,
                               headers=auth | {"x-request-id": mine}, timeout=30)
        assert published.status_code == 200, published.text
        yanked = httpx.post(f"{server.url}/api/workspaces/default/packages/pypi/evented/versions/1.0/yank",
                            json={"reason": "broken"}, headers=auth, timeout=30)
        assert yanked.status_code == 200, yanked.text
        (tmp_path / "other").mkdir()
        fields, files = upload_form(make_wheel(tmp_path / "other", "evented", "1.0"))  # same file name, other bytes
        clash = httpx.post(f"{server.url}/default/", data=fields, files=files, headers=auth, timeout=30)
        assert clash.status_code == 400, clash.text
        theirs = {"authorization": "Basic " + base64.b64encode(f"outsider@example.com:{outsider}".encode()).decode()}
        fields, files = upload_form(make_wheel(tmp_path / "other", "evented", "2.0"))
        denied = httpx.post(f"{server.url}/default/", data=fields, files=files, headers=theirs, timeout=30)
        anonymous = httpx.post(f"{server.url}/default/", data=fields, files=files, timeout=30)
        assert (denied.status_code, anonymous.status_code) == (403, 401), (denied.text, anonymous.text)

        lines = events(server, 5)
        by_request = {line["request_id"]: line for line in lines}
        assert len(lines) == len(by_request) == 5, lines  # (the CLI's commits are not this server's)
        assert all(line["time"].endswith("Z") for line in lines)

        publish = by_request[published.headers["x-request-id"]]
        assert published.headers["x-request-id"] == mine
        assert publish["event"] == "publish" and publish["commit"] == published.headers["x-registry-commit"]
        assert (publish["workspace"], publish["package"], publish["version"]) == ("default", "evented", "1.0")
        assert (publish["actor"], publish["actor_kind"], publish["channel"]) == (server.admin, "api-token", "upload")
        assert publish["file"] == "evented-1.0-py3-none-any.whl"

        yank = by_request[yanked.headers["x-request-id"]]
        assert yank["event"] == "yank" and yank["commit"] == yanked.headers["x-registry-commit"]
        assert (yank["package"], yank["version"], yank["actor"]) == ("evented", "1.0", server.admin)

        for answer, reason, package in ((clash, "FileExists", "evented"), (denied, "Denied", "evented"),
                                        (anonymous, "Unauthorized", None)):
            refused = by_request[answer.headers["x-request-id"]]
            assert refused["event"] == "upload-refused" and refused["status"] == answer.status_code, refused
            assert (refused["reason"], refused["workspace"], refused["package"]) == (reason, "default", package)
            assert "commit" not in refused

        text = server.log.read_text()
        assert token not in text and outsider not in text
        assert not any(server.token in json.dumps(line) for line in lines)  # (the bootstrap's, printed at start)
    finally:
        server.stop()
