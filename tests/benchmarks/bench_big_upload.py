"""Memory during a big upload (run by hand): python tests/benchmarks/bench_big_upload.py [--mib 500] [--backend s3]
[--via-replica]

Uploads a 500 MB wheel with twine to `registry serve --workers 1` and reports the worker's peak
RSS growth (VmHWM during the upload minus VmRSS before it). The bar: under 64 MB. With `--backend
s3` the files go to a bucket of a SeaweedFS started on 127.0.0.1 (bench_s3.py compares both, and
downloads too). With `--via-replica` the upload goes through a read replica (`registry serve
--follow`, one worker), which streams it to the primary: the replica's worker is the one measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import make_wheel, registry_cli, start_server


def worker_pid(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return int(children[0])


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=500)
    parser.add_argument("--backend", choices=["file", "s3"], default="file")
    parser.add_argument("--via-replica", action="store_true", help="upload through a read replica; measure it")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR")))
    print(f"building a {args.mib} MiB wheel...", flush=True)
    wheel = make_wheel(tmp, "big-pkg", "1.0", payload=args.mib * 2**20, stored=True)
    seaweed, extra = None, {}
    if args.backend == "s3":
        from tests.support.seaweed import Seaweed

        seaweed = Seaweed(tmp / "seaweed").start()
        extra = dict(env=seaweed.env(), blobs=seaweed.location())
    live = start_server(tmp / "data", workers=1, max_upload_bytes=str((args.mib + 64) * 2**20), **extra)
    target = live
    try:
        registry_cli(live.data, "package", "create", "default", "big-pkg", "--repo", "packages")
        if args.via_replica:
            registry_cli(live.data, "user", "create", "replica@example.com")
            token = registry_cli(live.data, "token", "create", "replica@example.com", "--replica")
            target = start_server(tmp / "replica", workers=1,
                                  env={**extra.get("env", {}), "REGISTRY_FOLLOW_TOKEN": token},
                                  follow=live.url, **({"blobs": extra["blobs"]} if "blobs" in extra else {}))
        worker = worker_pid(target.process.pid)
        # granian's main process spawns the worker; `python -m registry` may sit in between
        try:
            status(worker, "VmHWM")
            inner = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
            if inner:
                worker = int(inner[0])
        except FileNotFoundError:
            pass
        before = status(worker, "VmRSS")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url",
                        f"{target.url}/default/", "-u", live.admin, "-p", live.token, str(wheel)], check=True,
                       capture_output=True)
        elapsed = time.perf_counter() - started
        peak = status(worker, "VmHWM")
        print(f"uploaded {wheel.stat().st_size / 2**20:.0f} MiB in {elapsed:.1f} s"
              f"{' through a replica' if target is not live else ''}; worker RSS before "
              f"{before / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB: "
              f"growth {(peak - before) / 2**20:.1f} MiB (bar: < 64 MB)")
    finally:
        if target is not live:
            target.stop()
        live.stop()
        if seaweed is not None:
            seaweed.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
