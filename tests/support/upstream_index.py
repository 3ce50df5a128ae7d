"""A small PEP 691 JSON Simple index on 127.0.0.1, for tests of upstream indexes that need to
control what an index does: which files it lists and with which hashes and upload times, how
slowly it sends them, stalling, failing, and how often each URL was asked for. A real server on a
real socket: the registry talks to it over HTTP as to any index."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from packaging.utils import canonicalize_name


@dataclass
class Served:
    data: bytes
    upload_time: datetime | None = None
    sha256: str | None = None  # what the page declares (default: the data's)
    metadata: bytes | None = None  # PEP 658
    per_chunk_delay: float = 0.0  # seconds between 64 KiB chunks

    @property
    def declared(self) -> str:
        return self.sha256 or hashlib.sha256(self.data).hexdigest()


class Index:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.asked: Counter[str] = Counter()
        self.mode = "serve"  # "stall": accept and say nothing; "fail": answer 500
        self.stalled = threading.Event()
        index = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                index.asked[self.path] += 1
                if index.mode == "stall":
                    index.stalled.wait(30)
                    return
                if index.mode == "fail":
                    return self._send(500, b"broken", "text/plain")
                if self.path.startswith("/files/"):
                    name = self.path[len("/files/"):]
                    if name.endswith(".metadata") and name[:-9] in index.files and index.files[name[:-9]].metadata:
                        return self._send(200, index.files[name[:-9]].metadata, "text/plain")
                    served = index.files.get(name)
                    if served is None:
                        return self._send(404, b"", "text/plain")
                    return self._stream(served)
                project = self.path.strip("/").split("/")[-1]
                listed = [(f, s) for f, s in index.files.items() if canonicalize_name(_project_of(f)) == project]
                if not listed:
                    return self._send(404, b"no such project", "text/plain")
                body = {"meta": {"api-version": "1.1"}, "name": project, "files": [
                    {"filename": f, "url": f"/files/{f}", "hashes": {"sha256": s.declared}, "size": len(s.data),
                     **({"upload-time": s.upload_time.isoformat()} if s.upload_time else {}),
                     **({"core-metadata": {"sha256": hashlib.sha256(s.metadata).hexdigest()}} if s.metadata else {})}
                    for f, s in listed]}
                self._send(200, json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json")

            def _stream(self, served: Served) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(served.data)))
                self.end_headers()
                for i in range(0, len(served.data), 65536):
                    if served.per_chunk_delay:
                        time.sleep(served.per_chunk_delay)
                    try:
                        self.wfile.write(served.data[i:i + 65536])
                    except (BrokenPipeError, ConnectionResetError):
                        return

            def _send(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stalled.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _project_of(filename: str) -> str:
    return filename.split("-", 1)[0]
