"""Upstream indexes, measured (issue 24's bar): a 30-package closure installed through a workspace's
upstream, against the same client straight at the upstream (cold: nothing fetched yet; the bar is
1.5x) and against a static mirror of the same files served by nginx (warm: everything fetched and
recorded; the bar is 1.1x); the ledger's growth per first-fetched file; and the registry's memory
while 4 clients pull 500 MB of upstream files at once.

    python tests/benchmarks/bench_upstream.py [--rounds 5] [--big-mb 125] [--client uv|pip]

The upstream is another registry (2 workers: JSON pages, PEP 658 metadata, upload-time). nginx must
be installed (`apt-get install nginx`) for the static mirror; without it that comparison is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from _common import install as install_closure
from _common import make_wheel, publish_in_process, registry_cli, start_nginx, start_server, static_mirror, wheel_bytes

N = 30  # packages in the closure: 10 roots, each needing two of the 20 others


def requires(i: int) -> list[str]:
    return [f"up-pkg-{10 + i:02d}", f"up-pkg-{20 + i:02d}"] if i < 10 else []


def install(client: str, index: str, target: Path, home: Path) -> float:
    return install_closure(client, index, target, home, [f"up-pkg-{i:02d}" for i in range(10)], N)


def closure_files(out: Path) -> list[Path]:
    """Three versions of each of the 30 packages, wheels with their requirements."""
    import zipfile

    paths = []
    for i in range(N):
        name = f"up-pkg-{i:02d}"
        for v in ("1.0", "1.1", "2.0"):
            filename, data = wheel_bytes(name, v)
            path = out / filename
            path.write_bytes(data)
            if requires(i):  # (wheel_bytes makes none: add Requires-Dist to its METADATA)
                with zipfile.ZipFile(path) as zf:
                    members = {m: zf.read(m) for m in zf.namelist()}
                meta = next(m for m in members if m.endswith("/METADATA"))
                members[meta] += "".join(f"Requires-Dist: {r}\n" for r in requires(i)).encode()
                record = next(m for m in members if m.endswith("/RECORD"))
                import base64

                lines = [f"{m},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                         f"{len(d)}" for m, d in members.items() if m != record] + [f"{record},,"]
                members[record] = ("\n".join(lines) + "\n").encode()
                with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                    for m, d in members.items():
                        zf.writestr(m, d)
            paths.append(path)
    return paths


def with_auth(url: str, user: str, token: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{token}@{rest}"


def rss_sampler(pids: list[int], peak: dict[int, int], stop: threading.Event) -> None:
    while not stop.is_set():
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            anon = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("RssAnon:"))
            peak[pid] = max(peak.get(pid, 0), anon * 1024)
        time.sleep(0.05)


def workers_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *map(int, out)]


def ledger_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "ledger.git").rglob("*") if p.is_file())


def main() -> None:
    started: list = []  # servers and nginx, stopped however the run ends
    try:
        run(started)
    finally:
        for thing in started:
            (thing.stop if hasattr(thing, "stop") else thing.terminate)()


def run(started: list) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--client", choices=["uv", "pip"], default="uv")
    parser.add_argument("--big-mb", type=int, default=125, help="each of the 4 big files (4 x 125 MB = 500 MB)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    files = closure_files(tmp)
    static_mirror(tmp / "mirror", files)
    mirror_proc, mirror_url = start_nginx(tmp / "mirror")
    if mirror_proc is not None:
        started.append(mirror_proc)
        mirror_url += "/simple/"

    up = start_server(tmp / "up", workers=2, max_upload_bytes=str(2 * args.big_mb * 2**20))
    started.append(up)
    up.cli("repo", "create", "default/pkgs", "--project", "MAIN")
    for i in range(N):
        up.cli("package", "create", "default", f"up-pkg-{i:02d}", "--repo", "pkgs")
    for i in range(4):
        up.cli("package", "create", "default", f"big-{i}", "--repo", "pkgs")
    up.stop()  # (filled in-process: faster than any client)
    publish_in_process(up.data, up.admin, "default", files)
    up = start_server(tmp / "up", workers=2)
    started.append(up)
    token = registry_cli(up.data, "token", "create", up.admin, "--scope", "read")
    direct = with_auth(up.index(), up.admin, token)

    front = start_server(tmp / "front", workers=2)
    started.append(front)
    times: dict[str, list[float]] = {"direct": [], "cold": [], "warm": [], "mirror": []}
    grew: list[tuple[int, int]] = []
    for r in range(args.rounds):
        ws = f"round{r}"  # (a new workspace: nothing fetched, no page cached)
        front.cli("workspace", "create", ws)
        front.cli("project", "create", ws, "MAIN")
        front.cli("repo", "create", f"{ws}/app", "--project", "MAIN")
        front.cli("grant", ws, front.admin, "admin")  # (a member: upstream projects are read by members)
        front.cli("upstream", "add", ws, "up", up.index(), "--username", up.admin, "--password", token)
        index = with_auth(front.index(ws), front.admin, front.token)
        target, home = tmp / "site", tmp / "home"
        # each pair measured in turn, its order swapped every round: a machine that drifts (this one
        # slows down under sustained load) then weighs on both sides of each ratio alike
        if r % 2:
            times["direct"].append(install(args.client, direct, target, home))
        before = ledger_bytes(front.data)
        commits_before = int(subprocess.run(["git", "--git-dir", str(front.data / "ledger.git"), "rev-list",
                                             "--count", "main"], capture_output=True, text=True).stdout)
        times["cold"].append(install(args.client, index, target, home))
        time.sleep(1.0)  # (the records of the last files land after their bytes)
        commits = int(subprocess.run(["git", "--git-dir", str(front.data / "ledger.git"), "rev-list", "--count",
                                      "main"], capture_output=True, text=True).stdout) - commits_before
        grew.append((ledger_bytes(front.data) - before, commits))
        if not r % 2:
            times["direct"].append(install(args.client, direct, target, home))
        if mirror_url and r % 2:
            times["mirror"].append(install(args.client, mirror_url, target, home))
        times["warm"].append(install(args.client, index, target, home))
        if mirror_url and not r % 2:
            times["mirror"].append(install(args.client, mirror_url, target, home))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items() if v), flush=True)
    ratios_cold = [c / d for c, d in zip(times["cold"], times["direct"], strict=True)]
    ratios_warm = [w / m for w, m in zip(times["warm"], times["mirror"], strict=False)]

    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"\n{args.client}, {N}-package closure, medians of {args.rounds} rounds:")
    for k, v in med.items():
        print(f"  {k:7s} {v:.3f} s")
    print(f"  cold through the workspace / straight at the upstream: {med['cold'] / med['direct']:.2f}x of the "
          f"medians, {statistics.median(ratios_cold):.2f}x the median of the rounds' (bar 1.5)")
    if "mirror" in med:
        print(f"  warm through the workspace / static mirror (nginx):    {med['warm'] / med['mirror']:.2f}x of the "
              f"medians, {statistics.median(ratios_warm):.2f}x the median of the rounds' (bar 1.1)")
    per = [b / c for b, c in grew if c]
    print(f"  ledger growth per first-fetched file: {statistics.median(per):.0f} bytes on disk "
          f"({grew[0][1]} commits a round, before any repack)")

    # 4 clients pull 500 MB of upstream files at once
    big = [make_wheel(tmp, f"big-{i}", "1.0", payload=args.big_mb * 2**20, stored=True) for i in range(4)]
    up.stop()
    publish_in_process(up.data, up.admin, "default", big)
    up = start_server(tmp / "up", workers=2)
    started.append(up)
    ws = "bigpull"
    front.cli("workspace", "create", ws)
    front.cli("project", "create", ws, "MAIN")
    front.cli("repo", "create", f"{ws}/app", "--project", "MAIN")
    front.cli("grant", ws, front.admin, "admin")
    front.cli("upstream", "add", ws, "up", up.index(), "--username", up.admin, "--password", token)
    auth = (front.admin, front.token)
    for p in big:
        httpx.get(f"{front.index(ws)}{p.name.split('-')[0].replace('_', '-')}/", auth=auth, timeout=30)
    peak: dict[int, int] = {}
    stop = threading.Event()
    pids = workers_of(front.process.pid)
    sampler = threading.Thread(target=rss_sampler, args=(pids, peak, stop), daemon=True)
    idle = {}
    for pid in pids:
        text = Path(f"/proc/{pid}/status").read_text()
        idle[pid] = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("RssAnon:")) * 1024
    sampler.start()

    def pull(p: Path, out: list) -> None:
        name = p.name.split("-")[0].replace("_", "-")
        digest, size = hashlib.sha256(), 0
        with httpx.stream("GET", f"{front.index(ws)}{name}/1.0/{p.name}", auth=auth, timeout=120) as answer:
            for chunk in answer.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
        out.append((digest.hexdigest() == hashlib.sha256(p.read_bytes()).hexdigest(), size))

    results: list = []
    started = time.perf_counter()
    threads = [threading.Thread(target=pull, args=(p, results)) for p in big]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    stop.set()
    sampler.join()
    total = sum(s for _, s in results)
    print(f"\n4 clients pulled {total / 2**20:.0f} MB of upstream files at once in {took:.1f} s "
          f"({total / 2**20 / took:.0f} MB/s), all whole: {all(ok for ok, _ in results)}")
    for pid in pids:
        print(f"  pid {pid}: anonymous RSS idle {idle[pid] / 2**20:.0f} MiB, peak {peak.get(pid, 0) / 2**20:.0f} MiB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
