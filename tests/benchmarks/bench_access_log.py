"""What the access log costs the index (run by hand): python tests/benchmarks/bench_access_log.py

The authenticated 200-file JSON project page of bench_simple.py, from `registry serve --workers 2`
under `wrk -t2 -c32`, with the access log on (the default: a line per request, to the server's
stderr, here a file) and off (REGISTRY_ACCESS_LOG=off), alternating on the same data directory,
ROUNDS pairs. Prints each round and the medians; only the ratio within the run means anything.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from _common import basic, project_files, publish_in_process, registry_cli, start_server, wrk

VERSIONS = 100  # x (wheel + sdist) = 200 files
ROUNDS = 3
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

    figures: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(ROUNDS):
        for mode in ("on", "off"):
            live = start_server(data, workers=2, access_log=mode)
            try:
                headers = {"Authorization": basic(admin, token), "Accept": PIP_ACCEPT}
                url = f"{live.url}/default/bench-pkg/"
                wrk(url, headers, seconds=2)  # warm up
                rps, errors = wrk(url, headers)
                figures[mode].append(rps)
                print(f"access log {mode:3}: {rps:,.0f} requests/s {errors}", flush=True)
            finally:
                live.stop()
    on, off = statistics.median(figures["on"]), statistics.median(figures["off"])
    print(f"medians: on {on:,.0f}, off {off:,.0f} requests/s; on/off {on / off:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
