"""GET /_/metrics of a live registry with 4 workers, after real traffic (an upload, a pip install,
refusals): every worker's counts summed, moved by exactly what happened; made-up paths add no
series; readable from this host without a token; every answer's X-Request-Id is in the JSON access
log's line for it."""

from __future__ import annotations

import base64
import json
import secrets
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import make_wheel, pip_install, start_server
from tests.support.world import upload_form


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    r = httpx.get(f"{url}/_/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(r.text) for s in f.samples}


def at(series: dict, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def test_counts_after_real_traffic_across_four_workers(tmp_path):
    server = start_server(tmp_path / "data", workers=4, access_log="json")
    try:
        server.cli("package", "create", "default", "metered", "--repo", "packages")
        wheel = make_wheel(tmp_path, "metered", "1.0", payload=4096)
        auth = {"authorization": "Basic " + base64.b64encode(f"{server.admin}:{server.token}".encode()).decode()}
        before = scrape(server.url)
        fields, files = upload_form(wheel)
        ok = httpx.post(f"{server.url}/default/", data=fields, files=files, headers=auth, timeout=30)
        assert ok.status_code == 200, ok.text
        anonymous = httpx.post(f"{server.url}/default/", data=fields, files=files, timeout=30)
        assert anonymous.status_code == 401
        (tmp_path / "other").mkdir()
        fields, files = upload_form(make_wheel(tmp_path / "other", "metered", "1.0"))  # same name, other bytes
        clash = httpx.post(f"{server.url}/default/", data=fields, files=files, headers=auth, timeout=30)
        assert clash.status_code == 400, clash.text
        target, proc = pip_install(server, tmp_path, server.admin, server.token, "metered")
        assert proc.returncode == 0, proc.stderr
        for _ in range(50):  # (whichever worker each lands on)
            junk = secrets.token_hex(8)
            httpx.get(f"{server.url}/default/{junk}/", headers=auth, timeout=10)
            httpx.get(f"{server.url}/{junk}/{junk}/{junk}", timeout=10)
        time.sleep(1.5)  # (each worker adds what it tallied every second)
        after = scrape(server.url)

        assert at(after, "registry_publishes_total", outcome="published") - \
            at(before, "registry_publishes_total", outcome="published") == 1
        assert at(after, "registry_upload_bytes_total", kind="wheel") == wheel.stat().st_size
        assert at(after, "registry_publish_refusals_total", status="401", reason="Unauthorized") == 1
        assert at(after, "registry_publish_refusals_total", status="400", reason="FileExists") == 1
        uploads = sum(v for (n, labels), v in after.items()
                      if n == "registry_http_requests_total" and dict(labels)["route"] == "/{ws}/ (upload)")
        assert uploads == 3
        assert at(after, "registry_ledger_commit_duration_seconds_count", result="committed") >= 1
        routes = {dict(labels)["route"] for n, labels in after if n == "registry_http_requests_total"}
        assert len(routes) < 15 and not any(len(r) >= 16 and "{" not in r and "(" not in r for r in routes), routes
        for _ in range(50):  # more made-up paths: not one series more
            junk = secrets.token_hex(8)
            httpx.get(f"{server.url}/default/{junk}/", headers=auth, timeout=10)
            httpx.get(f"{server.url}/{junk}/{junk}/{junk}", timeout=10)
        time.sleep(1.5)
        again = scrape(server.url)
        http = [{k for k in s if k[0].startswith("registry_http_")} for s in (after, again)]
        assert http[0] == http[1]
        time.sleep(6)  # (each worker adds its cache counts every few seconds)
        caches = scrape(server.url)
        assert sum(v for (n, _), v in caches.items() if n == "registry_cache_hits_total") > 0

        rid = "trace-" + secrets.token_hex(4)
        r = httpx.get(f"{server.url}/_/health", headers={"x-request-id": rid}, timeout=10)
        assert r.headers["x-request-id"] == rid
        deadline = time.monotonic() + 5
        while rid not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        [line] = [json.loads(x) for x in server.log.read_text().splitlines() if rid in x]
        assert line["request_id"] == rid and line["path"] == "/_/health" and line["status"] == 200
        assert line["method"] == "GET" and line["who"] == "anonymous" and "time" in line
    finally:
        server.stop()


def test_behind_a_proxy_on_this_host_they_need_a_token_unless_loopback_is_given_which_warns(tmp_path):
    """A proxy on the registry's host that adds no forwarding header passes every request on from
    127.0.0.1: with REGISTRY_PUBLIC_URL set and REGISTRY_METRICS not given, a request from here needs a
    token; given `loopback`, it doesn't, and the start says why that may make them public."""
    public = "https://pypi.example.com"
    for given, status, said in ((None, 401, "Metrics (GET /_/metrics): token, "),
                                ("loopback", 200, "warning: Metrics (GET /_/metrics): loopback, ")):
        settings = {"public_url": public} | ({"metrics": given} if given else {})
        server = start_server(tmp_path / f"data-{given}", workers=1, **settings)
        try:
            r = httpx.get(f"{server.url}/_/metrics", timeout=10)  # (from 127.0.0.1, no forwarding header)
            assert r.status_code == status, r.text
            [line] = [x for x in server.log.read_text().splitlines() if "Metrics (GET /_/metrics)" in x]
            assert line.startswith(said) and "REGISTRY_PUBLIC_URL" in line, line
            if status == 401:
                assert "--witness" in r.text
        finally:
            server.stop()
