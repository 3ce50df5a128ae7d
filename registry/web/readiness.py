"""GET /_/ready's question to the blob store, asked at most once a second per worker (`StoreCheck`):
a load balancer polling every worker, or anyone asking /_/ready in a loop, would otherwise turn each
probe into a request to the bucket (a HeadBucket that a bucket bills, and that a stalled one holds a
thread for up to BLOBS_TIMEOUT). Requests that arrive while the store is being asked wait for that
answer rather than asking again. A failure is kept as long as a success, so a store that comes back
is seen within a second of it answering again."""

from __future__ import annotations

import math
import time

import anyio

from ..blobs import BlobStore
from ..errors import RegistryError

TTL_SECONDS = 1.0


class StoreCheck:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._lock: anyio.Lock | None = None  # (made in the event loop that first asks)
        self._at = -math.inf  # when the last answer came (time.monotonic)
        self._problem: str | None = None

    async def problem(self, store: BlobStore) -> tuple[str | None, float]:
        """Why the store can't be used now (None: it can), and how many seconds old that answer is."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:  # (one question in flight: the others wait for its answer)
            if time.monotonic() - self._at > self._ttl:
                try:
                    await anyio.to_thread.run_sync(store.check)
                    self._problem = None
                except RegistryError as exc:
                    self._problem = exc.message
                self._at = time.monotonic()
            return self._problem, time.monotonic() - self._at
