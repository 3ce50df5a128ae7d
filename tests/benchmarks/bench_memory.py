"""A worker's memory against its stated ceiling (run by hand):

    python tests/benchmarks/bench_memory.py [--versions 100000] [--data DIR] [--mode walk|soak|both]
                                            [--publishes 2000 | --minutes 30] [--attack 1500] [--workers 2]

Fills a registry in-process (--packages packages in one public repository, --versions version
records spread over them, one commit each, as bench_ledger.py fills one), starts `registry serve`
with two workers (--workers), and samples each worker's resident memory (VmRSS) and anonymous memory (RssAnon,
what no file backs: the heap, the caches) from /proc every 0.2 s while:

- walk: a reader walks every page: the workspace index (JSON and HTML), every project page in both,
  the API's lists (every page of 50, a search), a sample of UI pages (a signed-in session), then one
  project page 300 times, then 1,500 anonymous GETs of the index with distinct 60 KB query strings;
- soak: --publishes real uploads over HTTP (a small wheel each), each followed by reads of what it
  changed (the index, the project page, the API's details, the UI's package page), the memory of
  each worker printed every 10% and whether it plateaus (the last third grows under 5%).

It prints each phase's peak per worker, and the overall peak against the ceiling the code states
(`registry.caches.ceiling()`: the idle worker measured here plus the sum of every cache's bound).
`--data DIR` keeps the filled data directory and reuses it on the next run, so two versions of the
code can read the same ledger (the soak adds to it: use a copy for a fair second run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pygit2  # noqa: E402
from _common import fill_versions, start_server, wheel_bytes  # noqa: E402

from registry import datadir, identity, operations  # noqa: E402
from registry.config import Settings  # noqa: E402
from registry.reads import records

WS, PROJECT, REPO, ADMIN = "default", "MAIN", "packages", "admin@localhost"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# --- filling -----------------------------------------------------------------------------------


def fill(data: Path, packages: int, versions: int) -> None:
    """One commit per version record, without fsync (setup only), then a full repack and the history index."""
    reg = datadir.Registry.open(Settings(data=str(data)), create=True)
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", WS, "Default workspace")
    operations.create_project(reg, op, "cli", WS, PROJECT, "Main")
    operations.create_repository(reg, op, "cli", WS, REPO, PROJECT, public=True)
    operations.create_user(reg, op, "cli", ADMIN, "Registry admin")
    operations.grant(reg, op, "cli", WS, ADMIN, "admin")
    token, _ = operations.create_token(reg, op, "cli", ADMIN, "write", label="bench")
    (data.parent / "bench-token").write_text(token)
    pygit2.settings.enable_fsync_gitdir(False)
    for p in range(packages):
        operations.create_package(reg, op, "cli", WS, f"pkg-{p}", REPO)
    fill_versions(reg, WS, versions, packages)
    reg.catch_up_history()
    reg.history.close()


def session_cookie(data: Path) -> str:
    from registry.web.ui.session import Keys, Session

    reg = datadir.Registry.open(Settings(data=str(data)))
    token = next(t for t in records.list_tokens(reg.snapshot(), ADMIN) if t.label == "bench")
    reg.history.close()
    return Session(ADMIN, token.id, "bench-session-id", time.time() + 86400,
                   "token").cookie(Keys.of_primary(Settings(data=str(data))))


# --- measuring ---------------------------------------------------------------------------------


def workers(parent: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["RssAnon"].split()[0])


class Sampler(threading.Thread):
    """Each worker's memory every 0.2 s; the peak of each per phase."""

    def __init__(self, parent: int) -> None:
        super().__init__(daemon=True)
        self.pids = workers(parent)
        self.phase = "idle"
        self.peaks: dict[str, dict[int, tuple[int, int]]] = {}
        self._done = threading.Event()

    def sample(self) -> dict[int, tuple[int, int]]:
        now = {}
        for pid in self.pids:
            try:
                now[pid] = memory(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            rss, anon = now[pid]
            old = self.peaks.setdefault(self.phase, {}).get(pid, (0, 0))
            self.peaks[self.phase][pid] = (max(old[0], rss), max(old[1], anon))
        return now

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.sample()

    def stop(self) -> None:
        self._done.set()
        self.join()

    def report(self, phase: str) -> None:
        self.sample()
        peaks = self.peaks.get(phase, {})
        print(f"  peak after {phase:<28} " + "   ".join(
            f"worker {n}: {rss / 1024:6.1f} MiB RSS, {anon / 1024:6.1f} MiB anon"
            for n, (rss, anon) in enumerate(peaks[p] for p in self.pids if p in peaks)), flush=True)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


# --- the reader --------------------------------------------------------------------------------


def walk(url: str, auth: tuple[str, str], cookie: str, packages: int, sampler: Sampler) -> None:
    def get_all(paths: list[tuple[str, dict]], who=auth, clients: int = 4) -> None:
        def run(chunk):
            with httpx.Client(base_url=url, auth=who, timeout=300) as c:
                for path, headers in chunk:
                    r = c.get(path, headers=headers)
                    assert r.status_code == 200, (path, r.status_code, r.text[:200])
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            list(pool.map(run, [paths[i::clients] for i in range(clients)]))

    json_, html = {"accept": "application/vnd.pypi.simple.v1+json"}, {"accept": "text/html"}
    phases = [
        ("workspace index", [(f"/{WS}/", json_), (f"/{WS}/", html), ("/", json_), ("/", html)]),
        ("every project page (JSON)", [(f"/{WS}/pkg-{p}/", json_) for p in range(packages)]),
        ("every project page (HTML)", [(f"/{WS}/pkg-{p}/", html) for p in range(packages)]),
        ("the API's lists", [(f"/api/workspaces/{WS}/packages?page={n}&per_page=50", {})
                             for n in range(1, packages // 50 + 2)]
         + [(f"/api/workspaces/{WS}/packages?q=pkg-{d}", {}) for d in range(10)]
         + [(f"/api/workspaces/{WS}/packages/pypi/pkg-{p}", {}) for p in range(0, packages, 10)]),
    ]
    for phase, paths in phases:
        sampler.phase = phase
        get_all(paths)
        sampler.report(phase)

    sampler.phase = "a sample of UI pages"
    step = max(1, packages // 50)
    ui = ([f"/-/{WS}/", f"/-/{WS}/?sort=published", f"/-/{WS}/projects/{PROJECT}/", f"/-/{WS}/repos/{REPO}/",
           f"/-/{WS}/history"] + [f"/-/{WS}/?page={n}" for n in range(1, 21)]
          + [f"/-/{WS}/packages/pkg-{p}/" for p in range(0, packages, step)]
          + [f"/-/{WS}/packages/pkg-{p}/history" for p in range(0, packages, step * 5)]
          + [f"/-/{WS}/packages/pkg-{p}/0.{p % 7}.0/" for p in range(0, packages, step)])
    with httpx.Client(base_url=url, timeout=300, cookies={"registry_session": cookie}) as c:
        for path in ui:
            r = c.get(path, headers={"accept": BROWSER})
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
    sampler.report(sampler.phase)

    sampler.phase = "one page 300 times"
    get_all([(f"/{WS}/pkg-{packages // 2}/", json_)] * 300)
    sampler.report(sampler.phase)


def attack(url: str, count: int, sampler: Sampler) -> None:
    """Anonymous GETs of one index page, each with a distinct 60 KB query string."""
    sampler.phase = f"{count} distinct 60 KB queries"

    def run(n):
        with httpx.Client(base_url=url, timeout=300) as c:
            for _ in range(n):
                r = c.get(f"/{WS}/?x={secrets.token_hex(30_000)}", headers={"accept": "text/html"})
                assert r.status_code in (200, 414, 431), r.status_code
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [count // 4 + (i < count % 4) for i in range(4)]))
    sampler.report(sampler.phase)


def soak(url: str, auth: tuple[str, str], cookie: str, publishes: int, sampler: Sampler, minutes: float = 0) -> bool:
    """Publishes with reads mixed in (``minutes``: as many as that long allows, sampled each minute);
    True if every worker's memory plateaus."""
    deadline = time.perf_counter() + minutes * 60 if minutes else None
    if deadline:
        publishes = 10**9
    sampler.phase = f"{minutes:g} minutes of publishes with reads" if minutes else f"{publishes} publishes with reads"
    stamp = int(time.time())
    series: list[dict[int, tuple[int, int]]] = []

    def one(c: httpx.Client, ui: httpx.Client, i: int) -> None:
        name = f"soak-{i % 50}"
        filename, data = wheel_bytes(name, f"{stamp}.{i}")
        fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": f"{stamp}.{i}",
                  "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
                  "sha256_digest": hashlib.sha256(data).hexdigest()}
        r = c.post(f"/{WS}/", data=fields, files={"content": (filename, data, "application/octet-stream")})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        for path, headers in ((f"/{WS}/", {"accept": "text/html"}), (f"/{WS}/{name}/", {}),
                              (f"/api/workspaces/{WS}/packages/pypi/{name}", {})):
            assert c.get(path, headers=headers).status_code == 200
        assert ui.get(f"/-/{WS}/packages/{name}/", headers={"accept": BROWSER}).status_code == 200

    with httpx.Client(base_url=url, auth=auth, timeout=300) as c:
        for n in range(50):
            r = c.post(f"/api/workspaces/{WS}/packages", json={"name": f"soak-{n}", "repository": REPO})
            assert r.status_code in (201, 409), r.text
    tenth = max(1, publishes // 10)
    started = time.perf_counter()
    last = [started]
    lock = threading.Lock()

    def due(i: int) -> bool:
        if deadline is None:
            return i % tenth == 0 and i > 0
        with lock:
            if time.perf_counter() - last[0] >= 60:
                last[0] = time.perf_counter()
                return True
        return False

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        def run(offset):
            with httpx.Client(base_url=url, auth=auth, timeout=300) as c, \
                    httpx.Client(base_url=url, timeout=300, cookies={"registry_session": cookie}) as ui:
                for i in range(offset, publishes, 2):
                    if deadline is not None and time.perf_counter() > deadline:
                        break
                    one(c, ui, i)
                    if due(i):
                        now = sampler.sample()
                        series.append(now)
                        print(f"  {i:6} publishes ({i / (time.perf_counter() - started):.0f}/s): " + "   ".join(
                            f"{mib(rss)} MiB RSS / {mib(anon)} anon" for rss, anon in now.values()), flush=True)
        list(pool.map(run, range(2)))
    series.append(sampler.sample())
    sampler.report(sampler.phase)
    third = max(1, len(series) // 3)
    flat = True
    for pid in sampler.pids:
        early = max(s[pid][1] for s in series[:len(series) - third] if pid in s)
        late = max(s[pid][1] for s in series[len(series) - third:] if pid in s)
        grew = (late - early) / early
        print(f"  worker {sampler.pids.index(pid)}: anonymous memory over the last third {mib(early)} -> "
              f"{mib(late)} MiB ({grew:+.1%}: {'plateau' if grew < 0.05 else 'STILL GROWING'})")
        flat = flat and grew < 0.05
    return flat


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--data", type=Path, help="keep (or reuse) the filled data directory here")
    parser.add_argument("--mode", choices=("walk", "soak", "both"), default="both")
    parser.add_argument("--publishes", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=0, help="soak this long instead of --publishes")
    parser.add_argument("--attack", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2,
                        help="1: one worker takes every request and the walk after start (the worst case, and "
                             "runs that compare: two split their connections differently each time)")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-memory-")) / "data"
    if not (data / "ledger.git").exists():
        print(f"filling: {args.versions} versions in {args.packages} packages, in-process", flush=True)
        started = time.perf_counter()
        fill(data, args.packages, args.versions)
        print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
    auth = (ADMIN, (data.parent / "bench-token").read_text())
    cookie = session_cookie(data)
    live = start_server(data, workers=args.workers)
    sampler = Sampler(live.process.pid)
    try:
        time.sleep(3)  # (the start-up warming of the lists runs in the background: let it finish)
        sampler.sample()
        sampler.report("idle")
        idle = max(anon for _, anon in sampler.peaks["idle"].values())
        sampler.start()
        flat = True
        if args.mode in ("walk", "both"):
            walk(live.url, auth, cookie, args.packages, sampler)
            attack(live.url, args.attack, sampler)
        if args.mode in ("soak", "both"):
            flat = soak(live.url, auth, cookie, args.publishes, sampler, args.minutes)
        sampler.stop()
        peak_rss = max(rss for phase in sampler.peaks.values() for rss, _ in phase.values())
        peak_anon = max(anon for phase in sampler.peaks.values() for _, anon in phase.values())
        try:
            from registry.cache import ceiling
        except ImportError:  # (code from before the ceiling was stated)
            print(f"peak: {mib(peak_rss)} MiB RSS, {mib(peak_anon)} MiB anonymous (idle: {mib(idle)} MiB anonymous); "
                  "this code states no ceiling")
            return 0
        stated = ceiling(Settings(data=str(data)))
        print(f"peak: {mib(peak_rss)} MiB RSS, {mib(peak_anon)} MiB anonymous (idle: {mib(idle)} MiB anonymous); "
              f"ceiling: {stated / 2**20:.1f} MiB -> {'held' if peak_rss <= stated / 1024 else 'EXCEEDED'}"
              f"{'' if flat else ' (and the soak did not plateau)'}")
        return 0 if peak_rss <= stated / 1024 and flat else 1
    finally:
        live.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
