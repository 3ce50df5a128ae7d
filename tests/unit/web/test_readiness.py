"""GET /_/ready asks the blob store at most once a second per worker (registry/web/readiness.py):
concurrent probes share one question, the answer says how old it is, and a second later the store
is asked again. (A store that fails and comes back: tests/e2e/s3/test_ready.py, on SeaweedFS.)"""

from __future__ import annotations

import threading
import time

import anyio
from litestar.testing import AsyncTestClient

from registry.blobs import BlobStore
from registry.web.app import create_asgi
from registry.web.readiness import TTL_SECONDS


class Counted:
    """The registry's own files store, its `check` calls counted (everything else passes through)."""

    def __init__(self, store: BlobStore) -> None:
        self._store, self.checks, self._lock = store, 0, threading.Lock()

    def check(self) -> None:
        with self._lock:
            self.checks += 1
        time.sleep(0.05)  # (a bucket's round trip: the probes arriving meanwhile must not ask again)
        self._store.check()

    def __getattr__(self, name: str):
        return getattr(self._store, name)


async def test_concurrent_probes_ask_the_store_once_and_say_how_old_the_answer_is(world):
    counted = Counted(world.reg.blobs)
    world.reg.blobs = counted  # (the store is read from the registry at every probe)
    async with AsyncTestClient(app=create_asgi(world.reg.settings, world.reg)) as c:
        await c.get("/_/health")  # (the app started: its own start asks the store once)
        time.sleep(TTL_SECONDS + 0.1)
        asked = counted.checks
        answers = []

        async def probe() -> None:
            answers.append(await c.get("/_/ready"))

        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(probe)
        assert all(r.status_code == 200 and r.json()["ready"] is True for r in answers)
        assert counted.checks - asked <= 2, counted.checks - asked
        ages = [r.json()["checked"] for r in answers]
        assert all(0 <= age <= TTL_SECONDS for age in ages), ages
        cached = (await c.get("/_/ready")).json()["checked"]
        assert cached > 0 and counted.checks - asked <= 2  # (from memory, and says so)
        time.sleep(TTL_SECONDS + 0.1)
        again = await c.get("/_/ready")
        assert again.json()["checked"] < TTL_SECONDS / 2 and counted.checks - asked <= 3
        assert counted.checks > asked
