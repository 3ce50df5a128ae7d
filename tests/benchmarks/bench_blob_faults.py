"""How long a request waits on a bucket that stalls or dies, and a yank meanwhile (run by hand):

    python tests/benchmarks/bench_blob_faults.py [--rounds 3]

Starts a SeaweedFS and `registry serve --workers 2` on it (127.0.0.1), publishes a small and a
14 MiB wheel, then, each round: stops SeaweedFS (SIGSTOP) and fires at once a small upload, a big
upload, a download, a ranged download and a `.metadata` (never cached), while five yanks and a new
package are made one after another; then resumes it. Then the same with SeaweedFS killed (SIGKILL)
and started again. Prints, per kind of request, the statuses and the worst time to an answer, and
the yanks' times with no fault, during a stall and with the bucket dead (the bar, issue 22: under
10 s for a stalled dependency; writes that don't need it unaffected).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import start_server  # (puts the repository on sys.path)

from tests.adversarial.test_blob_faults import Client, wheels
from tests.support.seaweed import Seaweed

MIB = 2**20


def yanks(c: Client, version: str, n: int = 5) -> list[tuple[int, float]]:
    out = []
    for i in range(n):
        out.append(c.yank(version, undo=i % 2 == 1))
    if n % 2:
        c.yank(version, undo=True)
    return out


def fault_round(c: Client, tmp: Path, small: Path, big: Path, fault, heal) -> tuple[dict, list]:
    n = uuid.uuid4().hex[:4]
    fault()
    try:
        with ThreadPoolExecutor(8) as pool:
            stuck = {
                "small upload": pool.submit(c.upload, wheels(tmp, c.name, f"5.{int(n, 16)}", 4000)),
                "big upload": pool.submit(c.upload, wheels(tmp, c.name, f"6.{int(n, 16)}", 14 * MIB)),
                "download": pool.submit(lambda: _got(c.get(c.url(small)))),
                "range": pool.submit(lambda: _got(c.get(c.url(big), headers={"range": "bytes=5-10"}))),
                "metadata": pool.submit(lambda: _got(c.get(c.url(big) + ".metadata"))),
            }
            time.sleep(0.5)
            during = yanks(c, "1.0")
            created = c.create_package(f"{c.name}-{n}")
            answers = {what: future.result() for what, future in stuck.items()}
            answers["new package"] = (created[0], "", created[1])
    finally:
        heal()
    return answers, during


def _got(answer) -> tuple[int, str, float]:
    r, took = answer
    return r.status_code, r.text[:120], took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-blob-faults-"))
    bucket = Seaweed(tmp / "seaweed").start()
    live = start_server(tmp / "data", workers=2, env=bucket.env(), blobs=bucket.location())
    try:
        c = Client(live, f"bench{uuid.uuid4().hex[:6]}")
        small, big = wheels(tmp, c.name, "1.0", 4000), wheels(tmp, c.name, "1.1", 14 * MIB)
        assert c.upload(small)[0] == 200 and c.upload(big)[0] == 200
        quiet = [t for _ in range(args.rounds) for _, t in yanks(c, "1.0")]
        results: dict[str, dict[str, list]] = {"stalled": defaultdict(list), "dead": defaultdict(list)}
        during: dict[str, list[float]] = {"stalled": [], "dead": []}
        for _ in range(args.rounds):
            for fault, (hurt, heal) in {
                "stalled": (lambda: bucket.signal(signal.SIGSTOP), lambda: bucket.signal(signal.SIGCONT)),
                "dead": (bucket.kill, bucket.start),
            }.items():
                answers, yanked = fault_round(c, tmp, small, big, hurt, heal)
                for what, (status, _, took) in answers.items():
                    results[fault][what].append((status, took))
                during[fault] += [t for status, t in yanked if status == 200]
                assert all(status == 200 for status, _ in yanked), yanked
        for fault, kinds in results.items():
            print(f"bucket {fault}:")
            for what, seen in kinds.items():
                print(f"  {what:13} statuses {sorted({s for s, _ in seen})}, worst {max(t for _, t in seen):.2f}s")
        for name, times in (("no fault", quiet), ("stalled", during["stalled"]), ("dead", during["dead"])):
            print(f"yank, {name:8}: median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms "
                  f"({len(times)} yanks)")
    finally:
        live.stop()
        bucket.stop()


if __name__ == "__main__":
    main()
