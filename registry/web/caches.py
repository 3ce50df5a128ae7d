"""What the web layer keeps in memory, all of it owned by `WebState`, all of it bounded: rendered
index pages by what they show, and whole answers by request, valid while the ledger's tip holds."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass

from ..cache import Cache

OBJECT = 400  # a small object's header and its attribute dict, in bytes


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str
    content_type: str

    def nbytes(self) -> int:
        return sys.getsizeof(self.body) + sys.getsizeof(self.etag) + sys.getsizeof(self.content_type) + OBJECT


class PageCache:
    """Rendered pages by (what they show, format)."""

    def __init__(self) -> None:
        self._pages = Cache("pages", "rendered index pages, by what they show")

    def get(self, key: tuple) -> Page | None:
        return self._pages.get(key)

    def put(self, key: tuple, page: Page) -> Page:
        return self._pages.put(key, page, page.nbytes())

    def page(self, key: tuple, content_type: str, render) -> Page:
        page = self.get(key)
        if page is None:
            etag = '"%s"' % hashlib.sha256(repr(key).encode()).hexdigest()[:40]
            page = self.put(key, Page(render(), etag, content_type))
        return page




def matches(etag: str, if_none_match: str | None) -> bool:
    """Whether a conditional request's If-None-Match names this ETag (or any: `*`)."""
    if not if_none_match:
        return False
    return if_none_match.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in if_none_match.split(","))


@dataclass(frozen=True)
class Answer:
    commit: str  # true while the ledger's tip is this commit...
    expires: float | None  # ...and the caller's credentials hold
    page: Page
    headers: list[tuple[bytes, bytes]]

    def nbytes(self) -> int:
        """Its page too: the page cache may drop a page an answer still holds."""
        return (self.page.nbytes() + sys.getsizeof(self.commit) + sys.getsizeof(self.headers) + OBJECT
                + sum(sys.getsizeof(k) + sys.getsizeof(v) + 64 for k, v in self.headers))


def _scope_key(scope) -> tuple[bytes, bytes, bytes, bytes]:
    authorization = accept = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"accept":
            accept = value
    return scope.get("raw_path") or scope["path"].encode(), scope["query_string"], authorization, accept


class Answers:
    """The index pages given to (URL, credentials, Accept): everything a page depends on besides the
    ledger's tip, which is checked on every use. A repeat request is answered without routing,
    authentication or a single ledger lookup."""

    def __init__(self) -> None:
        self._answers = Cache("answers", "whole answers to index requests, by request")

    def remember(self, scope, commit: str, expires: float | None, page: Page, headers) -> None:
        answer = Answer(commit, expires, page, headers)
        self._answers.put(_scope_key(scope), answer, answer.nbytes())

    def lookup(self, scope, head: str) -> Answer | None:
        answer = self._answers.get(_scope_key(scope))
        if answer is None or answer.commit != head or (answer.expires is not None and answer.expires <= time.time()):
            return None
        return answer
