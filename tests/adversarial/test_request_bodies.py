"""Request bodies and request lines no client of ours sends, at every route that takes a body: JSON
nested deeper than any operation needs, numbers too long to convert, bytes that aren't UTF-8,
bodies that never finish arriving, request targets that aren't paths. Each is a 4xx that says
what was wrong, and changes nothing; none holds a worker."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import time
from urllib.parse import urlsplit

import pytest

from registry.web.bodies import MAX_DEPTH
from tests.support.asgi import call
from tests.support.routes import every_route

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
BODIES = {
    "nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "just deeper than allowed": b'{"reason":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
    "a 100,000-digit number": b'{"reason": ' + b"9" * 100_000 + b"}",
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "NUL": b'{"reason": "a\x00b"}',
    "not JSON": b"\x00\x01\x02<xml/>",
}


@pytest.mark.parametrize("kind", sorted(BODIES))
async def test_malformed_bodies_are_refused_at_every_route(client, world, published, kind):
    admin = list(world.basic("wsadmin@acme.test").items())
    head = world.reg.ledger.head()
    routes = [(m, p) for m, p in every_route(client.served.app, WRITES) if m != "DELETE"]  # (a DELETE reads no body)
    assert len(routes) >= 12, routes
    for method, path in routes:
        for content_type in ("application/json", "text/plain"):
            answer = await call(client.served, method, path, admin + [("content-type", content_type)], BODIES[kind])
            assert 400 <= answer.status < 500, (kind, method, path, answer.status, answer.body[:300])
            assert answer.body.strip(), (method, path)  # (a refusal says why)
    assert world.reg.ledger.head() == head


def _send_slowly(url: str, head: str, pieces: list[bytes], every: float) -> tuple[int, bytes, float]:
    """Headers at once, then the body a piece at a time; the status, the whole answer (head and
    body) and the seconds to its first bytes. (Not to the connection's end: after a 408 the server
    may still read what the client sends for a while before it closes, which is no worker's time.)"""
    parts = urlsplit(url)
    started, answered = time.monotonic(), None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(head.encode("latin-1"))
        s.settimeout(every)
        data = b""
        for piece in pieces:
            try:
                s.sendall(piece)
                chunk = s.recv(65536)
                if chunk:
                    data, answered = data + chunk, time.monotonic()
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        s.settimeout(30)
        try:
            while not _whole(data) and (chunk := s.recv(65536)):
                data, answered = data + chunk, answered or time.monotonic()
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(data.split(b" ", 2)[1]) if data else 0
    return status, data, (answered or time.monotonic()) - started


def _whole(data: bytes) -> bool:
    """Whether ``data`` holds an answer's head and as much body as its Content-Length says."""
    head, found, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    return bool(found and length and len(body) >= int(length.group(1)))


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    """A live server that wants 200 bytes a second after its first second."""
    from tests.support.helpers import start_server

    live = start_server(tmp_path_factory.mktemp("impatient") / "data", workers=1, min_body_rate=200,
                        body_grace_seconds=1)
    yield live
    live.stop()


@pytest.mark.e2e  # a live server
@pytest.mark.parametrize("path,content_type", [
    ("/-/_/signin", "application/x-www-form-urlencoded"),
    ("/default/", "multipart/form-data; boundary=xyz"),
    ("/api/workspaces/default/packages", "application/json"),
    ("/_/oidc/mint-token", "application/json"),
    ("/-/_/tokens", "application/x-www-form-urlencoded"),
])
def test_a_body_trickled_in_is_cut_off(impatient, path, content_type):
    """The attack: an anonymous form sent a byte a second, holding a worker's connection for minutes."""
    size = 5000  # (with credentials that hold: an anonymous upload is refused before its body is read)
    credentials = base64.b64encode(f"{impatient.admin}:{impatient.token}".encode()).decode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Basic {credentials}\r\nContent-Length: {size}\r\n\r\n")
    status, answer, seconds = _send_slowly(impatient.url, head, [b"a"] * size, every=0.2)
    assert status == 408 and b"arrived too slowly" in answer, (status, answer[:300])
    assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:300]  # (RFC 9110: it won't wait any longer)
    assert seconds < 8, seconds  # (1 s of grace, and 200 bytes a second after it: far behind by then)


@pytest.mark.e2e  # a live server
def test_a_body_that_keeps_coming_is_taken(impatient, tmp_path):
    """The floor is far below any real link: a body sent at 50 KB/s in pieces is read to its end."""
    from tests.support.helpers import make_wheel

    impatient.cli("package", "create", "default", "paced-pkg", "--repo", "packages")
    wheel = make_wheel(tmp_path, "paced-pkg", "1.0", payload=200_000)
    data = wheel.read_bytes()
    boundary = "b0undary"
    fields = {":action": "file_upload", "protocol_version": "1", "name": "paced-pkg", "version": "1.0",
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{wheel.name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    credentials = base64.b64encode(f"{impatient.admin}:{impatient.token}".encode()).decode()
    head = (f"POST /default/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {credentials}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    pieces = [body[i:i + 5000] for i in range(0, len(body), 5000)]
    status, answer, _ = _send_slowly(impatient.url, head, pieces, every=0.1)
    assert status == 200, answer[:300]


@pytest.mark.e2e  # a live server
@pytest.mark.parametrize("line", ["POST * HTTP/1.1", "OPTIONS * HTTP/1.1", "GET http://evil.example/ HTTP/1.1",
                                  "GET /_/static/%00 HTTP/1.1", "GET /default/%0d%0aSet-Cookie:x=1/ HTTP/1.1"])
def test_a_request_target_that_is_no_path(impatient, line):
    parts = urlsplit(impatient.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(f"{line}\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    assert 400 <= status < 500, data[:400]


@pytest.mark.e2e  # a live server
def test_a_replica_refuses_them_too(tmp_path):
    """A replica reads the request before it forwards it: `POST *` was a 500 there (the target was
    glued to the primary's URL), and a trickled body held its forwarding connection open."""
    from tests.e2e.replica.test_replica import Cluster

    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=1)
        for line in ("POST * HTTP/1.1", "OPTIONS * HTTP/1.1", "POST http://evil.example/ HTTP/1.1"):
            parts = urlsplit(replica.url)
            with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
                s.sendall(f"{line}\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            assert data[:10] == b"HTTP/1.1 4", (line, data[:300])  # (an absolute URL is read as its path)
    finally:
        cluster.stop()


@pytest.mark.e2e  # a live server
def test_a_replica_cuts_a_trickled_body_off_too(tmp_path):
    """A replica forwards a write's body to its primary as it arrives: one trickled in is cut off
    there with the same 408 (it was swallowed: no answer at all)."""
    from tests.e2e.replica.test_replica import Cluster

    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=1, min_body_rate=200, body_grace_seconds=1)
        credentials = base64.b64encode(f"{cluster.primary.admin}:{cluster.primary.token}".encode()).decode()
        head = (f"POST /api/workspaces/default/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                f"\r\nAuthorization: Basic {credentials}\r\nContent-Length: 5000\r\n\r\n")
        status, answer, seconds = _send_slowly(replica.url, head, [b" "] * 5000, every=0.2)
        assert status == 408 and b"arrived too slowly" in answer, (status, answer[:300])
        assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:300]
        assert seconds < 8, seconds
    finally:
        cluster.stop()
