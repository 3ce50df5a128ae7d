"""A webhook receiver on 127.0.0.1: a small threaded http.server that keeps every request it got (in
order), answers with the status a test sets, and can be stopped and started again on its port. It
speaks HTTP/1.1 and keeps connections open, as a real receiver does (``keep_alive=False``: HTTP/1.0,
a connection closed after each answer); stopping it closes its open connections too."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lowercased names
    body: bytes
    at: float  # time.time() when it arrived

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int = 0
    status: int = 200  # what it answers
    delay: float = 0.0  # seconds it takes before answering
    keep_alive: bool = True
    got: list[Received] = field(default_factory=list)
    connections: int = 0  # how many the deliverer opened
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"
            # (TCP_NODELAY, as real servers set: else its answer's body waits out the client's delayed
            # ACK of its headers, 40 ms a request on a kept-alive connection)
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver.connections += 1
                    receiver._open.add(self.request)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._open.discard(self.request)
                super().finish()

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                status = receiver.status
                time.sleep(receiver.delay)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.got.append(item)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # (a kept-alive connection would go on being served)
            for sock in self._open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._open.clear()

    def ids(self) -> list[str]:
        with self._lock:
            return [r.headers["webhook-id"] for r in self.got]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Until it has accepted ``count`` requests (AssertionError after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.got) >= count:
                    return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.got)} requests in {timeout:g} s, not {count}")

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
