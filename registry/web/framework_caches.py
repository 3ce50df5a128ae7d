"""Litestar's own caches of what requests send, removed.

Litestar memoizes what it parses from a request (query strings, url-encoded form bodies, cookies,
path parameters, the route of a path, URLs) in `functools.lru_cache`s of 128 or 1,024 entries each,
keyed by what the client sent: a stranger's distinct query strings or form bodies (up to the 1 MiB
body limit each) would be kept there, up to a GiB, outside any bound of ours. Parsing again costs
microseconds, and the registry answers repeated index requests before Litestar does (caches.py),
so each is put back uncached where Litestar calls it. tests/adversarial/test_cache_bounds.py checks
that distinct requests leave nothing behind, so a Litestar that adds a cache is noticed.
"""

from __future__ import annotations

import litestar._asgi.routing_trie.traversal as traversal
import litestar._kwargs.extractors as extractors
import litestar._parsers as parsers
import litestar.connection.base as connection
import litestar.connection.request as request
import litestar.data_extractors as data_extractors
import litestar.datastructures.url as url
from litestar import Litestar

# (module, name): every place a cached parser of request data is called from
_PARSERS = [
    (parsers, "parse_query_string"), (connection, "parse_query_string"), (extractors, "parse_query_string"),
    (url, "parse_query_string"),
    (parsers, "parse_url_encoded_form_data"), (extractors, "parse_url_encoded_form_data"),
    (request, "parse_url_encoded_form_data"),
    (parsers, "parse_cookie_string"), (connection, "parse_cookie_string"), (data_extractors, "parse_cookie_string"),
    (extractors, "create_query_default_dict"),
    (traversal, "parse_path_params"),
]


def _uncached(fn):
    """What an `lru_cache` wraps (what is not one, or no longer, is left as it is: a Litestar that
    stopped caching it needs nothing undone; one that caches it otherwise is caught by the test)."""
    return fn.__wrapped__ if hasattr(fn, "cache_info") and hasattr(fn, "__wrapped__") else fn


def remove(app: Litestar) -> None:
    """Uncache Litestar's parsers (once per process) and this app's routing cache."""
    for module, name in _PARSERS:
        setattr(module, name, _uncached(getattr(module, name)))
    for name in ("_new", "from_components"):  # (classmethods over an lru_cache)
        method = url.URL.__dict__[name]
        setattr(url.URL, name, classmethod(_uncached(method.__func__)))
    # (Litestar declares the attribute as its lru_cache wrapper; it is replaced by the plain method on purpose)
    app.asgi_router.handle_routing = app.asgi_router._handle_routing  # type: ignore[assignment]
