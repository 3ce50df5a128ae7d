"""Is a change to the index's hot path measurable at all? (run by hand)

    python tests/benchmarks/bench_pairs.py --before-code DIR [--pairs 16] [--seconds 4] [--html]
        [--metadata | --file] [--fresh]

The registry's code and another commit's (DIR: `git worktree add DIR REV`), each `registry serve
--workers 1` on its own copy of one data directory (an authenticated 200-file project page), both
up at once and measured in turn, the order swapped every pair: `wrk -t1 -c8` on the repeat request
for SECONDS, and the worker's CPU per request (from /proc: it moves much less than requests/s when
something else runs). Prints each pair, then the median of the per-pair ratios (this code / DIR's)
with their spread. On this project's 2-core machine, two servers of the very same code differ by up to
8% in one pair; bench_limits.py's 3 rounds can't see a change smaller than that, this median of 16 can
say whether there is one.

--metadata: a wheel's `.metadata` (PEP 658) instead of the project page; --file: the wheel itself.
--fresh: every request carries an X-Request-Id of its own (a wrk Lua script), so none is answered
from memory as a repeat (repeats.py): the way a client the worker hasn't seen yet is answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx
from _common import PIP_ACCEPT, basic, project_files, publish_in_process, registry_cli, start_server

TICK = os.sysconf("SC_CLK_TCK")  # (/proc counts CPU time in these)


def worker_cpu(pid: int) -> float:
    """CPU seconds (user and system) of ``pid``'s one child: granian's only worker."""
    child = next(c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split())
    fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


# each request an X-Request-Id of its own (wrk.format's headers replace wrk.headers: copied first)
FRESH = """
local n = 0
request = function()
  n = n + 1
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Request-Id"] = "bench-" .. n
  return wrk.format(nil, nil, headers)
end
"""


def measure(live, url: str, headers: dict[str, str], seconds: int, script: Path | None = None) -> tuple[float, float]:
    """(the worker's CPU µs a request, requests/s) under `wrk -t1 -c8`."""
    before = worker_cpu(live.process.pid)
    args = ["wrk", "-t1", "-c8", f"-d{seconds}s"] + [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    args += ["-s", str(script)] if script is not None else []
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    used = worker_cpu(live.process.pid) - before
    done = int(re.search(r"(\d+) requests in", out).group(1))
    assert "Non-2xx" not in out, out
    return 1e6 * used / max(done, 1), done / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before-code", required=True, help="DIR: a checkout of the commit to compare with")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--html", action="store_true", help="the HTML page (default: JSON, as pip and uv ask)")
    parser.add_argument("--metadata", action="store_true", help="a wheel's .metadata, not the project page")
    parser.add_argument("--file", action="store_true", help="a wheel itself, not the project page")
    parser.add_argument("--fresh", action="store_true", help="no request the same as another (none a repeat)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    files = tmp / "files"
    files.mkdir()
    built = project_files(files)
    live = start_server(tmp / "data", workers=1)
    registry_cli(live.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
    publish_in_process(live.data, live.admin, "default", built)
    headers = {"Authorization": basic(live.admin, live.token), "Accept": "text/html" if args.html else PIP_ACCEPT}
    target = "/default/bench-pkg/"
    if args.metadata or args.file:  # (the first wheel the page lists, by its link: relative to the page)
        page = json.loads(httpx.get(f"{live.url}{target}", headers=headers).content)
        target += next(f["url"] for f in page["files"] if f["filename"].endswith(".whl"))
        target += ".metadata" if args.metadata else ""
    script = None
    if args.fresh:
        script = tmp / "fresh.lua"
        script.write_text(FRESH)
    live.stop()
    shutil.copytree(live.data, tmp / "data-before")
    servers = {"this code": start_server(live.data, workers=1),
               "before": start_server(tmp / "data-before", workers=1,
                                      env={"PYTHONPATH": str(Path(args.before_code).resolve())})}
    try:
        for server in servers.values():  # (warm: the first request answered, then kept)
            measure(server, f"{server.url}{target}", headers, 1, script)
        figures: dict[str, list[float]] = {name: [] for name in servers}
        ratios = []
        for n in range(args.pairs):
            order = list(servers) if n % 2 == 0 else list(reversed(servers))
            got = {name: measure(servers[name], f"{servers[name].url}{target}", headers, args.seconds, script)
                   for name in order}
            for name in servers:
                figures[name].append(got[name][0])
            ratios.append(got["this code"][0] / got["before"][0])
            print(f"pair {n + 1}: " + "  ".join(f"{name} {us:.1f} µs ({rps:,.0f}/s)" for name, (us, rps) in got.items())
                  + f"  ratio {ratios[-1]:.3f}", flush=True)
        print(f"\nthe worker's CPU a {'fresh' if args.fresh else 'repeat'} request ({target}), medians of "
              f"{args.pairs} pairs: "
              + ", ".join(f"{name} {statistics.median(v):.1f} µs" for name, v in figures.items()))
        print(f"this code / before, by pair: median {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
