"""Repeat requests, answered before anything else reads them: the index at the speed of the server.

A GET or HEAD whose method, path, query and every header are, byte for byte, those of one already
answered gets that same answer again, as long as the ledger's tip and the credentials' expiry still
hold (both checked on each use). Which answers may be given again is said by whoever made them
(`ANSWERED` in the scope): the front door's answers from memory (`caches.Answers`: index pages), and
send.py's whole `.metadata` and small files of today's index. Everything decided on the way to such
an answer (the head of the request valid, the workspace spelt in lowercase, no browser to redirect,
nothing for a replica to forward, the representation negotiated, the credentials, no Range) is a
function of exactly those bytes, so the same bytes get the same decision; nothing of the request is
parsed again. A request that differs in any byte (another User-Agent, an If-None-Match, a new
X-Request-Id) goes the whole way, and may then be kept here. Such answers are logged and counted as
every request is, under the route that first answered them (access.py).
"""

from __future__ import annotations

import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from ..cache import Cache
from .asgi import Scope
from .caches import OBJECT, Page

# In the scope: this request's answer may be given again to the same bytes, (commit, credentials'
# expiry, Page or StoredFile); set by the front door and by send.py. Its status and headers are taken
# as they were sent (access.py), never made up again.
ANSWERED = "registry.answered"
FILE_LIMIT = 256 * 2**10  # a stored file (or range) this small is read at once, on the event loop (send.py too)
ROUTE = "/{ws}/{project}/ (from memory)"  # (the metrics' route of the front door's answers from memory)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A distribution file in the local store, answered by its path: its bytes are read when a
    repeat is answered, never kept."""

    path: str
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class Repeat:
    commit: str  # valid while the ledger's tip is this commit...
    expires: float | None  # ...and the caller's credentials hold
    page: weakref.ref[Page] | None  # the body, held by the page cache (a repeat never keeps one alive)...
    path: str | None  # ...or the stored file it is read from
    size: int
    status: int  # as sent: 200, or 304 for a request whose If-None-Match names the page
    headers: list[tuple[bytes, bytes]]  # as sent, Content-Length included, but for the request id
    who: str  # for the access log: who the credentials were resolved to when it was kept
    route: str  # for the metrics: the route that first answered it

    def nbytes(self) -> int:
        return (OBJECT + sys.getsizeof(self.commit) + len(self.path or "") + sys.getsizeof(self.who)
                + sys.getsizeof(self.route) + sum(len(k) + len(v) + 100 for k, v in self.headers))


def read_at_once(path: str | Path, start: int, length: int) -> bytes | None:
    """``length`` bytes of a small stored file (FILE_LIMIT) from ``start``, read on the caller's
    thread, the event loop's: a hop to a worker thread and back costs a worker more CPU than such a
    read from the page cache (150 to 270 µs on this project's machines, the read a few). None if the
    file is gone or shorter than that."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(length)
    except OSError:
        return None
    return data if len(data) == length else None


def request_key(scope: Scope) -> tuple | None:
    """Everything of the request the front door reads (None: not a GET or HEAD, or headers that
    can't be a key)."""
    method = scope["method"]
    if method != "GET" and method != "HEAD":
        return None
    key = method, scope["path"], scope.get("query_string"), tuple(scope["headers"])
    try:
        hash(key)
    except TypeError:  # (a server whose header pairs are lists)
        return None
    return key


class Repeats:
    """Answers from memory, by the request's bytes (a bounded cache of its own: a client that varies
    a header can only push out entries, each made only after its request was answered in full)."""

    def __init__(self) -> None:
        self._repeats = Cache("repeats", "answers from memory, by the whole request")

    def find(self, key: tuple, head: str) -> tuple[Repeat, bytes] | None:
        """The answer kept for these bytes and its body, while its commit is ``head`` and its
        credentials hold (and its body is still there)."""
        repeat = self._repeats.get(key)
        if repeat is None:
            return None
        if repeat.commit != head or (repeat.expires is not None and repeat.expires <= time.time()):
            return None
        if repeat.status != 200 or key[0] == "HEAD":
            return repeat, b""
        if repeat.path is not None:  # (gone or cut short: not a repeat; the whole way says why)
            body = read_at_once(repeat.path, 0, repeat.size)
            return (repeat, body) if body is not None else None
        page = repeat.page() if repeat.page is not None else None
        return (repeat, page.body) if page is not None else None

    def keep(self, key: tuple, scope: Scope, status: int, headers: list[tuple[bytes, bytes]], who: str,
             route: str) -> None:
        """Keep what this request was answered with (``status`` and ``headers`` as sent, but for the
        request id), if whoever answered it marked it (`ANSWERED`: the front door from memory, a
        whole `.metadata` or small file by send.py)."""
        answered = scope.get(ANSWERED)
        if answered is None or status not in (200, 304):
            return
        commit, expires, body = answered
        page = weakref.ref(body) if isinstance(body, Page) else None
        path = body.path if isinstance(body, StoredFile) else None
        size = len(body.body) if isinstance(body, Page) else body.size
        repeat = Repeat(commit, expires, page, path, size, status, headers, who, route)  # (its own list)
        self._repeats.put(key, repeat, repeat.nbytes())
