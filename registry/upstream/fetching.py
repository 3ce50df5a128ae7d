"""Upstream project pages, fetched and cached: a worker's connections to each upstream index, and
the pages as last fetched, on disk in the data directory (shared by the workers, kept across
restarts, so a page can still be served while its index is down).

A page is used for ``upstream_ttl_seconds``, then asked for again with a conditional request
(`If-None-Match`, `If-Modified-Since`). A fetch that fails leaves the last page in use, and the
answer says so (`Fetched.stale`); with none, the refusal is a 502 (the index failed) or 504 (it
didn't answer in time) that names the index. Concurrent requests of one worker for one page wait
for one fetch.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urljoin

import httpx
import msgspec

from .. import metrics, outbound
from ..config import Settings
from ..errors import RegistryError
from ..model import UpstreamIndex
from ..outbound import describe, timeouts
from .credentials import credentials
from .pages import ACCEPT, JSON, Listed, SameOrigin, entries, listed_files, origin
from .policy import version_of

log = logging.getLogger("registry.upstream")
T = TypeVar("T")
REDIRECTS = 5


class CachedFile(msgspec.Struct, frozen=True, omit_defaults=True):
    filename: str
    url: str
    hashes: dict[str, str] = {}
    requires_python: str | None = None
    yanked: str | None = None
    upload_time: datetime | None = None
    size: int | None = None
    metadata_sha256: str | None = None


class CachedPage(msgspec.Struct, omit_defaults=True):
    """A project page as an index last gave it (``found`` False: it has no such project)."""

    url: str
    fetched: float  # when it was last fetched or confirmed (a 304), as a Unix time
    found: bool = True
    etag: str | None = None
    last_modified: str | None = None
    files: list[CachedFile] = []
    first_seen: dict[str, float] = {}  # version -> when this registry first saw it listed

    def listed(self) -> list[Listed]:
        return [Listed(**msgspec.structs.asdict(f)) for f in self.files]


class UpstreamFailed(RegistryError):
    """An upstream index failed (502) or didn't answer in time (504), and nothing cached stands in."""


@dataclass(frozen=True)
class Fetched:
    index: UpstreamIndex
    page: CachedPage
    stale: str | None = None  # why a cached page was served (the index failed), for a header


_decode = msgspec.json.Decoder(CachedPage)
_encode = msgspec.json.Encoder()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS settings of every connection to an index, made once (loading the CA bundle costs
    milliseconds a client otherwise)."""
    return ssl.create_default_context()


class Upstreams:
    """One worker's view of the upstream indexes: connections, and the shared page cache."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.upstream_cache_path
        self._clients: dict[tuple[str, str, str | None], httpx.AsyncClient] = {}
        self._flights: dict[object, asyncio.Future] = {}
        self.background: set[asyncio.Task] = set()  # (prefetches: held, or the loop may drop them)

    # --- connections ---------------------------------------------------------------------------

    def client(self, ws: str, index: UpstreamIndex) -> httpx.AsyncClient:
        """The connection pool for an index (its credentials, if any, sent to its own origin only):
        one per index and credentials, whichever workspaces use it."""
        secret = credentials(self.settings, ws, index.name) if index.credentials else None
        key = ("", index.url, hashlib.sha256(f"{secret.username}:{secret.password}".encode()).hexdigest()
               if secret else None)
        found = self._clients.get(key)
        if found is None:
            auth = None
            if secret is not None:
                header = "Basic " + base64.b64encode(f"{secret.username}:{secret.password}".encode()).decode()
                auth = SameOrigin(origin(index.url), header)
            seconds = self.settings.upstream_timeout_seconds
            found = self._clients[key] = outbound.client(
                timeouts(seconds), auth=auth, follow_redirects=False, verify=_tls(),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
                headers={"User-Agent": "registry-upstream"})
        return found

    def primary_client(self) -> httpx.AsyncClient:
        """On a read replica: the connections to its primary, which answers for upstream projects."""
        key = ("", "primary", None)
        found = self._clients.get(key)
        if found is None:
            seconds = self.settings.upstream_timeout_seconds
            found = self._clients[key] = outbound.client(
                timeouts(seconds, read=3 * seconds),
                follow_redirects=False, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
        return found

    async def aclose(self) -> None:
        for c in self._clients.values():
            await c.aclose()
        self._clients.clear()

    # --- pages ---------------------------------------------------------------------------------

    def _path(self, ws: str, index: UpstreamIndex, name: str) -> Path:
        digest = hashlib.sha256(f"{ws}\0{index.url}\0{name}".encode()).hexdigest()
        return self.root / "pages" / digest[:2] / f"{digest}.json"

    def cached(self, ws: str, index: UpstreamIndex, name: str) -> CachedPage | None:
        try:
            return _decode.decode(self._path(ws, index, name).read_bytes())
        except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
            return None  # (none, or torn by a crash: a cache, never synced)

    def _keep(self, ws: str, index: UpstreamIndex, name: str, page: CachedPage) -> None:
        path = self._path(ws, index, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temp.write_bytes(_encode.encode(page))
        os.replace(temp, path)

    async def project(self, ws: str, index: UpstreamIndex, name: str) -> Fetched:
        """The index's page for ``name``: cached while fresh, else fetched (one fetch for concurrent asks)."""
        cached = self.cached(ws, index, name)
        if cached is not None and time.time() - cached.fetched < self.settings.upstream_ttl_seconds:
            return Fetched(index, cached)
        return await self.once(self._path(ws, index, name), lambda: self._fetch(ws, index, name, cached))

    async def once(self, key: object, run: Callable[[], Awaitable[T]]) -> T:
        """``run()``'s result, awaited by every concurrent caller with the same ``key``: one call."""
        flight = self._flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            result = await run()
            flight.set_result(result)
            return result
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # (retrieved: no "never retrieved" warning when no one else waited)
            raise
        finally:
            del self._flights[key]

    async def _fetch(self, ws: str, index: UpstreamIndex, name: str, cached: CachedPage | None) -> Fetched:
        seconds = self.settings.upstream_timeout_seconds
        url = urljoin(index.url, quote(name) + "/")
        headers = {"Accept": ACCEPT}
        if cached is not None and cached.found:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        client = self.client(ws, index)
        try:
            async with asyncio.timeout(3 * seconds):  # (each step is bounded; the whole page too)
                for _ in range(REDIRECTS):
                    r = await client.get(url, headers=headers)
                    if not r.is_redirect or "location" not in r.headers:
                        break
                    url = urljoin(str(r.url), r.headers["location"])
                    if origin(url) != origin(index.url):
                        # (pypiserver sends projects it doesn't hold to its fallback: not this index's page)
                        r = httpx.Response(404)
                        break
        except (httpx.HTTPError, TimeoutError) as exc:
            timeout = isinstance(exc, (httpx.TimeoutException, TimeoutError))
            return self._failed(index, name, cached, describe(exc, seconds), 504 if timeout else 502)
        now = time.time()
        if r.status_code == 304 and cached is not None:
            page = msgspec.structs.replace(cached, fetched=now)
        elif r.status_code in (404, 410):
            page = CachedPage(url=url, fetched=now, found=False,
                              first_seen=cached.first_seen if cached else {})
        elif r.status_code == 200:
            is_json = r.headers.get("content-type", "").split(";")[0].strip() == JSON
            try:
                listed = listed_files(*entries(str(r.url), is_json, r.content, f"project {name}"))
            except RegistryError as exc:
                return self._failed(index, name, cached, exc.message, 502)
            seen = dict(cached.first_seen) if cached else {}
            for f in listed:
                v = version_of(f.filename, name)
                if v is not None:
                    seen.setdefault(v, now)
            page = CachedPage(url=str(r.url), fetched=now, etag=r.headers.get("etag"),
                              last_modified=r.headers.get("last-modified"),
                              files=[CachedFile(**f.__dict__) for f in listed], first_seen=seen)
        else:
            why = {401: "401 Unauthorized: its credentials are missing or wrong (`registry upstream add` sets them)",
                   403: "403 Forbidden: its credentials may not read this project"}.get(
                       r.status_code, f"{r.status_code} {r.reason_phrase}")
            return self._failed(index, name, cached, f"it answered {why}", 502)
        metrics.upstream_fetch("page")
        self._keep(ws, index, name, page)
        return Fetched(index, page)

    def _failed(self, index: UpstreamIndex, name: str, cached: CachedPage | None, why: str, status: int) -> Fetched:
        metrics.upstream_fetch("page", failed=True)
        said = f"upstream index {index.name!r} ({index.url}) failed for {name!r}: {why}"
        if cached is not None:
            log.warning("%s; serving its page as fetched %.0f s ago", said, time.time() - cached.fetched)
            return Fetched(index, cached, stale=f"{index.name}: {why}")
        raise UpstreamFailed(f"The {said}, and no copy of its page is cached here. Try again later, or ask the "
                             "operator to check the upstream.", status=status)


async def also_upstream(ups: Upstreams, ws: str, indexes: list[UpstreamIndex], names: list[str],
                        concurrency: int = 8) -> dict[str, str | None]:
    """For names the workspace owns: which upstream index also lists each (its name; None if none
    does, "?" if one failed to say). Pages come from the cache while fresh, as for the index."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> str | None:
        async with gate:
            for index in indexes:
                try:
                    fetched = await ups.project(ws, index, name)
                except UpstreamFailed:
                    return "?"
                if fetched.page.found and fetched.page.files:
                    return index.name
            return None

    found = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, found, strict=True))
