"""CPU of idle long polls (run by hand): python tests/benchmarks/bench_waiters.py [--waiters 1000] [--seconds 10]

Starts `registry serve --workers 1`, opens N idle `GET /_/ledger/checkpoint?wait=<head>` long polls
with httpx (each holds until the head moves, or 25 s), samples the worker's CPU time from
/proc/PID/stat over the window (user + system, all its threads), and reports it as % of one core
with the waiters open and without them. Then makes one commit and reports how long until every
waiter was answered with the new head. The bar: idle waiters cost next to nothing (one look at
the head per worker every 20 ms, however many wait), and one commit wakes them all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
from _common import registry_cli, start_server

TICKS = os.sysconf("SC_CLK_TCK")


def processes(parent: int) -> list[int]:
    """The server's process and all below it (granian's workers)."""
    out, todo = [], [parent]
    while todo:
        pid = todo.pop()
        out.append(pid)
        for task in Path(f"/proc/{pid}/task").iterdir():
            todo += [int(p) for p in (task / "children").read_text().split()]
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


async def sample(pids: list[int], seconds: float) -> float:
    """% of one core the processes used over ``seconds``."""
    before, started = cpu_seconds(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (cpu_seconds(pids) - before) / (time.monotonic() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR")))
    server = start_server(tmp / "data", workers=1)
    try:
        pids = processes(server.process.pid)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            head = (await client.get("/_/health")).json()["ledger"]
        await asyncio.sleep(2)  # (the server's start-up work is done)
        idle = await sample(pids, args.seconds)
        answered: list[float] = []
        host, port = server.url.removeprefix("http://").split(":")

        async def wait() -> None:  # (plain sockets: an HTTP client's pool of 1,000 connections is the slow part)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /_/ledger/checkpoint?wait={head} HTTP/1.1\r\nHost: {host}\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            response = await reader.read()
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
            answered.append(time.monotonic())
            writer.close()

        waiters = [asyncio.create_task(wait()) for _ in range(args.waiters)]
        await asyncio.sleep(3)  # (every poll is open and waiting)
        assert not answered, "a waiter was answered before the head moved"
        busy = await sample(pids, args.seconds)
        committed = time.monotonic()
        await asyncio.to_thread(registry_cli, server.data, "project", "create", "default", "WOKEN", "--name", "Woken")
        made = time.monotonic()
        await asyncio.gather(*waiters)
        answered.sort()
        print(f"{args.waiters} idle ?wait= long polls, one worker, {args.seconds:.0f} s samples:")
        print(f"  worker CPU without waiters: {idle:.1f}% of a core")
        print(f"  worker CPU with {args.waiters} waiters: {busy:.1f}% of a core")
        print(f"  one commit (the CLI process ran {made - committed:.2f} s): all {len(answered)} answered within "
              f"{answered[-1] - answered[0]:.3f} s of the first "
              f"(half within {answered[len(answered) // 2] - answered[0]:.3f} s)")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
