"""Another index's Simple API pages (PEP 503 HTML or PEP 691 JSON, by `Accept`), read the one way
both `registry import` and the upstream indexes read them: the entries a page lists, with the
hashes, PEP 700 `upload-time`, PEP 658 metadata, `requires-python` and PEP 592 yanks it gives.

Credentials (HTTP Basic) go only to the index's own origin, never to a host its file URLs point
at (`SameOrigin`); URLs are recorded and shown without them (`shown`).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from ..errors import RegistryError

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
JSON = "application/vnd.pypi.simple.v1+json"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without its userinfo, username, password)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if password else None


def shown(url: str) -> str:
    """A URL as recorded and printed: no credentials, no query (signed URLs carry secrets there),
    no fragment."""
    parts = urlsplit(split_credentials(url)[0])
    return urlunsplit(parts._replace(query="", fragment=""))


def origin(url: str) -> tuple[str, str, int | None]:
    u = httpx.URL(url)
    return u.scheme, u.host, u.port


class SameOrigin(httpx.Auth):
    """An Authorization header for the index's own origin only."""

    def __init__(self, at: tuple[str, str, int | None], header: str) -> None:
        self.origin, self.header = at, header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if (request.url.scheme, request.url.host, request.url.port) == self.origin:
            request.headers["Authorization"] = self.header
        yield request


class _Links(HTMLParser):
    """The anchors of a PEP 503 page (href, text, attributes) and its repository version."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, dict[str, str | None]]] = []
        self.base: str | None = None
        self.version = "1.0"
        self._open: tuple[str, dict[str, str | None]] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        href, content = a.get("href"), a.get("content")
        if tag == "a" and href:
            self._open, self._text = (href, a), []
        elif tag == "base" and href and self.base is None:
            self.base = href
        elif tag == "meta" and a.get("name") == "pypi:repository-version" and content:
            self.version = content

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open[0], "".join(self._text).strip(), self._open[1]))
            self._open = None


def upload_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)


def fragment_hash(url: str) -> dict[str, str]:
    name, sep, value = urlsplit(url).fragment.partition("=")
    return {name.lower(): value.lower()} if sep and value else {}


def _html_entry(href: str, text: str, attrs: dict[str, str | None]) -> dict:
    """A PEP 503 anchor, in the JSON shape of PEP 691."""
    entry: dict = {"name": text, "filename": text or urlsplit(href).path.rsplit("/", 1)[-1], "url": href}
    if attrs.get("data-requires-python"):
        entry["requires-python"] = attrs["data-requires-python"]
    if "data-yanked" in attrs:
        entry["yanked"] = attrs["data-yanked"] or True
    meta = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    if meta is not None:
        name, sep, value = meta.partition("=")
        entry["core-metadata"] = {name.lower(): value.lower()} if sep else True
    return entry


def entries(url: str, is_json: bool, body: bytes, what: str) -> tuple[list[dict], str]:
    """A page's entries in the JSON shape of PEP 691 (a project list's `name`s, or a project's
    files: `filename`, `url`, `hashes`, `upload-time`, ...), and the URL they are relative to."""
    try:
        if is_json:
            data = json.loads(body)
            version = str(data.get("meta", {}).get("api-version", "1.0"))
            found = data.get("projects") if "projects" in data else data.get("files", [])
            base = url
        else:
            parser = _Links()
            parser.feed(body.decode("utf-8", "replace"))
            version, base = parser.version, urljoin(url, parser.base or "")
            found = [_html_entry(href, text, attrs) for href, text, attrs in parser.links]
    except (ValueError, AttributeError) as exc:
        raise RegistryError(f"The index's page for {what} ({url}) is not a Simple API page: {exc}.") from None
    if version.split(".")[0] != "1":
        raise RegistryError(f"The index at {url} speaks Simple API version {version}; this registry reads 1.x.")
    return [e for e in found if isinstance(e, dict)], base


@dataclass(frozen=True)
class Listed:
    """One file a project page lists, as that index describes it."""

    filename: str
    url: str  # absolute, fragment removed
    hashes: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; "": yanked without a reason
    upload_time: datetime | None = None
    size: int | None = None
    metadata_sha256: str | None = None  # PEP 658, when the index declares it with a sha256

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")


def listed_files(found: list[dict], base: str) -> list[Listed]:
    """The files of a project page's entries (`entries`); what isn't a file is left out."""
    out = []
    for e in found:
        if not isinstance(e.get("url"), str) or not e.get("filename") or "/" in str(e["filename"]):
            continue
        url = urljoin(base, e["url"])
        hashes = {**fragment_hash(url),
                  **{str(k).lower(): str(v).lower() for k, v in (e.get("hashes") or {}).items()}}
        yanked = e.get("yanked")
        meta = e.get("core-metadata", e.get("dist-info-metadata"))
        rp = e.get("requires-python")
        out.append(Listed(
            filename=str(e["filename"]), url=url.split("#")[0], hashes=hashes,
            requires_python=rp if isinstance(rp, str) and rp else None,
            yanked=None if not yanked else (yanked if isinstance(yanked, str) else ""),
            upload_time=upload_time(e.get("upload-time")),
            size=e.get("size") if isinstance(e.get("size"), int) else None,
            metadata_sha256=meta.get("sha256") if isinstance(meta, dict) else None))
    return out
