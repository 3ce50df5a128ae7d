"""Instructions a request costs the app, counted by valgrind (callgrind): a figure that other load on
the machine doesn't move, for changes too small for requests/s to see (a few percent).

`python tests/benchmarks/instructions.py DATA SETTING=VALUE[,SETTING=VALUE] ...` runs the app as
served (`create_asgi`) in one process, in-process requests to the authenticated 200-file JSON
project page of DATA (made by `_common.index_with_and_without`), once for each group of settings,
under callgrind at two request counts, and prints the instructions per request: the difference of
the two counts over the difference of requests (the start, imports and the first requests cancel).
The access log is off in every group (it writes to the terminal here, not what is measured)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FEW, MANY = 300, 1300
ACCEPT = "application/vnd.pypi.simple.v1+json"

# (run in the measured process: the app as served, and `count` requests to it)
CHILD = """
import sys, tempfile, anyio
from pathlib import Path
sys.path.insert(0, {root!r})
from registry import metrics
from registry.config import Settings
from registry.web.app import create_asgi
from tests.support.asgi import call
metrics.use_directory(Path(tempfile.mkdtemp()), fresh=True)  # (counts in files, as a served worker's)
app = create_asgi(Settings(data={data!r}, access_log="off", **{settings!r}))
headers = [("Authorization", {auth!r}), ("Accept", {accept!r})]
async def main():
    await call(app, "GET", "/default/bench-pkg/", headers)
    metrics.flush()  # (the first flush makes the counts' files: once a worker, not a cost a request)
    for n in range({count}):
        answer = await call(app, "GET", "/default/bench-pkg/", headers)
        assert answer.status == 200, answer.status
        if n % 1000 == 999:  # (a served worker flushes every second: some thousands of these)
            metrics.flush()
    metrics.flush()
anyio.run(main)
"""


def instructions(data: Path, auth: str, settings: dict[str, str], count: int) -> int:
    root = str(Path(__file__).resolve().parents[2])
    code = CHILD.format(root=root, data=str(data), settings=settings, auth=auth, accept=ACCEPT, count=count)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"}).stderr  # (the same dicts' layouts each run)
    return int(re.search(r"Collected : (\d+)", out).group(1))  # type: ignore[union-attr]


_warmed: set[Path] = set()


def per_request(data: Path, auth: str, settings: dict[str, str]) -> float:
    if data not in _warmed:  # (the first app on a data directory may do one-off work there: its history index)
        _warmed.add(data)
        instructions(data, auth, settings, FEW)
    return (instructions(data, auth, settings, MANY) - instructions(data, auth, settings, FEW)) / (MANY - FEW)


def main() -> None:
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    from _common import basic

    data, user, token, *groups = sys.argv[1:]
    auth = basic(user, token)
    for group in groups:
        settings = dict(pair.split("=", 1) for pair in group.split(","))
        print(f"{group}: {per_request(Path(data), auth, settings):,.0f} instructions a request", flush=True)


if __name__ == "__main__":
    main()
