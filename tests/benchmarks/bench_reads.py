"""Reads at scale (run by hand): python tests/benchmarks/bench_reads.py [--versions 100000] [--data DIR]

Fills a registry over HTTP, as its users would (1,000 packages, --versions wheels spread over them,
four publishers at once, each file a durable commit), then times every read endpoint: the first
request after the fill (whoever reads first must not pay for the burst before it) and the median of
the next twenty, and reads each worker's resident memory. The bars: every read under 100 ms, the
first included, and no worker over 150 MB.

`--data DIR` keeps the filled data directory there, and reuses it on the next run (skipping the
fill): the same ledger can then be read by two versions of the code.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import registry_cli, start_server, wheel_bytes  # noqa: E402

WS = "default"


def publish(client: httpx.Client, url: str, name: str, version: str) -> None:
    filename, data = wheel_bytes(name, version)
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}
    for attempt in range(5):
        r = client.post(url, data=fields, files={"content": (filename, data, "application/octet-stream")})
        if r.status_code == 200:
            return
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"publish {filename}: {r.status_code} {r.text}")


def fill(url: str, auth: tuple[str, str], packages: int, versions: int) -> None:
    with httpx.Client(auth=auth, timeout=60) as client:
        for p in range(packages):
            r = client.post(f"{url}/api/workspaces/{WS}/packages", json={"name": f"pkg-{p}", "repository": "packages"})
            assert r.status_code in (201, 409), r.text
    jobs = [(f"pkg-{i % packages}", f"{i // packages}.{i % 7}.0") for i in range(versions)]
    started = time.perf_counter()
    done = 0

    def run(chunk):
        with httpx.Client(auth=auth, timeout=60) as client:
            for name, version in chunk:
                publish(client, f"{url}/{WS}/", name, version)

    chunks = [jobs[i::4] for i in range(4)]
    step = 2000
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for start in range(0, max(len(c) for c in chunks), step // 4):
            list(pool.map(run, [c[start:start + step // 4] for c in chunks]))
            done = min(versions, done + step)
            rate = done / (time.perf_counter() - started)
            print(f"  published {done} of {versions} ({rate:.0f}/s)", flush=True)


def rss_of_workers(parent: int) -> list[int]:
    out = []
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out.append(int(line.split()[1]) // 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--data", type=Path, help="keep (or reuse) the filled data directory here")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp()) / "data"
    filled = (data / "ledger.git").exists()
    live = start_server(data, workers=2)
    try:
        token = live.token or registry_cli(data, "token", "create", live.admin)
        auth = (live.admin, token)
        if not filled:
            print(f"filling: {args.versions} versions in {args.packages} packages, over HTTP")
            started = time.perf_counter()
            fill(live.url, auth, args.packages, args.versions)
            print(f"  filled in {time.perf_counter() - started:.0f} s")
            live.stop()  # a fresh server: nothing warm but what a restart keeps
            live = start_server(data, workers=2)
        p = args.packages // 2 + 7
        name = f"pkg-{p}"
        i = (args.versions - 1 - p) // args.packages * args.packages + p  # its last version
        last = f"{i // args.packages}.{i % 7}.0"
        filename = f"{name.replace('-', '_')}-{last}-py3-none-any.whl"
        api = f"/api/workspaces/{WS}/packages/pypi/{name}"
        reads = [
            ("version details (API)", f"{api}/versions/{last}"),
            ("package details (API)", api),
            ("package history (API)", f"{api}/history"),
            ("version history (API)", f"{api}/versions/{last}/history"),
            ("package list (API)", f"/api/workspaces/{WS}/packages?per_page=50"),
            ("package search (API)", f"/api/workspaces/{WS}/packages?q=pkg-5"),
            ("JSON API", f"/{WS}/pypi/{name}/json"),
            ("JSON API, one release", f"/{WS}/pypi/{name}/{last}/json"),
            ("simple index", f"/{WS}/"),
            ("project page", f"/{WS}/{name}/"),
            ("file", f"/{WS}/{name}/{last}/{filename}"),
            ("core metadata", f"/{WS}/{name}/{last}/{filename}.metadata"),
        ]
        print(f"{'read':28} {'first':>9} {'median':>9}  (ms)")
        worst = 0.0
        with httpx.Client(base_url=live.url, auth=auth, timeout=120) as client:
            for label, path in reads:
                times = []
                for _ in range(21):
                    started = time.perf_counter()
                    r = client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 200, (path, r.status_code, r.text[:300])
                worst = max(worst, *times)
                print(f"{label:28} {times[0]:9.1f} {statistics.median(times[1:]):9.1f}")
        rss = rss_of_workers(live.process.pid)
        print(f"slowest read: {worst:.1f} ms (bar: under 100); "
              f"worker RSS: {', '.join(f'{m} MB' for m in rss)} (bar: 150)")
    finally:
        live.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
