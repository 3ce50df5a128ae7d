"""Webhook delivery lag: N publishes (default 1,000), one after another, in one process with the
server's own deliverer running; the lag of each is from its publish's acknowledgement to the
receiver's arrival. Prints p50/p99/max and that nothing was lost or reordered.

    PYTHONPATH=. .venv-test/bin/python tests/benchmarks/bench_webhooks.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from registry import identity, operations
from registry.config import Settings
from registry.datadir import Registry
from registry.webhooks.delivery import Deliverer
from tests.support.helpers import make_wheel
from tests.support.receiver import Receiver
from tests.support.world import publish


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver:
        root = Path(tmp)
        reg = Registry.open(Settings(data=str(root / "data"), webhooks_private=True), create=True)
        op = identity.operator()
        operations.create_workspace(reg, op, "cli", "acme", "Acme")
        operations.create_project(reg, op, "cli", "acme", "CORE", "Core")
        operations.create_repository(reg, op, "cli", "acme", "utils", "CORE")
        operations.create_package(reg, op, "cli", "acme", "bench", "utils")
        operations.add_webhook(reg, op, "cli", "acme", "bench", receiver.url, ["publish"])
        wheels = [make_wheel(root, "bench", f"1.{i}") for i in range(n)]
        deliverer = Deliverer(reg)
        deliverer.start()
        acked: dict[str, float] = {}
        began = time.monotonic()
        for wheel in wheels:
            done = publish(reg, op, wheel, "acme")
            assert done.commit is not None
            acked[done.commit.id] = time.time()
        took = time.monotonic() - began
        got = receiver.wait_for(n, timeout=300)
        deliverer.stop()
        ids = [g.headers["webhook-id"] for g in got]
        lags = sorted((g.at - acked[g.headers["webhook-id"]]) * 1000 for g in got if g.headers["webhook-id"] in acked)
        print(f"{n} publishes in {took:.1f} s ({n / took:.0f}/s); delivered {len(got)} requests, "
              f"{len(set(ids))} distinct, in commit order: {list(dict.fromkeys(ids)) == list(acked)}")
        print(f"lag ms: p50 {statistics.median(lags):.1f}  p99 {lags[int(len(lags) * 0.99) - 1]:.1f}  "
              f"max {lags[-1]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
