"""Files pulled through from an upstream index on their first download: streamed to the client
while they are hashed into a staged file, checked against the index's sha256, then stored and
recorded (``record``), so that every later download is served from here.

One fetch per file, across the workers: within a worker, later askers wait for the running fetch;
across workers, an flock per file (in the upstream cache directory) makes the first the fetcher
and the others wait for it to end, then serve what it stored. A client that hangs up doesn't stop
the fetch (others may be waiting for it). The last chunk is held back until the hash is checked:
no client ever receives the whole of a file that fails its check (it gets a short answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx

from .. import metrics
from ..blobs import Digests, Staged
from ..errors import RegistryError
from ..locks import first

log = logging.getLogger("registry.upstream")
CHUNK = 64 * 1024
QUEUED = 8  # chunks waiting for a slow client: what a pull holds in memory for it
_END = object()


class Pulls:
    """The pulls of one worker."""

    def __init__(self, root: Path) -> None:
        self.root = root / "pulling"
        self._running: dict[str, asyncio.Task[None]] = {}

    async def wait_for_other(self, key: str, within: float) -> int | None:
        """Wait while another pull of ``key`` runs (here or in another worker): None once one has
        ended (its result is in the store, or it failed: ask again), or the lock for this worker to
        pull it itself (a file descriptor, to pass to `pull`)."""
        running = self._running.get(key)
        if running is not None:
            await asyncio.wait([running], timeout=within)
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / f"{hashlib.sha256(key.encode()).hexdigest()}.lock"
        deadline = time.monotonic() + within
        fd = first(lock)
        if fd is not None:
            return fd
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            fd = first(lock)
            if fd is not None:
                os.close(fd)
                return None
        raise RegistryError("Another worker of this registry is still fetching this file from upstream; try again "
                            "in a moment.", status=503)

    def pull(self, key: str, lock: int, response: httpx.Response, staged: Staged,
             check: Callable[[Digests], str | None],
             record: Callable[[Staged], Awaitable[None]]) -> AsyncIterator[bytes]:
        """Pull ``response``'s body into ``staged`` (holding ``lock``), and the bytes for this client."""
        queue: asyncio.Queue[object] = asyncio.Queue(QUEUED)
        listening = [True]

        async def give(item: object) -> None:
            if listening[0]:
                await queue.put(item)

        async def run() -> None:
            try:
                held: bytes | None = None
                async for chunk in response.aiter_raw(CHUNK):
                    staged.write(chunk)
                    if held is not None:
                        await give(held)
                    held = chunk
                # (a file still in memory has nothing to sync: finished here, without a thread's hop)
                digests = staged.finish() if not staged.spilled else await asyncio.to_thread(staged.finish)
                why = check(digests)
                if why is not None:
                    metrics.upstream_fetch("file", failed=True)
                    log.error("%s", why)
                    await give(RegistryError(why, status=502))
                    return
                if held is not None:
                    await give(held)
                await give(_END)
                metrics.upstream_fetch("file")
                await record(staged)
            except Exception as exc:
                metrics.upstream_fetch("file", failed=True)
                if not isinstance(exc, RegistryError):
                    log.warning("pulling %s from upstream failed: %s", key, exc)
                await give(exc)
            finally:
                await response.aclose()
                staged.discard()  # (a no-op once adopted)
                os.close(lock)
                self._running.pop(key, None)

        self._running[key] = asyncio.get_running_loop().create_task(run())

        async def stream() -> AsyncIterator[bytes]:
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    assert isinstance(item, bytes)
                    yield item
            finally:
                listening[0] = False
                while not queue.empty():  # (a fetch blocked on a full queue goes on, for whoever waits)
                    queue.get_nowait()

        return stream()
