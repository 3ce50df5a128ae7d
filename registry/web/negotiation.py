"""Which representation of an index page a client gets (PEP 691): `?format=` first, then `Accept`
with its q-values. The answer cache keys pages by the outcome, so what the Accept header spells
beyond it never multiplies them."""

from __future__ import annotations

from ..cache import memoized
from ..errors import RegistryError

API_VERSION = "1.1"
JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
OFFERS = (JSON, HTML, TEXT_HTML)  # our preference when the client has none
ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON,
    "application/vnd.pypi.simple.latest+html": HTML,
}
CONTENT_TYPES = {JSON: JSON, HTML: HTML, TEXT_HTML: "text/html; charset=utf-8"}


class NotAcceptable(RegistryError):
    status = 406


@memoized("negotiation", "Accept headers and ?format= values, to the representation served")
def negotiate(accept: str | None, fmt: str | None = None) -> str:
    """The representation to serve: `?format=` wins, then `Accept` with q-values (q=0 refuses)."""
    if fmt:
        chosen = ALIASES.get(fmt, fmt)
        if chosen not in OFFERS and " " in fmt:  # an unescaped '+' arrives as a space
            chosen = ALIASES.get(fmt.replace(" ", "+"), fmt.replace(" ", "+"))
        if chosen not in OFFERS:
            hint = " (a '+' in a query string means a space: write it %2B)" if "+" in chosen or " " in fmt else ""
            raise NotAcceptable(f"Unknown format {fmt!r}: use one of {', '.join(OFFERS)}{hint}.")
        return chosen
    ranges = _parse_accept(accept or "*/*")
    best, best_q = None, 0.0
    for offer in OFFERS:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    if best is None:
        raise NotAcceptable(f"None of the requested media types is available; this index serves {', '.join(OFFERS)}.")
    return best


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append((ALIASES.get(media.lower(), media.lower()), q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """RFC 9110: the most specific matching range decides the quality of an offer."""
    kind = offer.split("/")[0] + "/*"
    best_specificity, q = -1, 0.0
    for media, quality in ranges:
        specificity = 2 if media == offer else 1 if media == kind else 0 if media == "*/*" else -1
        if specificity > best_specificity:
            best_specificity, q = specificity, quality
    return q
