"""Upstream projects through a workspace's own index: `/<ws>/<name>/` for a name the workspace
doesn't own answers with the first upstream index (in priority order) that has it, filtered by the
workspace's rules (upstream/policy.py); an owned name the workspace tracks adds upstream's releases
it lacks. The index as it stood at a commit (`/<ws>/@<ref>/<name>/`) lists the files fetched by
then, which reproduces an install that used them. Their files: upstream_files.py. Shared by both:
`view` (what is offered now), metadata fetched and kept as a cache (ahead of the resolver, too),
and a read replica's asking its primary.

Who reads upstream projects, and how an owned name is kept from upstream: reads/upstream.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import anyio
import httpx
from litestar import Request, Response
from litestar.response import Stream
from packaging.utils import canonicalize_version

from .. import model
from ..errors import Forbidden, NotFound, RegistryError
from ..model import UpstreamFile, UpstreamPolicy
from ..outbound import describe
from ..reads import Reader
from ..upstream.fetching import Fetched, UpstreamFailed, Upstreams
from ..upstream.policy import Decided, Offer, decide, name_refused, version_of
from ..upstream.pulling import Pulls
from .caches import Page, matches
from .negotiation import CONTENT_TYPES
from .simple_render import Row, render_rows
from .simple_render import rows as own_rows
from .state import WebState, web_state

log = logging.getLogger("registry.web")
STALE_HEADER = "x-upstream-stale"  # on an answer made from a cached upstream page while its index failed


def upstreams(state: WebState) -> Upstreams:
    if state.upstreams is None:
        state.upstreams = Upstreams(state.registry.settings)
        state.pulls = Pulls(state.upstreams.root)
    return state.upstreams


@dataclass(frozen=True)
class View:
    """What a workspace offers of one upstream project now."""

    fetched: Fetched
    decided: Decided


async def view(request: Request, r: Reader, ws: str, name: str, policy: UpstreamPolicy,
               own_versions: frozenset[str] = frozenset()) -> View | None:
    """The first index, in priority order, that has the project, and what of it is offered; None if
    none has it. An index that fails with nothing cached ends the search (UpstreamFailed): a later
    one is never asked instead, or a lower-priority index could answer for a name a higher one holds."""
    ups = upstreams(web_state(request))
    for index in policy.upstreams:
        fetched = await ups.project(ws, index, name)
        if fetched.page.found:
            decided = decide(policy, ws, name, fetched.page.listed(), r.upstream_files(ws, name),
                             fetched.page.first_seen, datetime.now(UTC), own_versions)
            return View(fetched, decided)
    return None


def _rows(offers: list[Offer]) -> list[Row]:
    return [Row(filename=o.listed.filename, url=f"{quote(o.version)}/{quote(o.listed.filename)}", sha256=o.sha256,
                requires_python=o.listed.requires_python,
                metadata_sha256=o.recorded.metadata_sha256 if o.recorded else o.listed.metadata_sha256,
                yanked=o.listed.yanked, size=o.recorded.size if o.recorded else o.listed.size,
                upload_time=o.listed.upload_time) for o in offers]


def _recorded_rows(files: dict[str, UpstreamFile]) -> list[Row]:
    return [Row(filename=f.filename, url=f"{quote(f.version)}/{quote(f.filename)}", sha256=f.sha256,
                requires_python=f.requires_python, metadata_sha256=f.metadata_sha256, yanked=None, size=f.size,
                upload_time=f.upload_time) for f in sorted(files.values(), key=lambda f: f.filename)]


def row_versions(rows: list[Row], name: str) -> list[str]:
    found = {v for row in rows if (v := version_of(row.filename, name))}
    return sorted(found, key=model.release_key)


def answer(request: Request, r: Reader, page: Page, stale: str | None, until: float | None) -> Response:
    """A page with an upstream project's files. Remembered for repeat requests (front.py) while the
    ledger's tip, the caller's credentials and the upstream page it was made from hold (``until``:
    when that page is to be asked for again, or a release comes out of its cooldown; None: for as
    long as the tip holds, as a page of the past does); never when made from a stale copy."""
    headers = [(b"etag", page.etag.encode()), (b"vary", b"Accept, Authorization"),
               (b"cache-control", b"private, max-age=0, must-revalidate")]
    if stale:
        headers.append((STALE_HEADER.encode(), stale.encode("latin-1", "replace")))
    else:
        expires = min((t for t in (r.who.expires, until) if t is not None), default=None)
        web_state(request).answers.remember(request.scope, r.now.commit_id, expires, page, headers)
    named = {k.decode(): v.decode("latin-1") for k, v in headers}
    if matches(page.etag, request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=named)
    return Response(page.body, status_code=200, headers={**named, "content-type": page.content_type})


def page_of(request: Request, what: tuple, rows: list[Row], fmt: str, render) -> Page:
    """The rendered page of these rows, from the page cache (keyed by a digest of the rows: they
    are what it shows, and a key holds no more than 32 bytes of them)."""
    digest = hashlib.sha256(repr(rows).encode()).digest()
    return web_state(request).pages.page((*what, digest, fmt), CONTENT_TYPES[fmt], render)


def until(found: View, ttl: int) -> float:
    """When what ``found`` offers may change without a commit: its page is due, or a release comes of age."""
    due = found.fetched.page.fetched + ttl
    return min(due, found.decided.changes_at.timestamp()) if found.decided.changes_at else due


async def project_page(request: Request, r: Reader, ws: str, name: str, policy: UpstreamPolicy | None,
                       fmt: str) -> Response:
    """The page of a name the workspace doesn't own, from upstream (``policy``: the caller may read
    upstream projects), or, on the index of the past, from the files fetched by then."""
    missing = f"Package {name!r} does not exist in workspace {ws}."
    if policy is not None and not r.past and web_state(request).replica is not None:
        return await via_primary(request)
    if r.past:
        files = r.upstream_files(ws, name) if r.upstream_policy(ws) is not None else {}  # (members only)
        if not files:
            raise r.hidden(ws, missing)
        rows = _recorded_rows(files)
        page = page_of(request, ("upstream-past", ws, name), rows, fmt,
                       lambda: render_rows(name, row_versions(rows, name), rows, fmt))
        return answer(request, r, page, None, None)
    if policy is None:
        raise r.hidden(ws, missing)
    refused = name_refused(policy, ws, name)
    if refused is not None:
        raise Forbidden(refused)
    found = await view(request, r, ws, name, policy)
    if found is None:  # (in the words a private package of the workspace is hidden with: the two read alike)
        raise NotFound(missing)
    rows = _rows(found.decided.offered)
    page = page_of(request, ("upstream", ws, name), rows, fmt,
                   lambda: render_rows(name, row_versions(rows, name), rows, fmt))
    prefetch_metadata(request, ws, found)
    due = until(found, web_state(request).registry.settings.upstream_ttl_seconds)
    return answer(request, r, page, found.fetched.stale, due)


async def tracked_page(request: Request, r: Reader, ws: str, package: model.Package, policy: UpstreamPolicy,
                       fmt: str) -> Response:
    """An owned name that tracks its upstream releases (PEP 708): its own releases, then upstream's
    it lacks (those fetched by then, on the index of the past)."""
    own = r.versions(ws, package.name)
    tracks: list[str] = []
    stale, due = None, None
    if r.past:
        extra = _recorded_rows(r.upstream_files(ws, package.name))
    else:
        try:
            found = await view(request, r, ws, package.name, policy,
                               frozenset(canonicalize_version(v.version) for v in own))
        except UpstreamFailed as exc:  # (the name's own releases are served whatever upstream does)
            found, stale = None, exc.message
        extra = _rows(found.decided.offered) if found else []
        if found is not None:
            tracks, stale = [found.fetched.page.url], found.fetched.stale
            due = until(found, web_state(request).registry.settings.upstream_ttl_seconds)
    files = own_rows(own, "") + extra
    versions_ = sorted({v.version for v in own} | set(row_versions(extra, package.name)), key=model.release_key)
    page = page_of(request, ("tracked", ws, package.name, tuple(tracks)), files, fmt,
                   lambda: render_rows(package.name, versions_, files, fmt, tracks))
    return answer(request, r, page, stale, due if due is not None else (None if r.past else time.time()))


async def metadata(state: WebState, ws: str, index: model.UpstreamIndex, url: str, wanted: str,
                   filename: str) -> bytes:
    """The metadata file of the wheel at ``url`` (its index declared sha256 ``wanted``): from the
    blob store's cache, else fetched (once for concurrent askers), checked, and cached."""
    reg = state.registry
    path = reg.blobs.local_path(wanted)
    if path is not None:
        data = await anyio.to_thread.run_sync(path.read_bytes)
        if hashlib.sha256(data).hexdigest() == wanted:
            return data
    ups = upstreams(state)

    async def fetch() -> bytes:
        seconds = reg.settings.upstream_timeout_seconds
        try:
            answer = await ups.client(ws, index).get(url + ".metadata")
        except httpx.HTTPError as exc:
            raise failed(index, filename, describe(exc, seconds), isinstance(exc, httpx.TimeoutException)) from None
        if answer.status_code != 200:
            raise failed(index, filename, f"it answered {answer.status_code}", False)
        if hashlib.sha256(answer.content).hexdigest() != wanted:
            raise failed(index, filename, "its bytes don't have the sha256 its page declares", False)
        await anyio.to_thread.run_sync(reg.blobs.put_cache, answer.content)
        return answer.content

    return await ups.once(("metadata", wanted), fetch)


PREFETCHED = 2  # metadata files fetched ahead for a page: the newest release's, for a resolver's next ask


def prefetch_metadata(request: Request, ws: str, found: View) -> None:
    """Fetch, in the background, the metadata of the newest release's wheels the page offers (a few,
    pure-Python first): what a resolver asks for next, so that its ask finds it here."""
    state = web_state(request)
    offers = [o for o in found.decided.offered if o.listed.yanked is None and o.listed.filename.endswith(".whl")
              and (o.recorded.metadata_sha256 if o.recorded else o.listed.metadata_sha256)]
    if not offers:
        return
    newest = max(model.release_key(o.version) for o in offers)
    chosen = sorted((o for o in offers if model.release_key(o.version) == newest),
                    key=lambda o: not o.listed.filename.endswith("-none-any.whl"))[:PREFETCHED]
    ups = upstreams(state)
    for o in chosen:
        wanted = o.recorded.metadata_sha256 if o.recorded else o.listed.metadata_sha256
        if wanted is None or state.registry.blobs.local_path(wanted) is not None:
            continue

        async def run(o: Offer = o, wanted: str = wanted) -> None:
            try:
                await metadata(state, ws, found.fetched.index, o.listed.url, wanted, o.listed.filename + ".metadata")
            except Exception as exc:  # (a prefetch: whoever asks for it gets the error then)
                log.debug("prefetching the metadata of %s failed: %s", o.listed.filename, exc)

        task = asyncio.get_running_loop().create_task(run())
        ups.background.add(task)
        task.add_done_callback(ups.background.discard)


# The headers of an answer a replica passes on from its primary.
_PASSED = ("content-type", "content-length", "content-disposition", "etag", "cache-control", "vary", "location",
           "www-authenticate", STALE_HEADER)


async def via_primary(request: Request) -> Response:
    """On a read replica: the primary's answer to this request (an upstream page or a file it hasn't
    recorded yet), asked with the caller's own credentials. The primary fetches and records; this
    replica holds the record once it has followed it."""
    state = web_state(request)
    assert state.replica is not None
    ups = upstreams(state)
    target = state.replica.primary + request.scope["raw_path"].decode("latin-1")
    if request.scope.get("query_string"):
        target += "?" + request.scope["query_string"].decode("latin-1")
    headers = {k: v for k in ("authorization", "accept", "if-none-match", "range")
               if (v := request.headers.get(k)) is not None}
    client = ups.primary_client()
    try:
        answer = await client.send(client.build_request(request.method, target, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        raise RegistryError(f"This read replica asks its primary ({state.replica.primary}) for upstream projects, "
                            f"and it didn't answer: {describe(exc, ups.settings.upstream_timeout_seconds)}.",
                            status=504 if isinstance(exc, httpx.TimeoutException) else 502) from None
    passed = {k: v for k in _PASSED if (v := answer.headers.get(k)) is not None}

    async def body():
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        finally:
            await answer.aclose()

    return Stream(body(), status_code=answer.status_code, headers=passed)


def failed(index: model.UpstreamIndex, filename: str, why: str, timeout: bool) -> UpstreamFailed:
    return UpstreamFailed(f"Upstream index {index.name!r} ({index.url}) failed for {filename}: {why}. Try again later, "
                          "or ask the operator to check the upstream.", status=504 if timeout else 502)
