"""What the metrics cost the index (run by hand): python tests/benchmarks/bench_access_log.py

The authenticated 200-file JSON project page of bench_simple.py, from `registry serve --workers 2`
under `wrk -t2 -c32`, with requests counted (REGISTRY_METRICS=loopback, the default) and not
(REGISTRY_METRICS=off), alternating on the same data directory, ROUNDS pairs; then the cost of a
scrape of GET /_/metrics with 4 workers (milliseconds, median of SCRAPES). Prints each round and the
medians; only the ratio within the run means anything.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import basic, project_files, publish_in_process, registry_cli, start_server, wrk

VERSIONS = 100  # x (wheel + sdist) = 200 files
ROUNDS = 3
SCRAPES = 50
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    files = tmp / "files"
    files.mkdir()
    built = project_files(files, "bench-pkg", VERSIONS)
    data = tmp / "data"
    live = start_server(data, workers=2)
    registry_cli(live.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
    publish_in_process(live.data, live.admin, "default", built)
    admin, token = live.admin, live.token
    live.stop()

    figures: dict[str, list[float]] = {"loopback": [], "off": []}
    for _ in range(ROUNDS):
        for mode in ("loopback", "off"):
            live = start_server(data, workers=2, metrics=mode)
            try:
                headers = {"Authorization": basic(admin, token), "Accept": PIP_ACCEPT}
                url = f"{live.url}/default/bench-pkg/"
                wrk(url, headers, seconds=2)  # warm up
                rps, errors = wrk(url, headers)
                figures[mode].append(rps)
                print(f"metrics {mode:8}: {rps:,.0f} requests/s {errors}", flush=True)
            finally:
                live.stop()
    on, off = statistics.median(figures["loopback"]), statistics.median(figures["off"])
    print(f"medians: counted {on:,.0f}, not {off:,.0f} requests/s; overhead {100 * (1 - on / off):.1f}%")
    live = start_server(data, workers=4)
    try:
        headers = {"Authorization": basic(admin, token), "Accept": PIP_ACCEPT}
        wrk(f"{live.url}/default/bench-pkg/", headers, seconds=2)  # (every worker has counted something)
        times = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            assert httpx.get(f"{live.url}/_/metrics").status_code == 200
            times.append((time.perf_counter() - started) * 1000)
        print(f"scrape with 4 workers: {statistics.median(times):.1f} ms (median of {SCRAPES})", flush=True)
    finally:
        live.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
