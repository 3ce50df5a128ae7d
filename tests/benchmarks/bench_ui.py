"""The web UI's server-side render times at scale (run by hand):

    python tests/benchmarks/bench_ui.py [--packages 5000] [--versions 500] [--data DIR]

Fills a registry in-process (--packages packages in one workspace, one wheel each, and one package
with --versions versions), then renders every page through the app as served (the front door, a
signed-in session) with Litestar's test client, once the server has warmed its caches (as it does
at start): the first request and the median of the next twenty. The bar: every page under 50 ms
median. `--data DIR` keeps the filled data directory and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, make_wheel  # noqa: E402,F401
from litestar.testing import TestClient  # noqa: E402

from registry import dists, identity, operations  # noqa: E402
from registry.config import Settings  # noqa: E402
from registry.datadir import Registry
from registry.reads import records
from registry.web.app import create_asgi  # noqa: E402
from registry.web.ui.session import SESSION_COOKIE, Keys, Session  # noqa: E402

WS, BIG = "bench", "big-one"


def publish(reg: Registry, who, path: Path) -> None:
    with reg.blobs.stage() as staged:
        staged.write(path.read_bytes())
        staged.finish()
        with staged.open() as content:
            dist = dists.inspect(content, path.name)
        operations.publish_file(reg, who, "upload", WS, dist, staged)


def fill(reg: Registry, packages: int, versions: int, scratch: Path) -> None:
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", WS, "Bench")
    operations.create_project(reg, op, "cli", WS, "CORE", "Core")
    for repo in ("libs", "apps"):
        operations.create_repository(reg, op, "cli", WS, repo, "CORE")
    operations.create_user(reg, op, "cli", "dev@bench.test", "Dev")
    operations.grant(reg, op, "cli", WS, "dev@bench.test", "admin")
    _, token = operations.create_token(reg, op, "cli", "dev@bench.test", "write", label="bench")
    started = time.perf_counter()
    for n in range(packages):
        name = f"pkg-{n:05d}"
        operations.create_package(reg, op, "cli", WS, name, "libs" if n % 2 else "apps")
        publish(reg, op, make_wheel(scratch, name, "1.0", payload=64))
        if n % 500 == 499:
            print(f"  {n + 1} packages ({time.perf_counter() - started:.0f} s)", flush=True)
    operations.create_package(reg, op, "cli", WS, BIG, "libs")
    for v in range(versions):
        publish(reg, op, make_wheel(scratch, BIG, f"1.{v}", payload=64))
    print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--packages", type=int, default=5000)
    args.add_argument("--versions", type=int, default=500)
    args.add_argument("--data", type=Path)
    opts = args.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    data = opts.data or Path(tempfile.mkdtemp(prefix="bench-ui-")) / "data"
    settings = Settings(data=str(data))
    fresh = not (data / "ledger.git").exists()
    reg = Registry.open(settings, create=True)
    if fresh:
        fill(reg, opts.packages, opts.versions, Path(tempfile.mkdtemp(prefix="bench-ui-wheels-")))
    who = identity.operator()  # (the session below is a workspace admin's: it sees everything)
    token = next(t for t in records.list_tokens(reg.snapshot(), "dev@bench.test") if t.label == "bench")
    signed_in = identity.Principal(kind="user", email="dev@bench.test", scope=token.scope, token_id=token.id)
    started = operations.start_session(reg, signed_in)
    cookie = Session("dev@bench.test", started.session.id, "bench-session-id", time.time() + 3600,
                     started.commit).cookie(
        Keys.of_primary(settings))
    middle = f"1.{opts.versions // 2}"
    commit = reg.history.package(WS, BIG, middle, limit=1)[0].id
    pages = {
        "home": "/-/",
        "workspace packages": f"/-/{WS}/",
        "  page 50": f"/-/{WS}/?page=50",
        "  search": f"/-/{WS}/?q=pkg-012",
        "  by last published": f"/-/{WS}/?sort=published",
        "project packages": f"/-/{WS}/projects/CORE/",
        "repository packages": f"/-/{WS}/repos/libs/",
        f"package ({opts.versions} versions)": f"/-/{WS}/packages/{BIG}/",
        "  its last page": f"/-/{WS}/packages/{BIG}/?page=5",
        "version": f"/-/{WS}/packages/{BIG}/{middle}/",
        "package history": f"/-/{WS}/packages/{BIG}/history",
        "version history": f"/-/{WS}/packages/{BIG}/{middle}/history",
        "workspace history": f"/-/{WS}/history",
        "  a page far back": f"/-/{WS}/history?before={reg.history.commit_at(max(2, reg.history.serial() // 20))}",
        "repository history": f"/-/{WS}/repos/libs/history",
        "commit": f"/-/{WS}/commits/{commit}",
        "create package": f"/-/{WS}/new",
        f"confirm delete ({opts.versions} versions)": f"/-/{WS}/packages/{BIG}/delete",
        "confirm yank": f"/-/{WS}/packages/{BIG}/{middle}/yank",
        "your tokens": "/-/_/tokens",
        "missing package (404 page)": f"/-/{WS}/packages/nothing-here/",
    }
    app = create_asgi(settings, reg)
    worst = 0.0
    with TestClient(app=app) as client:
        started = time.perf_counter()
        for thread in threading.enumerate():  # the server warms its caches at start, off the request path
            if thread.name in ("warm-lists", "history-catch-up"):
                thread.join()
        print(f"warm-up at start (package lists, UI summaries, history index): {time.perf_counter() - started:.1f} s")
        client.cookies.set(SESSION_COOKIE, cookie, path="/-")
        client.cookies.set("registry_visitor", "bench-visitor-0000", path="/-")
        print(f"{'page':<34} {'first':>9} {'median':>9}   (ms, server-side through the ASGI app)")
        for label, path in pages.items():
            times = []
            for _ in range(21):
                t = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code in (200, 404), (path, r.status_code, r.text[:300])
            median = statistics.median(times[1:])
            worst = max(worst, median)
            print(f"{label:<34} {times[0]:>9.1f} {median:>9.1f}", flush=True)
        publish(reg, who, make_wheel(Path(tempfile.mkdtemp()), "pkg-00001", f"9.{int(time.time())}", payload=64))
        t = time.perf_counter()
        client.get(f"/-/{WS}/")
        print(f"{'workspace packages after a publish':<34} {(time.perf_counter() - t) * 1000:>9.1f}")
    print(f"slowest median: {worst:.1f} ms ({'under' if worst < 50 else 'OVER'} the 50 ms bar); data in {data}")
    return 0 if worst < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
