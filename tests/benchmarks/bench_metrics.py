"""What the metrics cost the index (run by hand): python tests/benchmarks/bench_metrics.py

The authenticated 200-file JSON project page of bench_simple.py, from `registry serve --workers 2`
under `wrk -t2 -c32`, with requests counted (REGISTRY_METRICS=loopback, the default) and not
(REGISTRY_METRICS=off), alternating on the same data directory, ROUNDS pairs; then the cost of a
scrape of GET /_/metrics with 4 workers (milliseconds, median of SCRAPES). Prints each round and the
medians of the workers' CPU time per request (requests/s swings with whatever else the machine runs;
a request's CPU time much less); only the ratio within the run means anything. Then the same page's
instructions a request in process, counted and not (instructions.py: valgrind; no other load moves it).
"""

from __future__ import annotations

import shutil
import statistics
import time

import httpx
from _common import PIP_ACCEPT, basic, index_with_and_without, start_server, wrk
from instructions import per_request

ROUNDS = 5
SCRAPES = 50


def main() -> None:
    figures, data, (admin, token) = index_with_and_without("metrics", ("loopback", "off"), ROUNDS)
    on, off = statistics.median(figures["loopback"]), statistics.median(figures["off"])
    print(f"medians: counted {on:.1f}, not {off:.1f} µs CPU a request; overhead {100 * (on / off - 1):.1f}%")
    auth = basic(admin, token)
    counted, uncounted = (per_request(data, auth, {"metrics": mode}) for mode in ("loopback", "off"))
    print(f"instructions a request (callgrind, in process): counted {counted:,.0f}, not {uncounted:,.0f}; "
          f"overhead {100 * (counted / uncounted - 1):.2f}%", flush=True)
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
    shutil.rmtree(data.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
