"""Another index, read through its Simple API (PEP 503 HTML or PEP 691 JSON, by `Accept`), as a
source for `registry import`: its project list, each project's files with the hashes and PEP 700
`upload-time` it gives, and the files themselves (streamed, a few at a time).

Credentials (HTTP Basic, from the URL, a username and password, or a token) go only to the index's
own origin, never to a host its file URLs point at; they are never recorded anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Generator
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import httpx
from packaging.utils import canonicalize_name

from ..errors import RegistryError
from .core import Candidate, Sink

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
JSON = "application/vnd.pypi.simple.v1+json"
ATTEMPTS = 3  # a file whose transfer fails before its first byte is tried this often


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without its userinfo, username, password)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if password else None


def shown(url: str) -> str:
    """A file URL as recorded and printed: no credentials, no query (signed URLs carry secrets
    there), no fragment."""
    parts = urlsplit(split_credentials(url)[0])
    return urlunsplit(parts._replace(query="", fragment=""))


def _origin(url: str) -> tuple[str, str, int | None]:
    u = httpx.URL(url)
    return u.scheme, u.host, u.port


class _SameOrigin(httpx.Auth):
    def __init__(self, origin: tuple[str, str, int | None], header: str) -> None:
        self.origin, self.header = origin, header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if (request.url.scheme, request.url.host, request.url.port) == self.origin:
            request.headers["Authorization"] = self.header
        yield request


class _Links(HTMLParser):
    """The anchors of a PEP 503 page (href, text) and its repository version."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.base: str | None = None
        self.version = "1.0"
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        href, content = a.get("href"), a.get("content")
        if tag == "a" and href:
            self._href, self._text = href, []
        elif tag == "base" and href and self.base is None:
            self.base = href
        elif tag == "meta" and a.get("name") == "pypi:repository-version" and content:
            self.version = content

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _upload_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)


def _fragment_hash(url: str) -> dict[str, str]:
    name, sep, value = urlsplit(url).fragment.partition("=")
    return {name.lower(): value.lower()} if sep and value else {}


class IndexSource:
    def __init__(self, url: str, projects: list[str] | tuple[str, ...] = (), *, username: str | None = None,
                 password: str | None = None, token: str | None = None, concurrency: int = 4,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 60.0) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise RegistryError(f"--index-url {url!r} is not an http(s) URL: give the index URL pip's --index-url "
                                "takes.")
        base, user, secret = split_credentials(url)
        if token:
            user, secret = "__token__", token
        elif username is not None or password is not None:
            user, secret = username or "", password or ""
        self.url = base if base.endswith("/") else base + "/"
        self.name = self.url
        self.projects = list(projects)
        self._origin = _origin(self.url)
        auth = None
        if user is not None or secret is not None:
            header = "Basic " + base64.b64encode(f"{user or ''}:{secret or ''}".encode()).decode()
            auth = _SameOrigin(self._origin, header)
        self._client = httpx.AsyncClient(
            follow_redirects=True, auth=auth, transport=transport, timeout=httpx.Timeout(timeout, connect=15),
            limits=httpx.Limits(max_connections=2 * concurrency), headers={"User-Agent": "registry-import"})
        self._pages = asyncio.Semaphore(concurrency)

    async def _page(self, url: str, what: str) -> tuple[str, bool, bytes] | None:
        """(final URL, is JSON, body) of a Simple API page; None on a 404 or a redirect to another host."""
        try:
            for _ in range(10):  # redirects are followed within the index's own origin only
                r = await self._client.get(url, headers={"Accept": ACCEPT}, follow_redirects=False)
                if not r.is_redirect or "location" not in r.headers:
                    break
                url = urljoin(str(r.url), r.headers["location"])
                if _origin(url) != self._origin:
                    # (pypiserver sends projects it doesn't hold to its fallback index: not this index's files)
                    return None
        except httpx.HTTPError as exc:
            raise RegistryError(f"Can't reach the index at {self.url} ({type(exc).__name__}: {exc}); check the "
                                "URL and that the index is up.") from None
        if r.status_code == 401:
            raise RegistryError(f"The index at {self.url} answered 401 Unauthorized for {what}: give credentials "
                                "(user:password@ in the URL, --username and --password, or --token).")
        if r.status_code == 403:
            raise RegistryError(f"The index at {self.url} answered 403 Forbidden for {what}: these credentials "
                                "may not read it.")
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RegistryError(f"The index at {self.url} answered {r.status_code} for {what}; try again later.")
        is_json = r.headers.get("content-type", "").split(";")[0].strip() == JSON
        return str(r.url), is_json, r.content

    def _parse(self, page: tuple[str, bool, bytes], what: str) -> tuple[list[dict], str]:
        """A page's entries (JSON-shaped: name or filename, url, hashes, upload-time) and its base URL."""
        url, is_json, body = page
        try:
            if is_json:
                data = json.loads(body)
                version = str(data.get("meta", {}).get("api-version", "1.0"))
                entries = data.get("projects") if "projects" in data else data.get("files", [])
                base = url
            else:
                parser = _Links()
                parser.feed(body.decode("utf-8", "replace"))
                version, base = parser.version, urljoin(url, parser.base or "")
                entries = [{"name": text, "filename": text or urlsplit(href).path.rsplit("/", 1)[-1], "url": href}
                           for href, text in parser.links]
        except (ValueError, AttributeError) as exc:
            raise RegistryError(f"The index's page for {what} ({url}) is not a Simple API page: {exc}.") from None
        if version.split(".")[0] != "1":
            raise RegistryError(f"The index at {self.url} speaks Simple API version {version}; this registry reads "
                                "1.x.")
        return [e for e in entries if isinstance(e, dict)], base

    async def _project(self, name: str, explicit: bool) -> list[Candidate]:
        async with self._pages:
            page = await self._page(urljoin(self.url, quote(name) + "/"), f"project {name}")
        if page is None:
            if explicit:
                raise RegistryError(f"The index at {self.url} has no project {name!r} (a 404, or a redirect to "
                                    "another index).")
            return [Candidate(filename=f"{name}/", location=self.url, project=None,
                              error="the index lists this project, but its page is a 404 or elsewhere")]
        entries, base = self._parse(page, f"project {name}")
        found = []
        for e in entries:
            if not isinstance(e.get("url"), str) or not e.get("filename"):
                continue
            url = urljoin(base, e["url"])
            hashes = {**_fragment_hash(url), **{k.lower(): str(v).lower() for k, v in (e.get("hashes") or {}).items()}}
            found.append(Candidate(filename=str(e["filename"]), location=shown(url), project=name, hashes=hashes,
                                   upload_time=_upload_time(e.get("upload-time")), url=url.split("#")[0],
                                   size=e.get("size") if isinstance(e.get("size"), int) else None))
        return found

    async def candidates(self) -> tuple[list[Candidate], int]:
        explicit = bool(self.projects)
        names = [canonicalize_name(p) for p in self.projects]
        if not explicit:
            page = await self._page(self.url, "its project list")
            if page is None:
                raise RegistryError(f"Nothing at {self.url} (404): give the index URL, the one pip's --index-url "
                                    "takes.")
            entries, _ = self._parse(page, "its project list")
            names = sorted({canonicalize_name(str(e["name"])) for e in entries if e.get("name")})
        pages = await asyncio.gather(*(self._project(n, explicit) for n in dict.fromkeys(names)),
                                     return_exceptions=True)
        found: list[Candidate] = []
        for files in pages:
            if isinstance(files, BaseException):
                raise files
            found.extend(files)
        return found, 0

    async def fetch(self, c: Candidate, sink: Sink) -> None:
        url = c.url or c.location  # (every candidate of an index has its url)
        for attempt in range(1, ATTEMPTS + 1):
            started = False
            try:
                async with self._client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as r:
                    if r.status_code >= 500 and attempt < ATTEMPTS:
                        await asyncio.sleep(0.5 * attempt)
                        continue
                    if r.status_code != 200:
                        raise RegistryError(f"the index answered {r.status_code} for {c.location}")
                    async for chunk in r.aiter_bytes():
                        started = True
                        sink.write(chunk)
                return
            except httpx.HTTPError as exc:
                if started or attempt == ATTEMPTS:
                    raise RegistryError(f"the download of {c.location} failed ({type(exc).__name__}: {exc})") from None
                await asyncio.sleep(0.5 * attempt)

    def sha256(self, c: Candidate) -> str | None:
        return c.hashes.get("sha256")

    async def close(self) -> None:
        await self._client.aclose()
