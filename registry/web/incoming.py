"""A request's head, read once: every part of the registry that asks who is calling, what they
accept, or where a write comes from asks here, so no two of them can read two different headers.

An answer cached for one request and given to another must depend on nothing the two differ in:
the answer cache keys them by exactly what the index pages are computed from (caches.py). Fields
that can only hold one value (RFC 9110: Authorization, Content-Type, ...) are refused when sent
twice, since whoever reads the first and whoever reads the last would disagree.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import MutableMapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ..errors import Forbidden, Invalid, RegistryError
from .asgi import Scope

HEADER_LIMIT = 16 * 1024  # bytes of request headers, names and values together
SCOPE_KEY = "registry.incoming"
ROUTE = "registry.route"  # a route the front door answers itself, named for the metrics (Litestar names its own)
# Fields that hold one value; a second copy is refused (a list-valued field like Accept is joined).
SINGLE = frozenset({b"authorization", b"content-type", b"content-length", b"host", b"range", b"if-range",
                    b"origin", b"sec-fetch-site", b"x-forwarded-host"})


@dataclass(frozen=True, slots=True)
class Incoming:
    authorization: str | None
    accept: str | None  # every Accept field, joined as RFC 9110 joins a list-valued field
    formats: tuple[str, ...]  # the query's `format` values (the only query parameter an index page reads)
    single: dict[bytes, str]  # the single-valued fields present, by lowercase name
    path: str  # as the server read it, before any router rewrote it (a trailing slash is kept)

    def header(self, name: bytes) -> str | None:
        return self.single.get(name)

    @property
    def format(self) -> str | None:
        return self.formats[0] if self.formats else None

    def cross_site(self) -> str | None:
        """Why a browser sent this from another site (None: it didn't, or it isn't a browser).
        Browsers name the site a request comes from (Sec-Fetch-Site; older ones only Origin);
        pip, twine, uv and poetry send neither."""
        site = self.single.get(b"sec-fetch-site")
        if site is not None:
            return None if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
        origin = self.single.get(b"origin")
        if origin is None:
            return None
        hosts = {self.single.get(b"host"), self.single.get(b"x-forwarded-host")} - {None}
        return None if urlsplit(origin).netloc in hosts else f"Origin: {origin[:100]}"


def named(scope: Scope, route: str) -> None:
    """Name the route of a request the front door answers itself, for the metrics (Litestar names its own)."""
    if isinstance(scope, MutableMapping):
        scope[ROUTE] = route


def incoming(scope: Scope) -> Incoming:
    """The request's head as the registry reads it (read at the front door, or here on first use)."""
    found = scope.get(SCOPE_KEY)
    if found is None:
        found = read(scope)
        if isinstance(scope, MutableMapping):  # (always: a dict, as ASGI servers and Litestar make it)
            scope[SCOPE_KEY] = found
    return found


def read(scope: Scope) -> Incoming:
    """Read a request's head; a RegistryError (4xx) for one no part of the registry should see."""
    path = scope.get("path") or ""
    if not path.startswith("/"):  # (`*`, an absolute form a proxy should have turned into a path)
        raise Invalid(f"The request target must be a path that starts with '/', not {path[:100]!r}.")
    if not path.isprintable() and any(c < " " or c == "\x7f" for c in path):
        raise Invalid("The path holds a control character (%00-%1F or %7F, once decoded); no name in this registry "
                      "has one.")
    size, authorization, accepts, single = 0, None, [], {}
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name in SINGLE:
            if name in single:
                raise Invalid(f"The request has more than one {name.decode().title()} header; send exactly one "
                              "(two could be read differently by different parts of a server).")
            single[name] = value.decode("latin-1")
        elif name == b"accept":
            accepts.append(value.decode("latin-1"))
    if size > HEADER_LIMIT:
        raise RegistryError(f"Request headers too large: {size} bytes, the limit is {HEADER_LIMIT // 1024} KiB. Send "
                            "fewer or shorter headers (cookies?).", status=431)
    authorization = _credentials(single[b"authorization"]) if b"authorization" in single else None
    accept = ", ".join(accepts) if accepts else None
    query = scope.get("query_string") or b""
    formats = tuple(parse_qs(query.decode("latin-1"), keep_blank_values=True).get("format", ())) \
        if b"format" in query else ()
    return Incoming(authorization, accept, formats, single, path)


def _credentials(value: str) -> str:
    """An Authorization value spelt one way (the scheme in lower case, one space, Basic's base64 as
    it encodes): the caches keyed by it then hold one entry per credential, however it is spelt."""
    scheme, _, rest = value.strip().partition(" ")
    scheme, rest = scheme.lower(), rest.strip()
    if scheme == "basic":
        try:
            rest = base64.b64encode(base64.b64decode(rest, validate=True)).decode()
        except (binascii.Error, ValueError):
            pass  # (refused as malformed when it is read)
    return f"{scheme} {rest}" if rest else scheme


def refuse_cross_site(seen: Incoming, method: str) -> None:
    why = seen.cross_site()
    if why is not None:
        raise Forbidden(f"{method} from another site's page is refused ({why}): the registry takes changes from its "
                        "own pages and from clients like twine, uv and poetry, not from other sites.")
