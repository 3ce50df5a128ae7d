"""The event log (registry/web/eventlog.py) in-process: a line for every commit, webhook events or not,
naming the request that made it (none for a commit made outside one); a refused upload's line; never
a token; and in text lines, a value a client chose can't forge another field or line. (Served, with
JSON lines from two workers: tests/e2e/cli/test_event_log.py.)"""

from __future__ import annotations

import json
import logging

import pytest

from registry import identity, operations
from registry.errors import Denied
from registry.web import eventlog
from tests.support.helpers import make_wheel
from tests.support.world import WS, upload_form


@pytest.fixture
def lines(caplog):
    """The event log's lines (JSON, unless a test configures text), as the root logger gets them."""
    eventlog.configure("json")
    caplog.set_level(logging.INFO, logger="registry.events")
    yield lambda: [r.getMessage() for r in caplog.records if r.name == "registry.events"]
    eventlog.configure("off")


async def test_a_publish_through_the_app_names_its_request_and_commit(world, client, tmp_path, lines):
    operations.grant(world.reg, identity.operator(), "cli", WS, "dev@acme.test", "write", repository="public-lib")
    data, files = upload_form(make_wheel(tmp_path, "public-pkg", "1.0"))
    r = await client.post(f"/{WS}/", data=data, files=files,
                          headers=world.basic("dev@acme.test") | {"x-request-id": "mine-1"})
    assert r.status_code == 200, r.text
    grant, line = [json.loads(x) for x in lines()]
    assert grant["event"] == "grant" and grant["request_id"] is None  # (made outside any request)
    assert line["request_id"] == "mine-1" == r.headers["x-request-id"]
    assert line["commit"] == r.headers["x-registry-commit"] and line["event"] == "publish"
    assert (line["workspace"], line["package"], line["version"]) == (WS, "public-pkg", "1.0")
    assert (line["actor"], line["actor_kind"], line["channel"]) == ("dev@acme.test", "api-token", "upload")
    assert world.tokens["dev@acme.test"] not in json.dumps(line)


@pytest.mark.parametrize(("who", "ws", "status", "reason", "package"), [
    (None, WS, 401, "Unauthorized", None),  # (refused before the form: no package named yet)
    ("dev@acme.test", "nowhere", 404, "NotFound", None),
    ("dev@acme.test", WS, 403, "Forbidden", "secret-pkg"),  # (refused when its file began: the form named it)
])
async def test_a_refused_upload_names_its_request_class_and_the_package_its_form_named(
        world, client, tmp_path, lines, who, ws, status, reason, package):
    data, files = upload_form(make_wheel(tmp_path, "Secret_Pkg", "1.0"))  # (dev may not publish there)
    r = await client.post(f"/{ws}/", data=data, files=files, headers=world.basic(who) if who else {})
    assert r.status_code == status, r.text
    [line] = [json.loads(x) for x in lines()]
    assert line == {"time": line["time"], "logger": "registry.events", "event": "upload-refused", "status": status,
                    "reason": reason, "workspace": ws, "package": package, "request_id": r.headers["x-request-id"]}
    assert all(token not in json.dumps(line) for token in world.tokens.values())


def test_every_commit_is_a_line_those_no_webhook_hears_of_too_and_never_a_secret(world, lines):
    """A token made (no webhook event): its Action names the line; outside a request, no request id."""
    secret, _ = operations.create_token(world.reg, identity.operator(), "cli", "dev@acme.test", "write")
    [line] = [json.loads(x) for x in lines()]
    assert line["event"] == "create-token" and line["request_id"] is None and line["channel"] == "cli"
    assert secret not in json.dumps(line) and line["commit"] == world.reg.ledger.head()


@pytest.mark.parametrize("chosen", ["acme-ws", "a b", "x\ny event=publish", 'q"uote', "tab\tbed", "é", ""])
def test_a_text_line_quotes_any_value_that_could_start_another_field_or_line(lines, chosen):
    eventlog.configure("on")
    eventlog.refused(Denied("no"), 403, chosen)  # (a workspace as a client's path named it)
    [line] = lines()
    head = "event=upload-refused status=403 reason=Denied workspace="
    assert line.startswith(head) and "\n" not in line and "\t" not in line
    shown = line[len(head):]  # (the rest of the line is the one value: what it holds can't be a field)
    assert (shown if shown == "acme-ws" else json.loads(shown)) == chosen
