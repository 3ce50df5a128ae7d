"""Ledger benchmark (run by hand): python tests/benchmarks/bench_ledger.py [--versions 100000]

Measures, on this machine:
  1. the cost of one publish (blob adoption + version record + commit + fsync + history index),
     i.e. commits per second for a single writer with fsync, with 100 versions in the ledger and
     with --versions (default 100,000), measured in interleaved batches so that load on the
     machine weighs on both alike: the bar is that the second is within 1.5x of the first;
  2. the history of one package on a ledger of that many commits (the bar: under 100 ms);
  3. what signing adds to a commit: the signer alone, on the big ledger's last commit (the bar: a
     fraction of a millisecond).

The big ledger is filled with one publish-like commit per version (fsync off while filling, then on
again for every measured commit), repacked as the server would.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pygit2  # noqa: E402
from _common import fill_versions  # noqa: E402

from registry import datadir, identity, operations  # noqa: E402
from registry.config import Settings  # noqa: E402
from registry.dists import DistInfo  # noqa: E402
from registry.reads import records

WS, REPO = "bench", "repo"
PACKAGES = 1000


def setup(data: Path) -> datadir.Registry:
    reg = datadir.Registry.open(Settings(data=str(data)), create=True)
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", WS)
    operations.create_project(reg, op, "cli", WS, "P")
    operations.create_repository(reg, op, "cli", WS, REPO, "P")
    return reg


def fill(reg: datadir.Registry, versions: int) -> None:
    """One commit per version, spread over PACKAGES packages, without fsync (setup only)."""
    pygit2.settings.enable_fsync_gitdir(False)
    op = identity.operator()
    for p in range(min(PACKAGES, versions)):
        operations.create_package(reg, op, "cli", WS, f"pkg-{p}", REPO)
    fill_versions(reg, WS, versions, PACKAGES)
    pygit2.settings.enable_fsync_gitdir(True)


def publish_times(reg: datadir.Registry, count: int, tag: str) -> list[float]:
    """Real publish_file calls (blob adoption, version record, commit, fsync, history index)."""
    who = identity.operator("dev@example.com")
    name = "measured"
    if records.get_package(reg.snapshot(), WS, name) is None:
        operations.create_package(reg, identity.operator(), "cli", WS, name, REPO)
    times = []
    for i in range(count):
        version = f"{tag}.{i}"
        metadata = f"Metadata-Version: 2.1\nName: measured\nVersion: {version}\n".encode()
        dist = DistInfo(filename=f"measured-{version}-py3-none-any.whl", packagetype="bdist_wheel", name=name,
                        version=version, python_version="py3", requires_python=None, metadata_version="2.1",
                        summary="", metadata=metadata)
        with reg.blobs.stage() as staged:
            staged.write(os.urandom(2048))
            staged.finish()
            started = time.perf_counter()
            operations.publish_file(reg, who, "upload", WS, dist, staged)
            times.append(time.perf_counter() - started)
    return times


def signing_cost(reg: datadir.Registry, rounds: int = 2000) -> None:
    """The signer alone (find the key its parent names, SSHSIG-sign the commit's text), as `_commit` calls it."""
    signer = getattr(reg.ledger, "signer", None)
    if signer is None:
        print("signing: commits are not signed")
        return
    repo = reg.ledger.repo()
    head = repo[reg.ledger.head()]
    content = head.gpg_signature[1] or head.read_raw()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        signer(repo, head.parents[0], head.tree.id, content)
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"signing one commit (the signer alone, {len(content)} bytes): "
          f"median {statistics.median(times) * 1e6:.0f} us, "
          f"p95 {times[int(len(times) * 0.95)] * 1e6:.0f} us (bar: a fraction of a millisecond)")


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    p95 = sorted(times)[int(len(times) * 0.95)]
    print(f"{label}: median {median * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms, "
          f"{1 / statistics.mean(times):.0f} commits/s")
    return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        small = setup(Path(tmp) / "small")
        fill(small, 100)
        print(f"filling a ledger with {args.versions} versions (one commit each)...", flush=True)
        big = setup(Path(tmp) / "big")
        started = time.perf_counter()
        fill(big, args.versions)
        print(f"  filled in {time.perf_counter() - started:.0f} s")

        publish_times(small, 20, "1")  # warm up both
        publish_times(big, 20, "1")
        # Interleave small batches so that whatever else the machine does weighs on both alike.
        on_small, on_big = [], []
        for batch in range(args.samples // 10):
            on_small += publish_times(small, 10, f"2.{batch}")
            on_big += publish_times(big, 10, f"2.{batch}")
        base = report("publish, 100 versions in the ledger          ", on_small)
        large = report(f"publish, {args.versions} versions in the ledger", on_big)
        print(f"ratio: {large / base:.2f}x (bar: within 1.5x)")
        signing_cost(big)

        commits = sum(1 for _ in big.ledger.walk())
        history = big.history
        big.catch_up_history()
        runs = []
        for p in range(50):
            started = time.perf_counter()
            events = history.package(WS, f"pkg-{p * 17 % PACKAGES}")
            runs.append(time.perf_counter() - started)
        print(f"history of one package ({len(events)} events) on a ledger of {commits} commits: "
              f"median {statistics.median(runs) * 1000:.2f} ms, max {max(runs) * 1000:.2f} ms (bar: under 100 ms)")
        index = history.path
        history.close()
        for suffix in ("", "-wal", "-shm"):
            (index.parent / (index.name + suffix)).unlink(missing_ok=True)
        started = time.perf_counter()
        big.catch_up_history()
        print(f"rebuilding the history index from git: {time.perf_counter() - started:.1f} s")
        size = sum(f.stat().st_size for f in big.ledger.path.rglob("*") if f.is_file())
        print(f"ledger size on disk after repack: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
