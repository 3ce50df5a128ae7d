"""Repeat requests, answered before anything else reads them: the index at the speed of the server.

A request whose method, path, query and every header are, byte for byte, those of one the front
door answered from memory (`caches.Answers`) gets that same answer again, as long as the ledger's
tip and the credentials' expiry still hold: both are checked on each use, as `Answers` checks them.
Everything the front door decided before answering from memory (the head of the request valid, the
workspace spelt in lowercase, no browser to redirect, nothing for a replica to forward, the
representation negotiated, the credentials) is a function of exactly those bytes, so the same
bytes get the same decision; nothing of the request is parsed again. A request that differs in any
byte (another User-Agent, an If-None-Match, a new X-Request-Id) goes through the front door, which
may then put it here. Such answers are logged and counted as every request is (access.py).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from ..cache import Cache
from .asgi import Scope
from .caches import OBJECT, Answer, Page, matches

ANSWERED = "registry.answered"  # in the scope: the front door answered it from memory, (Answer, Page)
ROUTE = "/{ws}/{project}/ (from memory)"  # (the metrics' route of every answer from memory)


@dataclass(frozen=True, slots=True)
class Repeat:
    answer: Answer  # (shared with the answers cache: valid while its commit is the tip, its credentials unexpired)
    page: weakref.ref[Page]  # (held by the page cache: a repeat never keeps a body alive)
    status: int  # 200, or 304 for a request whose If-None-Match names the page
    headers: list[tuple[bytes, bytes]]  # as sent, Content-Length included, but for the request id
    who: str  # for the access log: who the credentials were resolved to when it was kept

    def nbytes(self) -> int:
        return self.answer.nbytes() + OBJECT + sum(len(k) + len(v) + 100 for k, v in self.headers) + len(self.who)


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
        credentials hold."""
        repeat = self._repeats.get(key)
        if repeat is None:
            return None
        answer = repeat.answer
        if answer.commit != head or (answer.expires is not None and answer.expires <= time.time()):
            return None
        page = repeat.page()
        if page is None:
            return None
        return repeat, page.body if repeat.status == 200 and key[0] == "GET" else b""

    def keep(self, key: tuple, scope: Scope, who: str) -> None:
        """Keep what the front door answered this request with from memory (`ANSWERED`), if it did."""
        answered = scope.get(ANSWERED)
        if answered is None:
            return
        answer, page = answered
        inm = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
        if matches(page.etag, inm):
            repeat = Repeat(answer, weakref.ref(page), 304, answer.headers, who)
        else:
            length = (b"content-length", str(len(page.body)).encode())
            repeat = Repeat(answer, weakref.ref(page), 200, [*answer.headers, length], who)
        self._repeats.put(key, repeat, repeat.nbytes())
