"""The access log (registry/web/access.py): one line per request, its shape, who it names, and no
secret on any route that carries one (a token, a password, a session cookie, a sign-in link, a
query string)."""

from __future__ import annotations

import base64
import logging
import re
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient

from registry import identity, operations
from registry.config import Settings
from registry.web.access import REDACTED, shown_path
from registry.web.app import create_asgi
from registry.web.ui.session import SESSION_COOKIE
from tests.support.pipelines import REPO_UUID, as_password, step_token
from tests.support.world import WS, upload_form

LINE = re.compile(r"(?P<method>[A-Z]+) (?P<path>/\S*) (?P<status>\d{3}) (?P<bytes>\d+) (?P<ms>\d+\.\d)ms (?P<who>\S+) "
                  r"(?P<request_id>[0-9a-f]{16})")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="registry.access")

    def taken() -> list[re.Match]:
        found = [r.getMessage() for r in caplog.records if r.name == "registry.access"]
        caplog.clear()
        parsed = [LINE.fullmatch(m) for m in found]
        assert all(parsed), found
        return parsed  # type: ignore[return-value]
    return taken


def _no_secret(matches: list[re.Match], *secrets: str) -> None:
    for m in matches:
        for secret in secrets:
            assert secret not in m.string, (secret, m.string)


async def test_one_line_per_request_with_its_method_path_status_bytes_and_who(client, world, lines):
    r = await client.get(f"/{WS}/acme-utils/", headers=world.basic("dev@acme.test"))
    [line] = lines()
    assert line["method"] == "GET" and line["path"] == f"/{WS}/acme-utils/" and line["status"] == "200"
    assert int(line["bytes"]) == len(r.content) and line["who"] == "dev@acme.test"
    again = await client.get(f"/{WS}/acme-utils/", headers=world.basic("dev@acme.test"))  # (answered from memory)
    [line] = lines()
    assert again.status_code == 200 and line["who"] == "dev@acme.test" and int(line["bytes"]) == len(again.content)
    await client.get(f"/{WS}/secret-pkg/")
    [line] = lines()
    assert line["status"] == "401" and line["who"] == "anonymous"
    await client.get("/_/health")
    [line] = lines()
    assert line["status"] == "200" and line["who"] == "anonymous"


async def test_refused_uploads_are_logged_with_who_was_refused(client, world, dists, lines):
    sdist, _ = dists[("Acme.Utils", "1.0.0")]
    for who, status in (("reader@acme.test", 403), ("outsider@acme.test", 403)):  # (a hidden name: as a new one)
        data, files = upload_form(sdist)
        r = await client.post(f"/{WS}/", data=data, files=files, headers=world.basic(who))
        assert r.status_code == status
        [line] = lines()
        assert (line["method"], line["path"], line["status"], line["who"]) == ("POST", f"/{WS}/", str(status), who)
        _no_secret([line], world.tokens[who])
    data, files = upload_form(sdist)
    wrong = "Basic " + base64.b64encode(b"dev@acme.test:rgt_not-a-token").decode()
    r = await client.post(f"/{WS}/", data=data, files=files, headers={"authorization": wrong})
    [line] = lines()
    assert r.status_code in (401, 403) and line["who"] == "refused-credentials"
    _no_secret([line], "rgt_not-a-token", wrong.split()[1], "dev@acme.test")


async def test_no_credential_reaches_the_log_on_any_route_that_carries_one(client, world, issuer, trusted, lines):
    token, basic = world.tokens["dev@acme.test"], world.basic("dev@acme.test")
    secrets = [token, basic["authorization"].split()[1]]
    # a token in a query string (pip users paste them anywhere), on every kind of route
    for path in (f"/{WS}/", f"/{WS}/acme-utils/", "/api/v1/workspaces", "/-/", "/_/health"):
        await client.get(f"{path}?token={token}&password={token}", headers=basic)
    # a pipeline's OIDC token, as Bearer and as a password, and what it is exchanged for
    jwt = step_token(issuer, trusted)
    secrets.append(jwt)
    await client.get(f"/{WS}/acme-piped/", headers={"authorization": f"Bearer {jwt}"})
    await client.get(f"/{WS}/acme-piped/", headers=as_password(jwt))
    minted = await client.post("/_/oidc/mint-token", json={"token": jwt})
    logged = lines()
    assert [m["who"] for m in logged[-3:-1]] == [f"pipeline:{REPO_UUID}"] * 2
    assert minted.status_code == 200
    secrets.append(minted.json()["token"])
    await client.get(f"/{WS}/acme-piped/", headers={"authorization": f"Bearer {minted.json()['token']}"})
    logged += lines()
    assert logged[-1]["who"] == f"pipeline:{REPO_UUID}"
    # a sign-in link (its secret is the path) and the session cookie it gives
    secret, _ = operations.create_signin_link(world.reg, identity.operator(), "cli", "dev@acme.test",
                                              timedelta(minutes=5))
    secrets.append(secret)
    page = await client.get(f"/-/_/link/{secret}")
    await client.post(f"/-/_/link/{secret}", data={"csrf": CSRF.search(page.text).group(1)}, follow_redirects=False)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    secrets.append(cookie)
    await client.get("/-/")
    signed_in = lines()
    assert [m["path"] for m in signed_in[:2]] == ["/-/_/link/" + REDACTED] * 2
    assert signed_in[-1]["who"] == "dev@acme.test"  # (by the session cookie)
    _no_secret(logged + signed_in, *secrets)
    assert all("?" not in m["path"] for m in logged + signed_in)


def test_a_sign_in_link_is_logged_without_its_secret_however_it_is_spelt():
    for path in ("/-/_/link/rgl_abc", "/-/_/link/rgl_abc/", "/-/_/link/rgl_a%2Fb/more", "//-/_/link/rgl_abc",
                 "/-//_///link/rgl_abc"):
        assert shown_path(path) == "/-/_/link/" + REDACTED
    assert shown_path("/-/_/link/") == "/-/_/link/"  # (nothing to hide)
    assert shown_path("/acme/pkg/") == "/acme/pkg/"


async def test_off_writes_no_line(world, lines):
    quiet = Settings(data=world.reg.settings.data, access_log="off")
    async with AsyncTestClient(app=create_asgi(quiet, world.reg)) as c:
        assert (await c.get("/_/health")).status_code == 200
    assert lines() == []


@pytest.mark.parametrize("value", ["no", "false", "0", "yes please", "loud", "jsonl"])
def test_a_setting_other_than_on_or_off_is_refused_before_anything_is_written(value, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_ACCESS_LOG", value)
    with pytest.raises(SystemExit) as refused:
        Settings.load(data=str(tmp_path / "data"))
    assert f"REGISTRY_ACCESS_LOG={value!r}: give on, off or json" in str(refused.value)
    assert not (tmp_path / "data").exists()
    monkeypatch.setenv("REGISTRY_ACCESS_LOG", "OFF")
    assert not Settings.load(data=str(tmp_path / "data")).logs_access


def test_a_served_workers_lines_are_written_in_batches_and_none_is_lost(tmp_path):
    """A write per request cost the index a third of its throughput: a served worker's lines wait (at
    most Batched.FLUSH_SECONDS, or until a batch is full), and whatever waits is written at exit."""
    import io
    import time

    from registry.web.access import Batched

    out = io.StringIO()
    sink = Batched(out)
    sink.line("GET /acme/ 200 10 0.1ms anonymous")
    assert out.getvalue() == ""  # (waiting)
    deadline = time.monotonic() + 5
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.getvalue().endswith(" INFO registry.access: GET /acme/ 200 10 0.1ms anonymous\n")
    for n in range(Batched.BATCH):
        sink.line(f"GET /{n}/ 200 1 0.1ms anonymous")
    assert out.getvalue().count("\n") >= Batched.BATCH  # (a full batch is written at once)
    sink.line("POST /acme/ 403 5 0.2ms reader@acme.test")
    sink.flush()  # (what logging.shutdown does at exit)
    lines = out.getvalue().splitlines()
    assert len(lines) == Batched.BATCH + 2 and lines[-1].endswith("POST /acme/ 403 5 0.2ms reader@acme.test")
