"""What the web layer keeps in memory, all of it owned by `WebState`, all of it bounded: rendered
index pages by what they show, and whole answers by request, valid while the ledger's tip holds."""

from __future__ import annotations

import hashlib
import sys
import time
import weakref
from dataclasses import dataclass

from ..cache import Cache
from ..errors import RegistryError
from .asgi import Scope
from .guards import secured
from .incoming import incoming
from .negotiation import negotiate

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
            body = render()  # (the ETag is the bytes' hash: what a caller may not see can't move it)
            page = self.put(key, Page(body, f'"{hashlib.sha256(body).hexdigest()[:40]}"', content_type))
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
    page: weakref.ref[Page]  # held by the page cache (counted there once, however many answers give it)
    headers: list[tuple[bytes, bytes]]  # as sent, but for the Content-Length of a 200

    def nbytes(self) -> int:
        return (sys.getsizeof(self.commit) + sys.getsizeof(self.headers) + OBJECT
                + sum(sys.getsizeof(k) + sys.getsizeof(v) + 64 for k, v in self.headers))


def answer_key(scope: Scope) -> tuple[str, str, str | None] | None:
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

    def __init__(self) -> None:
        self._answers = Cache("answers", "whole answers to index requests, by request")

    def remember(self, scope: Scope, commit: str, expires: float | None, page: Page, headers) -> None:
        key = answer_key(scope)
        if key is not None:
            answer = Answer(commit, expires, weakref.ref(page),
                            secured([*headers, (b"content-type", page.content_type.encode())]))
            self._answers.put(key, answer, answer.nbytes())

    def lookup(self, scope: Scope, head: str) -> tuple[Answer, Page] | None:
        """The answer remembered for this request and its page, if both hold still."""
        key = answer_key(scope)
        answer = self._answers.get(key) if key is not None else None
        if answer is None or answer.commit != head or (answer.expires is not None and answer.expires <= time.time()):
            return None
        page = answer.page()  # (gone once the page cache let it go)
        return (answer, page) if page is not None else None
