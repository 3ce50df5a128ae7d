"""Upload throughput (run by hand): python tests/benchmarks/bench_upload.py [--files 400]

400 small wheels uploaded with one twine command, to `registry serve --workers 2` (each one a
durable commit) and to pypiserver (a file write each). The bar: ours takes no more time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import make_wheel, registry_cli, start_pypiserver, start_server


def twine(url: str, user: str, password: str, files: list[Path]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url", url,
                    "-u", user, "-p", password, *map(str, files)], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def ours(tmp: Path, wheels: list[Path], run: int) -> float:
    live = start_server(tmp / f"data-{run}", workers=2)
    try:
        registry_cli(live.data, "package", "create", "default", "bench-upload", "--repo", "packages")
        elapsed = twine(f"{live.url}/default/", live.admin, live.token, wheels)
        log = registry_cli(live.data, "log", "default", "bench-upload", "--limit", "0")
        assert log.count("\n    publish ") == len(wheels), "every upload is a commit"
        return elapsed
    finally:
        live.stop()


def theirs(tmp: Path, wheels: list[Path], run: int) -> float:
    packages = tmp / f"pypiserver-{run}"
    packages.mkdir()
    proc, url = start_pypiserver(packages, "bench", "secret", "update")
    try:
        elapsed = twine(f"{url}/", "bench", "secret", wheels)
        assert len(list(packages.iterdir())) == len(wheels)
        return elapsed
    finally:
        proc.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    out = tmp / "wheels"
    out.mkdir()
    wheels = [make_wheel(out, "bench-upload", f"0.0.{i}") for i in range(args.files)]
    # Alternate the two, so that whatever else the machine's disk is doing weighs on both alike.
    mine, pypiserver = [], []
    for run in range(args.rounds):
        mine.append(ours(tmp, wheels, run))
        pypiserver.append(theirs(tmp, wheels, run))
        print(f"round {run + 1}: registry {mine[-1]:.2f} s, pypiserver {pypiserver[-1]:.2f} s", flush=True)
    a, b = statistics.median(mine), statistics.median(pypiserver)
    print(f"registry:   {args.files} uploads, median {a:.2f} s ({args.files / a:.0f}/s), each a durable commit")
    print(f"pypiserver: {args.files} uploads, median {b:.2f} s ({args.files / b:.0f}/s), no fsync at all")
    print(f"ratio: {a / b:.2f}x the time pypiserver takes (bar: at most 1x)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
