"""What the access log costs the index (run by hand): python tests/benchmarks/bench_access_log.py

The authenticated 200-file JSON project page of bench_simple.py, from `registry serve --workers 2`
under `wrk -t2 -c32`, with the access log on (the default: a line per request, to the server's
stderr, here a file) and off (REGISTRY_ACCESS_LOG=off), alternating on the same data directory,
ROUNDS pairs. Prints each round and the medians of the workers' CPU time per request; only the
ratio within the run means anything.
"""

from __future__ import annotations

import shutil
import statistics

from _common import index_with_and_without

ROUNDS = 3


def main() -> None:
    figures, data, _ = index_with_and_without("access_log", ("on", "off"), ROUNDS)
    on, off = statistics.median(figures["on"]), statistics.median(figures["off"])
    print(f"medians: on {on:.1f}, off {off:.1f} µs CPU a request; on/off {on / off:.2f}")
    shutil.rmtree(data.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
