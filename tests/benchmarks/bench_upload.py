"""Upload throughput (run by hand): python tests/benchmarks/bench_upload.py [--files 400]

400 small wheels uploaded with one twine command, to `registry serve --workers 2` (each one a
durable commit) and to pypiserver (a file write each). The bar: ours takes no more time.
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

from _common import make_wheel, registry_cli, start_pypiserver, start_server


def twine(url: str, user: str, password: str, files: list[Path]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINE_", "PIP_"))}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url", url,
                    "-u", user, "-p", password, *map(str, files)], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    out = tmp / "wheels"
    out.mkdir()
    wheels = [make_wheel(out, "bench-upload", f"0.0.{i}") for i in range(args.files)]

    live = start_server(tmp / "data", workers=2)
    try:
        registry_cli(live.data, "package", "create", "default", "bench-upload", "--repo", "packages")
        ours = twine(f"{live.url}/default/", live.admin, live.token, wheels)
        commits = registry_cli(live.data, "log", "default", "bench-upload", "--limit", "0").count("\n    publish ")
        print(f"registry:   {len(wheels)} uploads in {ours:.1f} s ({len(wheels) / ours:.0f}/s), {commits} publish commits")
    finally:
        live.stop()

    packages = tmp / "pypiserver-packages"
    packages.mkdir()
    proc, url = start_pypiserver(packages, "bench", "secret", "update")
    try:
        theirs = twine(f"{url}/", "bench", "secret", wheels)
        print(f"pypiserver: {len(wheels)} uploads in {theirs:.1f} s ({len(wheels) / theirs:.0f}/s), "
              f"{len(list(packages.iterdir()))} files")
    finally:
        proc.terminate()
    print(f"ratio: {ours / theirs:.2f}x the time pypiserver takes (bar: at most 1x)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
