"""Import throughput (run by hand): python tests/benchmarks/bench_import.py [--files 1000] [--projects 20]

The same small wheels, three ways into a fresh `registry serve --workers 2` (each file one durable
commit): `registry import` from a directory, `registry import` from pypiserver on 127.0.0.1 over
its Simple API (pages, downloads, hash checks), and one `twine upload` of them all; each import
again (everything is skipped); and from that registry into another (its Simple JSON API). The
bar: 1,000 files well under a minute.
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


def timed_import(data: Path, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(data), "import", "default", "--repo",
                           "packages", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    summary = next((line for line in proc.stdout.splitlines() if line.startswith("imported ") and ", skipped " in line),
                   "")
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stdout[-2000:]}\n{proc.stderr}")
    return elapsed, summary


def twine(url: str, user: str, password: str, files: list[Path]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url", url,
                    "-u", user, "-p", password, *map(str, files)], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def commits(data: Path) -> int:
    out = registry_cli(data, "log", "--limit", "0")
    return out.count("\n    publish ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    packages = tmp / "packages"
    packages.mkdir()
    names = [f"bench-import-{p}" for p in range(args.projects)]
    wheels = [make_wheel(packages, names[i % args.projects], f"0.0.{i}") for i in range(args.files)]
    size = sum(w.stat().st_size for w in wheels)
    print(f"{len(wheels)} wheels, {len(names)} projects, {size / 2**20:.1f} MiB; {os.cpu_count()} cores", flush=True)
    results = []
    try:
        live = start_server(tmp / "data-dir", workers=2)
        try:
            elapsed, summary = timed_import(live.data, str(packages))
            results.append(("registry import DIR", elapsed, summary))
            assert commits(live.data) == len(wheels), "every file is a commit"
            elapsed, summary = timed_import(live.data, str(packages))
            results.append(("  the same again (all skipped)", elapsed, summary))
        finally:
            live.stop()

        proc, url = start_pypiserver(packages, "bench", "secret", "list,download,update")
        live = start_server(tmp / "data-index", workers=2)
        try:
            elapsed, summary = timed_import(live.data, "--index-url", f"{url}/simple/", "--username", "bench",
                                            "--password", "secret")
            results.append(("registry import --index-url (pypiserver)", elapsed, summary))
            assert commits(live.data) == len(wheels), "every file is a commit"
            elapsed, summary = timed_import(live.data, "--index-url", f"{url}/simple/", "--username", "bench",
                                            "--password", "secret")
            results.append(("  the same again (all skipped, no download)", elapsed, summary))
        finally:
            live.stop()
            proc.terminate()

        live = start_server(tmp / "data-twine", workers=2)
        try:
            for name in names:
                registry_cli(live.data, "package", "create", "default", name, "--repo", "packages")
            elapsed = twine(f"{live.url}/default/", live.admin, live.token, wheels)
            results.append(("twine upload (to registry serve)", elapsed, ""))
            assert commits(live.data) == len(wheels), "every upload is a commit"
            # and from that registry (PEP 691 JSON, upload times) into another one
            other = start_server(tmp / "data-ours", workers=2)
            try:
                elapsed, summary = timed_import(other.data, "--index-url", f"{live.url}/default/", "--username",
                                                live.admin, "--password", live.token)
                results.append(("registry import --index-url (registry serve)", elapsed, summary))
            finally:
                other.stop()
        finally:
            live.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    for what, elapsed, summary in results:
        print(f"{what:<46} {elapsed:6.2f} s  {len(wheels) / elapsed:6.0f} files/s   {summary.split(' (')[0]}")
    print("(wall time of the whole command, process start included)")


if __name__ == "__main__":
    main()
