"""How close the registry is to what the machine allows (issue 28), everything side by side in one
run, each pair measured in turn with its order swapped every round:

- index: an authenticated 200-file project page (JSON and HTML) under `wrk -t2 -c32`, from the
  registry (2 workers), from nginx serving the same bytes as a static file (2 workers), and from
  bare granian (2 workers) answering the same bytes from memory with no routing and no auth, through
  ASGI and through RSGI. Bars: >= 80% of nginx, >= 90% of bare granian (ASGI).
- install: a cold `uv pip install` (and pip) of a 20-package closure, 3 versions each, wheels and
  sdists, from the registry (authenticated) and from nginx serving a static PEP 503 mirror of the
  same files with PEP 658 `.metadata` beside the wheels. Bar: uv <= 1.1x.
- upload: 400 small wheels in one `twine upload` to the registry (each a durable commit), to a
  granian server that reads each body and throws it away (bar: <= 1.5x), and to one that appends
  each body to a file and fdatasyncs it before answering: what one durable acknowledgement costs
  on this disk, the least any registry that keeps its word under a power cut pays.

    python tests/benchmarks/bench_limits.py [--only index,install,upload] [--rounds 3] [--seconds 10]
        [--before SETTING=VALUE,...]   (the index also from the registry with those settings: e.g.
                                        cache_repeats_bytes=0 answers as before repeats.py)
        [--before-code DIR]            (the index, installs and uploads also from the registry's code in
                                        DIR, a checkout of another commit: git worktree add DIR REV)
        [--fresh]                      (installs: each round with a new token, as each pipeline run
                                        has: a commit, so nothing is answered from memory)

The index is also served by bare granian sending the registry's own headers with the same body
("bare granian ASGI, its headers"): what is left between that and the registry is Python's part.
"bare granian RSGI, its headers" does, through granian's own interface, the least the registry's
answer from memory must: it reads every request header into a key and sends the registry's headers.

BENCH_KEEP=1 keeps the run's directory (the servers' logs among it). nginx must be installed
(apt-get install nginx). The registry's workers' CPU per request is printed too: it moves much
less than requests/s when something else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
from _common import (
    PIP_ACCEPT,
    basic,
    free_port,
    install,
    make_sdist,
    make_wheel,
    publish_in_process,
    registry_cli,
    start_nginx,
    start_server,
    static_mirror,
    wrk,
    wrk_cpu,
)
from bench_upload import twine

HERE = Path(__file__).resolve().parent
ACCEPT = {"json": PIP_ACCEPT, "html": "text/html"}
PACKAGES = 20  # in the closure: 5 roots, each needing 3 of the 15 others


def start_granian(target: str, pages: Path, interface: str = "asgi") -> tuple[subprocess.Popen, str]:
    """granian, 2 workers and the event loop as the registry runs (registry/server.py), serving
    ``target`` of bare_apps.py."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "granian"), "--interface", interface, "--workers", "2",
                             "--loop", "uvloop",
                             "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(HERE),
                             "--log-level", "warning", f"bare_apps:{target}"],
                            env={**os.environ, "BARE_DIR": str(pages)}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/page.json", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"granian did not start bare_apps:{target}")


def median_line(label: str, values: list[float], unit: str) -> str:
    return f"  {label:32s} {statistics.median(values):>10,.3f} {unit}  (min {min(values):,.3f}, max {max(values):,.3f})"


def ratio(ours: list[float], theirs: list[float], form: str = ".0%", unit: str = "") -> str:
    """Ours over theirs: the ratio of the medians, then each round's own ratio (the two measured in
    the same round: less moved by the machine's drift from round to round), their median and range."""
    each = [a / b for a, b in zip(ours, theirs, strict=True)]
    return (f"{statistics.median(ours) / statistics.median(theirs):{form}}{unit} (by round: median "
            f"{statistics.median(each):{form}}{unit}, {min(each):{form}}{unit} to {max(each):{form}}{unit})")


def before_env(code: str) -> dict[str, str]:
    """The environment that runs the registry's code from ``code`` (a checkout of another commit)
    rather than this one's: its directory first on the path, ahead of the editable install."""
    return {"PYTHONPATH": str(Path(code).resolve())} if code else {}


def index(tmp: Path, rounds: int, seconds: int, started: list, before: dict[str, str], code: str) -> None:
    files = tmp / "files"
    files.mkdir()
    built = []
    for i in range(100):  # 100 versions x (wheel + sdist) = 200 files
        built += [make_wheel(files, "bench-pkg", f"1.{i}.0"), make_sdist(files, "bench-pkg", f"1.{i}.0")]
    live = start_server(tmp / "index-data", workers=2)
    registry_cli(live.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
    publish_in_process(live.data, live.admin, "default", built)
    auth = basic(live.admin, live.token)
    live.stop()
    servers = {}
    if before or code:  # (the registry with other settings or code, on a copy of its data: side by side)
        shutil.copytree(live.data, tmp / "index-data-before")
        servers["registry before"] = start_server(tmp / "index-data-before", workers=2, env=before_env(code),
                                                  **before)
    servers["registry"] = live = start_server(live.data, workers=2)
    started.extend(servers.values())
    pages = tmp / "pages"
    pages.mkdir()
    for kind, accept in ACCEPT.items():  # the very bytes the registry answers, for the others to serve
        answer = httpx.get(f"{live.url}/default/bench-pkg/", headers={"Authorization": auth, "Accept": accept})
        assert answer.status_code == 200, answer.text
        (pages / f"page.{kind}").write_bytes(answer.content)
        # (and its headers, for the bare server that sends them too; granian adds its own date and server)
        sent = [[k.decode(), v.decode()] for k, v in answer.headers.raw if k.lower() not in (b"date", b"server")]
        (pages / f"headers.{kind}.json").write_text(json.dumps(sent))
    nginx, nginx_url = start_nginx(pages)
    if nginx is None:
        raise SystemExit("nginx is not installed: apt-get install nginx")
    started.append(nginx)
    bare, bare_url = start_granian("asgi", pages)
    started.append(bare)
    rsgi, rsgi_url = start_granian("rsgi", pages, interface="rsgi")
    started.append(rsgi)
    same, same_url = start_granian("asgi_its_headers", pages)
    started.append(same)
    rsgi_same, rsgi_same_url = start_granian("rsgi_its_headers", pages, interface="rsgi")
    started.append(rsgi_same)
    granians = {**servers, "bare granian ASGI": SimpleNamespace(process=bare),
                "bare granian RSGI": SimpleNamespace(process=rsgi),
                "bare granian ASGI, its headers": SimpleNamespace(process=same),
                "bare granian RSGI, its headers": SimpleNamespace(process=rsgi_same)}
    figures: dict[tuple[str, str], list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for r in range(rounds):
        for kind, accept in ACCEPT.items():
            targets = [(name, f"{server.url}/default/bench-pkg/", {"Authorization": auth, "Accept": accept})
                       for name, server in servers.items()]
            targets += [("nginx static", f"{nginx_url}/page.{kind}", {"Authorization": auth, "Accept": accept}),
                       ("bare granian ASGI", f"{bare_url}/page.{kind}", {"Authorization": auth, "Accept": accept}),
                       ("bare granian RSGI", f"{rsgi_url}/page.{kind}", {"Authorization": auth, "Accept": accept}),
                       ("bare granian ASGI, its headers", f"{same_url}/page.{kind}",
                        {"Authorization": auth, "Accept": accept}),
                       ("bare granian RSGI, its headers", f"{rsgi_same_url}/page.{kind}",
                        {"Authorization": auth, "Accept": accept})]
            for name, url, headers in targets if r % 2 == 0 else reversed(targets):
                wrk(url, headers, seconds=1)  # warm up
                if name in granians:  # (a granian: its workers' CPU too)
                    rps, used, errors = wrk_cpu(granians[name], url, headers, seconds=seconds)
                    cpu.setdefault((name, kind), []).append(used)
                else:
                    rps, errors = wrk(url, headers, seconds=seconds)
                assert not errors, f"{name} {kind}: {errors}"
                figures.setdefault((name, kind), []).append(rps)
                print(f"round {r + 1} {kind}: {name} {rps:,.0f} requests/s", flush=True)
    print(f"\nindex, a 200-file project page ({len((pages / 'page.json').read_bytes()):,} bytes JSON, "
          f"{len((pages / 'page.html').read_bytes()):,} HTML), medians of {rounds} rounds of {seconds} s:")
    for kind in ACCEPT:
        runs = {name: figures[(name, k)] for name, k in figures if k == kind}
        for name in runs:
            print(median_line(f"{kind.upper()} {name}", runs[name], "requests/s"))
        bars = {"nginx static": " (bar 80%)", "bare granian ASGI": " (bar 90%)"}
        for ours in [name for name in runs if name.startswith("registry")]:
            for theirs in ("nginx static", "bare granian ASGI", "bare granian ASGI, its headers", "bare granian RSGI",
                           "bare granian RSGI, its headers"):
                print(f"  {kind.upper()} {ours} / {theirs}: {ratio(runs[ours], runs[theirs])}{bars.get(theirs, '')}")
        for name in granians:
            print(f"  {kind.upper()} {name}: its workers' CPU {statistics.median(cpu[(name, kind)]):.1f} µs a request")


def closure(out: Path) -> list[Path]:
    """``PACKAGES`` packages, 3 versions each, a wheel and an sdist of each version; lim-pkg-00..04
    each need three of the others (any version)."""
    paths = []
    for i in range(PACKAGES):
        name = f"lim-pkg-{i:02d}"
        requires = tuple(f"lim-pkg-{5 + 3 * i + k:02d}" for k in range(3)) if i < 5 else ()
        for v in ("1.0", "1.1", "2.0"):
            paths += [make_wheel(out, name, v, requires=requires), make_sdist(out, name, v)]
    return paths


def installs(tmp: Path, rounds: int, clients: list[str], started: list, code: str, fresh: bool = False) -> None:
    files = tmp / "closure"
    files.mkdir()
    paths = closure(files)
    static_mirror(tmp / "mirror", paths)
    nginx, nginx_url = start_nginx(tmp / "mirror")
    if nginx is None:
        raise SystemExit("nginx is not installed: apt-get install nginx")
    started.append(nginx)
    live = start_server(tmp / "install-data", workers=2)
    started.append(live)
    for i in range(PACKAGES):
        registry_cli(live.data, "package", "create", "default", f"lim-pkg-{i:02d}", "--repo", "packages")
    publish_in_process(live.data, live.admin, "default", paths)
    registries = {"registry": live}
    if code:  # (the registry's code of another commit, on a copy of its data: side by side)
        live.stop()  # (copied at rest, then started again)
        shutil.copytree(live.data, tmp / "install-data-before")
        registries = {"registry": start_server(live.data, workers=2),
                      "registry before": start_server(tmp / "install-data-before", workers=2, env=before_env(code))}
        started.extend(registries.values())
    indexes = {}

    def index_url(label: str, token: str) -> str:
        scheme, rest = registries[label].index().split("://", 1)
        return f"{scheme}://{live.admin.replace('@', '%40')}:{token}@{rest}"

    for label in registries:  # (the first start's credentials: only a bootstrap prints a token)
        indexes[label] = index_url(label, live.token)
    roots = [f"lim-pkg-{i:02d}" for i in range(5)]
    target, home = tmp / "site", tmp / "home"
    for client in clients:
        pair = [*indexes.items(), ("static mirror", f"{nginx_url}/simple/")]
        times: dict[str, list[float]] = {name: [] for name, _ in pair}
        for url in indexes.values():  # (warm: the registry's first answers of each page)
            install(client, url, target, home, roots, PACKAGES)
        for r in range(rounds):
            if fresh:  # (a token made now, on each registry: a commit, so no answer of the round is a repeat)
                pair = [(label, index_url(label, registry_cli(registries[label].data, "token", "create", live.admin,
                                                              "--scope", "read")))
                        for label in indexes] + pair[len(indexes):]
            for name, url in pair if r % 2 == 0 else reversed(pair):
                times[name].append(install(client, url, target, home, roots, PACKAGES))
            print(f"round {r + 1} {client}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()), flush=True)
        print(f"\ncold `{client} install` of a {PACKAGES}-package closure, medians of {rounds} rounds:")
        for name, values in times.items():
            print(median_line(name, values, "s"))
        for label in indexes:
            print(f"  {label} / static mirror: {ratio(times[label], times['static mirror'], '.2f', 'x')}"
                  + (" (bar 1.1x)" if client == "uv" and label == "registry" else ""))


def uploads(tmp: Path, rounds: int, files: int, started: list, code: str) -> None:
    discard, discard_url = start_granian("discard", tmp)
    started.append(discard)
    durable, durable_url = start_granian("discard_durable", tmp)
    started.append(durable)
    live = start_server(tmp / "upload-data", workers=2)
    started.append(live)
    registries = {"registry": live}
    if code:
        registries["registry before"] = start_server(tmp / "upload-data-before", workers=2, env=before_env(code))
        started.append(registries["registry before"])
    times: dict[str, list[float]] = {name: [] for name in registries} | {"discard server": [],
                                                                          "durable discard server": []}
    for r in range(rounds):
        out = tmp / f"wheels-{r}"
        out.mkdir()
        name = f"lim-upload-{r}"
        wheels = [make_wheel(out, name, f"0.0.{i}") for i in range(files)]
        for server in registries.values():
            registry_cli(server.data, "package", "create", "default", name, "--repo", "packages")
        contenders = [(label, f"{server.url}/default/", server.admin, server.token)
                      for label, server in registries.items()]
        contenders += [("discard server", f"{discard_url}/", "nobody", "nothing"),
                       ("durable discard server", f"{durable_url}/", "nobody", "nothing")]
        for label, url, user, password in contenders if r % 2 == 0 else reversed(contenders):
            os.sync()  # (what the last round wrote reaches the disk now, not during this one)
            times[label].append(twine(url, user, password, wheels))
        for server in registries.values():
            log = registry_cli(server.data, "log", "default", name, "--limit", "0")
            assert log.count("\n    publish ") == files, "every upload is a commit"
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    print(f"\n{files} small wheels in one `twine upload`, medians of {rounds} rounds:")
    for label, values in times.items():
        print(median_line(label, values, "s"))
    print(f"  durable discard server / discard server: "
          f"{ratio(times['durable discard server'], times['discard server'], '.2f', 'x')}")
    for label in registries:
        print(f"  {label} / discard server: {ratio(times[label], times['discard server'], '.2f', 'x')}"
              + (" (bar 1.5x)" if label == "registry" else ""))
        print(f"  {label} / durable discard server: "
              f"{ratio(times[label], times['durable discard server'], '.2f', 'x')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="index,install,upload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument("--clients", default="uv,pip")
    parser.add_argument("--fresh", action="store_true",
                        help="installs: each round with a token made just before (as a pipeline's run has "
                             "credentials no worker has seen): nothing answered from memory")
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--before", default="", help="SETTING=VALUE[,...]: the index also from a registry with "
                                                     "these settings (REGISTRY_* without the prefix), side by side")
    parser.add_argument("--before-code", default="", help="DIR: the index, installs and uploads also from the "
                        "registry's code in DIR (a checkout of another commit), side by side")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    started: list = []
    parts = args.only.split(",")
    before = dict(pair.split("=", 1) for pair in args.before.split(",") if pair)
    phases = {"index": lambda: index(tmp, args.rounds, args.seconds, started, before, args.before_code),
              "install": lambda: installs(tmp, args.rounds, args.clients.split(","), started, args.before_code,
                                          args.fresh),
              "upload": lambda: uploads(tmp, args.rounds, args.files, started, args.before_code)}
    try:
        for name, phase in phases.items():
            if name in parts:
                phase()
                stop(started)  # (a phase's servers stopped before the next: idle, they still hold memory and threads)
    finally:
        stop(started)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


def stop(started: list) -> None:
    while started:
        thing = started.pop()
        (thing.stop if hasattr(thing, "stop") else thing.terminate)()


if __name__ == "__main__":
    main()
