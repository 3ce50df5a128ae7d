"""Another index, read through its Simple API (PEP 503 HTML or PEP 691 JSON, by `Accept`), as a
source for `registry import`: its project list, each project's files with the hashes and PEP 700
`upload-time` it gives, and the files themselves (streamed, a few at a time).

Credentials (HTTP Basic, from the URL, a username and password, or a token) go only to the index's
own origin, never to a host its file URLs point at; they are never recorded anywhere.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote, urljoin, urlsplit

import httpx
from packaging.utils import canonicalize_name

from .. import outbound
from ..errors import RegistryError
from ..upstream.pages import ACCEPT, JSON, SameOrigin, entries, listed_files, origin, shown, split_credentials
from .core import Candidate, Sink

ATTEMPTS = 3  # a file whose transfer fails before its first byte is tried this often


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
        self.notes: list[str] = []  # what the importer found out and the user should know (printed)
        self.projects = list(projects)
        self._origin = origin(self.url)
        auth = None
        if user is not None or secret is not None:
            header = "Basic " + base64.b64encode(f"{user or ''}:{secret or ''}".encode()).decode()
            auth = SameOrigin(self._origin, header)
        self._client = outbound.client(
            httpx.Timeout(timeout, connect=15), follow_redirects=True, auth=auth, transport=transport,
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
                if origin(url) != self._origin:
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
        return entries(*page, what)

    async def _project_list(self) -> tuple[str, bool, bytes] | None:
        """The index's project list: at the URL given or, when that is the index's front page (it links
        to its `simple/`, as pypiserver's `/` does) or nothing (404), at its `simple/`, where pip's
        --index-url would point. (A front page read as a project list makes projects of its links.)"""
        page = await self._page(self.url, "its project list")
        simple = urljoin(self.url, "simple/")
        if simple == self.url or (page is not None and not _links_to(page, simple)):
            return page
        found = await self._page(simple, "its project list")
        if found is None:
            return page
        self.notes.append(f"{self.url} is the index's {'front page' if page else 'root (a 404)'}, not its Simple API: "
                          f"imported from {simple}, the index URL pip takes.")
        self.url = self.name = simple
        return found

    async def _project(self, name: str, explicit: bool) -> list[Candidate]:
        async with self._pages:
            page = await self._page(urljoin(self.url, quote(name) + "/"), f"project {name}")
        if page is None:
            if explicit:
                raise RegistryError(f"The index at {self.url} has no project {name!r} (a 404, or a redirect to "
                                    "another index).")
            return [Candidate(filename=f"{name}/", location=self.url, project=None,
                              error="the index lists this project, but its page is a 404 or elsewhere")]
        found = []
        for f in listed_files(*self._parse(page, f"project {name}")):
            found.append(Candidate(filename=f.filename, location=shown(f.url), project=name, hashes=f.hashes,
                                   upload_time=f.upload_time, url=f.url, size=f.size))
        return found

    async def candidates(self) -> tuple[list[Candidate], int]:
        explicit = bool(self.projects)
        names = [canonicalize_name(p) for p in self.projects]
        if not explicit:
            page = await self._project_list()
            if page is None:
                raise RegistryError(f"Nothing at {self.url} (404): give the index URL, the one pip's --index-url "
                                    "takes.")
            listed, _ = self._parse(page, "its project list")
            names = sorted({canonicalize_name(str(e["name"])) for e in listed if e.get("name")})
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


def _links_to(page: tuple[str, bool, bytes], target: str) -> bool:
    """Whether an HTML page links to ``target`` (a JSON page is a Simple API answer: it never does)."""
    url, is_json, body = page
    if is_json:
        return False
    try:
        found, base = entries(url, is_json, body, "its project list")
    except RegistryError:
        return False
    return any(urljoin(base, str(e.get("url", ""))).split("#")[0] == target for e in found)
