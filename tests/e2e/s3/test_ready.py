"""GET /_/ready of a registry on SeaweedFS (its own, stopped and started here; the session's is
shared): 503 saying why while the bucket can't be reached, the blob store's error counter rising,
and 200 again once it is back, each seen within the one second a worker keeps the store's answer and
the time to ask it again (BLOBS_TIMEOUT, retries included). /_/health stays 200 throughout (the server
still serves the index)."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.helpers import start_server
from tests.support.seaweed import Seaweed

TTL = 1.0  # (registry/web/readiness.py)
ASKING = 2 * 1.0 + 1.0  # a check's longest: twice BLOBS_TIMEOUT (1 s here), and slack for a loaded machine


def s3_errors(url: str) -> float:
    text = httpx.get(f"{url}/_/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "registry_blob_store_errors_total" and s.labels.get("store") == "s3")


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/_/ready", timeout=30)


def test_a_stopped_bucket_makes_it_not_ready_and_counts_errors_until_it_is_back(tmp_path):
    weed = Seaweed(tmp_path / "weed").start()
    server = None
    try:
        server = start_server(tmp_path / "data", workers=2, env=weed.env(), blobs=weed.location(), blobs_timeout="1")
        r = ready(server.url)
        assert r.status_code == 200 and r.json()["ready"] is True and r.json()["reasons"] == []
        before = s3_errors(server.url)
        weed.kill()
        stopped = time.monotonic()
        while (r := ready(server.url)).status_code == 200 and time.monotonic() - stopped < 30:
            assert r.json()["checked"] <= TTL
            time.sleep(0.1)
        assert r.status_code == 503, r.text
        assert time.monotonic() - stopped <= TTL + ASKING + 1, time.monotonic() - stopped  # (+1: the request's own)
        [why] = r.json()["reasons"]
        assert why.startswith("The blob store can't be reached") and weed.endpoint in why
        assert r.json()["ready"] is False
        assert httpx.get(f"{server.url}/_/health", timeout=10).status_code == 200
        assert s3_errors(server.url) > before
        weed.start()  # (returns once the bucket answers)
        back = time.monotonic()
        while (r := ready(server.url)).status_code != 200 and time.monotonic() - back < 30:
            time.sleep(0.1)
        assert r.status_code == 200 and r.json()["ready"] is True, r.text
        assert time.monotonic() - back <= TTL + ASKING + 1, time.monotonic() - back
        assert 0 <= r.json()["checked"] <= TTL
    finally:
        if server is not None:
            server.stop()
        weed.stop()
