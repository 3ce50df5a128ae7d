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


@pytest.mark.parametrize("json", [False, True])
def test_a_line_that_cant_be_made_costs_neither_its_batch_nor_the_timer(json):
    """A request's fields are made into its line only when its batch is written: a field of the wrong
    kind there gives a line saying so, in its place, and the rest of the batch is written; a write
    that fails in a way nobody foresaw doesn't stop the timer that writes the lines after it."""
    import io
    import time

    from registry.web.access import Batched

    class Flaky(io.StringIO):
        failures = 1

        def write(self, text: str) -> int:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("a stream that failed once")
            return super().write(text)

    out = io.StringIO()
    sink = Batched(out, json=json)
    sink.request("GET", "/acme/", 200, 10, 0.1, "anonymous", b"r1")
    sink.request("GET", "/acme/", 200, 10, "not a number", "anonymous", b"r2")  # type: ignore[arg-type]
    sink.request("GET", "/acme/b/", 200, 10, 0.1, "anonymous", b"r3")
    sink.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "r1" in lines[0] and "r3" in lines[2], lines
    assert "a request's line could not be made (" in lines[1] and "r2" not in lines[1]

    flaky = Flaky()
    timed = Batched(flaky, json=json)
    timed.FLUSH_SECONDS = 0.05  # (the timer reads it each time round)
    timed.request("GET", "/lost/", 200, 1, 0.1, "anonymous", b"r4")  # (its batch meets the failing write)
    deadline = time.monotonic() + 5
    while flaky.failures and time.monotonic() < deadline:
        time.sleep(0.02)
    timed.request("GET", "/after/", 200, 1, 0.1, "anonymous", b"r5")
    while "/after/" not in flaky.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "/after/" in flaky.getvalue()  # (written by the timer, which outlived the failure)


def test_lines_added_from_many_threads_while_batches_are_written_are_each_written_once():
    """Lines are added without a lock (a worker's threads and its event loop log at once), while
    full batches and the timer's flushes write what waits: no line may be lost, doubled or torn,
    whether added as a request's fields or as a line, and each carries the timestamp of its second."""
    import io
    import re
    import sys
    import threading
    import time

    from registry.web.access import Batched

    class Slow(io.StringIO):  # (a write that yields the GIL midway, as a pipe's may)
        def write(self, text: str) -> int:
            time.sleep(0)
            return super().write(text)

    out = Slow()
    sink = Batched(out)
    threads, per_thread = 8, 10_000
    start = threading.Barrier(threads + 1)

    def add(t: int) -> None:
        start.wait()
        for n in range(per_thread):
            if n % 500 == 0:
                sink.flush()
            if n % 2:  # (a request's fields, made into its line when written)
                sink.request("GET", f"/{t}/{n}/", 200, 1, 0.1, "anonymous", b"r")
            else:  # (a line made already, at a given time)
                sink.line(f"GET /{t}/{n}/ 200 1 0.1ms anonymous", 1_700_000_000.5 + n // 1000)

    workers = [threading.Thread(target=add, args=(t,)) for t in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # (threads switch every few bytecodes: a race shows at once)
    try:
        for w in workers:
            w.start()
        start.wait()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    sink.flush()
    lines = out.getvalue().splitlines()
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO registry\.access: "
                       r"GET /(\d+)/(\d+)/ 200 1 0\.1ms anonymous( r)?")
    seen = [stamp.fullmatch(line) for line in lines]
    assert all(seen), [line for line, m in zip(lines, seen, strict=True) if not m][:3]
    everyone = [(t, n) for t in range(threads) for n in range(per_thread)]
    assert sorted((int(m[1]), int(m[2])) for m in seen if m) == everyone
    given = {(int(m[1]), int(m[2])): line for m, line in zip(seen, lines, strict=True) if m}
    for n in range(0, per_thread, 2):  # (the lines given a time: the second it names, whatever the others did)
        expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_700_000_000 + n // 1000)) + ",500 "
        assert given[(0, n)].startswith(expected)


def test_workers_forked_from_one_process_make_different_request_ids():
    """granian forks its workers from one process: a new request id must not repeat across them (the
    random generator is reseeded in a forked child), nor within one."""
    import os

    from registry.web.access import request_id

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # (the child: its next ids, to the parent)
        os.write(write, b"".join(request_id({"headers": []}) for _ in range(4)))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64)
    os.close(read)
    theirs = {child[i:i + 16] for i in range(0, 64, 16)}
    ours = {request_id({"headers": []}) for _ in range(1000)}
    assert len(theirs) == 4 and len(ours) == 1000 and not theirs & ours
    assert all(len(rid) == 16 and int(rid, 16) >= 0 for rid in ours | theirs)
