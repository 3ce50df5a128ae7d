"""Read replicas (run by hand): python tests/benchmarks/bench_replica.py [--publishes 500] [--seconds 10]

1. Replication lag: a primary and two replicas (`registry serve --follow`, local blobs), every
   server on this machine. Each of N small wheels is published to the primary; from its 200, each
   replica's project page (JSON) is polled until it lists the file. p50, p99 and max over N
   publishes, per replica. The bar: p99 under 1 s.
2. Throughput: an authenticated 200-file project page (JSON), under wrk from three clients of 11
   connections each: all three at the primary alone, then one at each of primary, replica A and
   replica B; the requests/s summed. (One machine: the three servers share its cores, so this
   shows what a replica costs, not what three machines would serve.)
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _common import (
    basic,
    make_sdist,
    make_wheel,
    publish_in_process,
    registry_cli,
    start_server,
)

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json"


def publish(client: httpx.Client, url: str, wheel: Path, name: str, version: str) -> None:
    data = wheel.read_bytes()
    r = client.post(url, data={":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
                               "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
                               "sha256_digest": hashlib.sha256(data).hexdigest()},
                    files={"content": (wheel.name, data, "application/octet-stream")})
    assert r.status_code == 200, r.text


def wait_listed(client: httpx.Client, url: str, filename: str, since: float, out: list[float]) -> None:
    while True:
        r = client.get(url, headers={"accept": PIP_ACCEPT})
        if r.status_code == 200 and f'"{filename}"' in r.text:
            out.append(time.perf_counter() - since)
            return
        time.sleep(0.002)


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p = lambda q: values[min(int(q * len(values)), len(values) - 1)] * 1000  # noqa: E731
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p99 {p(0.99):.0f} ms, max {values[-1] * 1000:.0f} ms"


def wrk_all(urls: list[str], headers: dict[str, str], seconds: int) -> float:
    """wrk -t1 -c11 at each URL at once; their requests/s summed."""
    procs = []
    for url in urls:
        args = ["wrk", "-t1", "-c11", f"-d{seconds}s"]
        for k, v in headers.items():
            args += ["-H", f"{k}: {v}"]
        procs.append(subprocess.Popen([*args, url], stdout=subprocess.PIPE, text=True))
    total = 0.0
    for proc in procs:
        out = proc.communicate()[0]
        assert "Non-2xx" not in out, out
        total += float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--publishes", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    primary = start_server(tmp / "primary", workers=2)
    servers = [primary]
    try:
        registry_cli(primary.data, "user", "create", "replica@example.com")
        token = registry_cli(primary.data, "token", "create", "replica@example.com", "--replica")
        registry_cli(primary.data, "package", "create", "default", "lag-pkg", "--repo", "packages")
        registry_cli(primary.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
        replicas = [start_server(tmp / f"replica-{n}", workers=2, env={"REGISTRY_FOLLOW_TOKEN": token},
                                 follow=primary.url) for n in ("a", "b")]
        servers += replicas
        auth = (primary.admin, primary.token)

        wheels = tmp / "wheels"
        wheels.mkdir()
        lags: dict[str, list[float]] = {r.url: [] for r in replicas}
        pollers = {r.url: httpx.Client(auth=auth, timeout=30) for r in replicas}
        with httpx.Client(auth=auth, timeout=30) as client:
            started = time.perf_counter()
            for i in range(args.publishes):
                version = f"1.{i}"
                wheel = make_wheel(wheels, "lag-pkg", version)
                publish(client, f"{primary.url}/default/", wheel, "lag-pkg", version)
                since = time.perf_counter()
                waits = [threading.Thread(target=wait_listed, args=(pollers[r.url], f"{r.url}/default/lag-pkg/",
                                                                    wheel.name, since, lags[r.url])) for r in replicas]
                for t in waits:
                    t.start()
                for t in waits:
                    t.join()
            took = time.perf_counter() - started
        print(f"replication lag, {args.publishes} publishes to the primary ({took:.0f} s), from the 200 to the file "
              "listed on the replica:")
        for name, replica in zip("AB", replicas, strict=True):
            print(f"  replica {name}: {percentiles(lags[replica.url])}")
        every = [v for values in lags.values() for v in values]
        print(f"  both:      {percentiles(every)}")

        publish_in_process(primary.data, primary.admin, "default", [  # 200 files, as bench_simple.py
            make(wheels, "bench-pkg", f"1.{i}.0") for i in range(100) for make in (make_wheel, make_sdist)])
        head = httpx.get(f"{primary.url}/_/health").json()["ledger"]
        for replica in replicas:
            while httpx.get(f"{replica.url}/_/health").json()["ledger"] != head:
                time.sleep(0.1)
        headers = {"Authorization": basic(*auth), "Accept": PIP_ACCEPT}
        page = "/default/bench-pkg/"
        wrk_all([s.url + page for s in servers], headers, 2)  # warm up every server's page cache
        alone = wrk_all([primary.url + page] * 3, headers, args.seconds)
        spread = wrk_all([s.url + page for s in servers], headers, args.seconds)
        print(f"200-file project page (JSON), 3 x wrk -t1 -c11, {args.seconds} s:")
        print(f"  primary alone:          {alone:,.0f} requests/s")
        print(f"  primary + 2 replicas:   {spread:,.0f} requests/s (on the same 2 cores)")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
