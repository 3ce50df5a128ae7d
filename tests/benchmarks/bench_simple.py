"""Simple API throughput (run by hand): python tests/benchmarks/bench_simple.py

An authenticated project page with 200 files, from `registry serve --workers 2`, under
`wrk -t2 -c32` on the same machine, JSON and HTML; then pypiserver serving the same 200 files with
authentication on list/download, under the same wrk. The bar: >= 10,000 requests/s for ours.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import (
    basic,
    project_files,
    publish_in_process,
    registry_cli,
    start_pypiserver,
    start_server,
    wrk,
)

VERSIONS = 100  # x (wheel + sdist) = 200 files
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    files = tmp / "files"
    files.mkdir()
    built = project_files(files, "bench-pkg", VERSIONS)

    live = start_server(tmp / "data", workers=2)
    try:
        registry_cli(live.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
        publish_in_process(live.data, live.admin, "default", built)
        auth_header = basic(live.admin, live.token)
        url = f"{live.url}/default/bench-pkg/"
        for label, accept in [("JSON", PIP_ACCEPT), ("HTML", "text/html")]:
            wrk(url, {"Authorization": auth_header, "Accept": accept}, seconds=2)  # warm up
            rps, errors = wrk(url, {"Authorization": auth_header, "Accept": accept})
            print(f"registry  {label}: {rps:,.0f} requests/s {errors}")
    finally:
        live.stop()

    packages = tmp / "pypiserver-packages"
    shutil.copytree(files, packages)
    proc, url = start_pypiserver(packages, "bench", "secret", "download,list")
    try:
        rps, errors = wrk(f"{url}/simple/bench-pkg/", {"Authorization": basic("bench", "secret"),
                                                       "Accept": "text/html"})
        print(f"pypiserver HTML: {rps:,.0f} requests/s {errors}")
    finally:
        proc.terminate()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
