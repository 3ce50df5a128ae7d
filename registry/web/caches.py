"""What the web layer keeps in memory, all of it owned by `WebState`, all of it bounded: rendered
index pages by what they show, and whole answers by request, valid while the ledger's tip holds."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import RegistryError
from .guards import secured
from .incoming import incoming
from .negotiation import negotiate


@dataclass(frozen=True)
class Page:
    body: bytes
    etag: str
    content_type: str


class PageCache:
    """Rendered pages by (what they show, format); an LRU bounded in bytes."""

    def __init__(self, max_bytes: int = 32 * 2**20) -> None:
        self._pages: OrderedDict[tuple, Page] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: tuple) -> Page | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: tuple, page: Page) -> Page:
        self._pages[key] = page
        self._bytes += len(page.body)
        while self._bytes > self._max and len(self._pages) > 1:
            _, old = self._pages.popitem(last=False)
            self._bytes -= len(old.body)
        return page

    def page(self, key: tuple, content_type: str, render) -> Page:
        page = self.get(key)
        if page is None:
            body = render()  # (the ETag is the bytes' hash: what a caller may not see can't move it)
            page = self.put(key, Page(body, '"%s"' % hashlib.sha256(body).hexdigest()[:40], content_type))
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
    headers: list[tuple[bytes, bytes]]  # as sent, but for the Content-Length of a 200


def answer_key(scope) -> tuple[str, str, str | None] | None:
    """What an index page depends on besides the ledger's tip: the path, the representation
    negotiated, and the credentials, read as the page's handler reads them (incoming.py). Nothing
    else of the request (other query parameters, how Accept spells the choice) is in it, so no one
    can fill the cache with copies of one page. None: no representation is acceptable (a 406)."""
    seen = incoming(scope)
    try:
        fmt = negotiate(seen.accept, seen.format)
    except RegistryError:
        return None
    return seen.path, fmt, seen.authorization


class Answers:
    """The index pages given to (path, representation, credentials): everything a page depends on
    besides the ledger's tip, which is checked on every use. A repeat request is answered without
    routing, authentication or a single ledger lookup."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._answers: dict[tuple, Answer] = {}
        self._max = max_entries

    def remember(self, scope, commit: str, expires: float | None, page: Page, headers) -> None:
        if len(self._answers) >= self._max:
            self._answers.clear()
        key = answer_key(scope)
        if key is not None:
            headers = secured([*headers, (b"content-type", page.content_type.encode())])
            self._answers[key] = Answer(commit, expires, page, headers)

    def lookup(self, scope, head: str) -> Answer | None:
        key = answer_key(scope)
        answer = self._answers.get(key) if key is not None else None
        if answer is None or answer.commit != head or (answer.expires is not None and answer.expires <= time.time()):
            return None
        return answer
