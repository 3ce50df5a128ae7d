"""A worker's way out on SIGINT or SIGTERM, within a few seconds.

granian answers the signal by waiting for every open request to end (killing the worker after its
kill timeout), and only then runs the app's lifespan shutdown: so the worker hears the signal itself
(`on_signals`, chained before granian's own handling, which goes on as before). Two kinds of request
would hold it: a long poll (`?wait=`, a replica following this primary: up to 25 s) and an
upload still being received (a slow client: as long as it keeps trickling). So on shutdown
(`stop`): long polls are answered at once (ledger_http.HeadWatch.stop), a body still arriving is
refused with a 503 that says to send it again (nothing of it was kept), and a request whose bytes
are all in (an upload being checked and committed) is waited for, up to GRACE seconds: an answered
upload is a committed one, and none is cut off after its bytes arrived.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine

import anyio

from ..errors import RegistryError
from .asgi import Message, Receive

log = logging.getLogger("registry.web")
GRACE = 4.0  # seconds in-flight requests get to finish once the worker is told to stop
POLL = 0.02


class StoppingNow(RegistryError):
    def __init__(self) -> None:
        super().__init__("The server is stopping, and this request's body was still arriving: nothing of it was "
                         "kept. Send it again once the server is back.", status=503)


class Stopping:
    """The requests of one worker in flight, and whether it is stopping."""

    def __init__(self) -> None:
        self.stopping = False
        self.in_flight = 0
        self._receiving: set[anyio.CancelScope] = set()

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1

    def body(self, receive: Receive) -> Receive:
        """``receive`` for a body that is refused (`StoppingNow`) if it is still arriving at shutdown."""
        ended = False

        async def receiving() -> Message:
            nonlocal ended
            if ended:  # (a wait for the client's disconnect, after the body: not refused)
                return await receive()
            if self.stopping:
                raise StoppingNow
            with anyio.CancelScope() as scope:
                self._receiving.add(scope)
                try:
                    message = await receive()
                finally:
                    self._receiving.discard(scope)
                ended = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            raise StoppingNow  # (only reached when `stop` cancelled the wait)
        return receiving

    async def stop(self, grace: float = GRACE) -> None:
        """Refuse the bodies still arriving, then wait (at most ``grace`` seconds) for what is in flight."""
        self.stopping = True
        for scope in list(self._receiving):
            scope.cancel()
        with anyio.move_on_after(grace):
            while self.in_flight > 0:
                await anyio.sleep(POLL)
        if self.in_flight:
            log.warning("stopping with %d request(s) still in flight after %g s", self.in_flight, grace)


def on_signals(stop: Callable[[], Coroutine[object, object, None]]) -> None:
    """Run ``stop`` on this loop when the process gets SIGINT or SIGTERM. granian's handling stays as
    it was: asyncio's signal handlers are woken through the wakeup fd, whatever the Python-level
    handler is, and this one only schedules ``stop``."""
    if threading.current_thread() is not threading.main_thread():
        return  # (an app served in a test's thread: no signals to hear)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def start() -> None:
        task: asyncio.Task[None] = loop.create_task(stop())  # (kept until done: the loop holds tasks only weakly)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def heard(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(start)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, heard)
