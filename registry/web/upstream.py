"""Upstream projects through a workspace's own index: `/<ws>/<name>/` for a name the workspace
doesn't own answers with the first upstream index (in priority order) that has it, filtered by the
workspace's rules (upstream/policy.py); its files are pulled through on their first download
(upstream/pulling.py), recorded in the ledger, and served from here afterwards. The index as it
stood at a commit (`/<ws>/@<ref>/<name>/`) lists the files fetched by then, which reproduces an
install that used them.

Who reads upstream projects, and how an owned name is kept from upstream: reads/upstream.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from urllib.parse import quote

import anyio
import httpx
from litestar import Request, Response
from litestar.response import Stream
from packaging.utils import canonicalize_version

from .. import model
from ..blobs import Digests, Staged
from ..disposition import attachment
from ..errors import Forbidden, NotFound, RegistryError
from ..model import UpstreamFile, UpstreamPolicy
from ..operations.upstream import record_fetch
from ..outbound import describe
from ..reads import Reader
from ..reads.records import core_metadata, versions
from ..replica.blobs import ensure_local
from ..upstream.fetching import Fetched, UpstreamFailed, Upstreams
from ..upstream.pages import shown
from ..upstream.policy import Decided, Offer, decide, name_refused, version_of
from ..upstream.pulling import Pulls
from .caches import Page, matches
from .negotiation import CONTENT_TYPES
from .send import send_blob
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


# --- files -----------------------------------------------------------------------------------------


async def serve_file(request: Request, r: Reader, ws: str, name: str, version: str, filename: str,
                     policy: UpstreamPolicy | None) -> Response:
    """A file of an upstream project: from here once fetched, else pulled through (today only)."""
    is_metadata = filename.endswith(".metadata")
    wanted = filename.removesuffix(".metadata") if is_metadata else filename
    state = web_state(request)
    recorded = r.upstream_files(ws, name).get(wanted) if policy is not None or r.past else None
    if r.past:
        if recorded is None or r.upstream_policy(ws) is None:  # (members only)
            raise r.hidden(ws, f"{name} {version} had no file {filename!r} at commit {r.commit}.")
        return await _send_recorded(request, recorded, is_metadata, filename)
    if policy is None:
        raise r.hidden(ws, f"Package {name!r} does not exist in workspace {ws}.")
    refused = name_refused(policy, ws, name)
    if refused is not None:
        raise Forbidden(refused)
    if recorded is not None and (state.registry.blobs.remote or r.blob_path(recorded.sha256) is not None):
        return await _send_recorded(request, recorded, is_metadata, filename)
    if state.replica is not None:  # (fetched by the primary, which records it: a replica commits nothing)
        return await via_primary(request)
    found = await view(request, r, ws, name, policy, _own_versions(r, ws, name))
    if found is not None and wanted in found.decided.withheld:
        raise Forbidden(found.decided.withheld[wanted])
    offer = found.decided.find(wanted) if found is not None else None
    if found is None:
        raise NotFound(f"Package {name!r} does not exist in workspace {ws}.")
    if offer is None or canonicalize_version(offer.version) != canonicalize_version(version):
        raise NotFound(f"{name} {version} has no file {filename!r}.")
    if wanted in found.decided.changed:
        raise RegistryError(f"Upstream {found.fetched.index.name!r} now serves other bytes as {wanted} than were "
                            "fetched before, and the bytes fetched then are no longer stored here: refused.",
                            status=502)
    if is_metadata:
        return await _metadata(request, found, offer, filename)
    if request.method == "HEAD":
        headers = {"accept-ranges": "none", "cache-control": "private, max-age=0"}
        if offer.listed.size is not None:
            headers["content-length"] = str(offer.listed.size)
        return Response(b"", status_code=200, headers=headers, media_type="application/octet-stream")
    return await _pull(request, r, ws, name, found, offer, filename)


def _own_versions(r: Reader, ws: str, name: str) -> frozenset[str]:
    if not r.owns(ws, name):
        return frozenset()
    return frozenset(canonicalize_version(v.version) for v in versions(r.snapshot, ws, name))


async def _send_recorded(request: Request, f: UpstreamFile, is_metadata: bool, filename: str) -> Response:
    reg = web_state(request).registry
    await ensure_local(reg, f.sha256)  # (a replica without the bucket: from the primary)
    if is_metadata:  # (kept as a cache, or extracted from the file again, as for a file published here)
        data = await anyio.to_thread.run_sync(core_metadata, reg, f)
        assert f.metadata_sha256 is not None  # (core_metadata refuses a file without)
        return await send_blob(request, sha256=f.metadata_sha256, size=len(data), path=None, filename=filename,
                               public=False, metadata=data)
    path = reg.blobs.local_path(f.sha256)
    return await send_blob(request, sha256=f.sha256, size=f.size, path=path, filename=filename, public=False,
                           metadata=None)


async def _metadata(request: Request, found: View, offer: Offer, filename: str) -> Response:
    """A wheel's PEP 658 metadata, as its index declared it: fetched, checked and kept as a cache."""
    wanted = offer.recorded.metadata_sha256 if offer.recorded else offer.listed.metadata_sha256
    if not wanted:
        raise NotFound(f"{offer.listed.filename} has no core metadata file: its index declares none (PEP 658).")
    data = await metadata(web_state(request), _ws(request), found.fetched.index, offer.listed.url, wanted, filename)
    return await send_blob(request, sha256=wanted, size=len(data), path=None, filename=filename, public=False,
                           metadata=data)


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
            raise _failed(index, filename, describe(exc, seconds), isinstance(exc, httpx.TimeoutException)) from None
        if answer.status_code != 200:
            raise _failed(index, filename, f"it answered {answer.status_code}", False)
        if hashlib.sha256(answer.content).hexdigest() != wanted:
            raise _failed(index, filename, "its bytes don't have the sha256 its page declares", False)
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


def _ws(request: Request) -> str:
    return request.path_params["ws"]


def _failed(index: model.UpstreamIndex, filename: str, why: str, timeout: bool) -> UpstreamFailed:
    return UpstreamFailed(f"Upstream index {index.name!r} ({index.url}) failed for {filename}: {why}. Try again later, "
                          "or ask the operator to check the upstream.", status=504 if timeout else 502)


async def _pull(request: Request, r: Reader, ws: str, name: str, found: View, offer: Offer,
                filename: str) -> Response:
    """Pull the file through (or wait for the pull already running, then serve what it stored)."""
    state = web_state(request)
    upstreams(state)
    assert state.pulls is not None
    reg = state.registry
    key = f"{ws}\0{name}\0{filename}"
    for _ in range(3):
        lock = await state.pulls.wait_for_other(key, within=max(60.0, 6 * reg.settings.upstream_timeout_seconds))
        if lock is not None:
            return await _fetch(request, r, ws, name, found, offer, filename, key, lock)
        # another pull ended: stored and recorded, or failed (then this one tries)
        stored = Reader(reg, r.who).upstream_files(ws, name).get(filename)
        if stored is not None and (reg.blobs.remote or reg.blobs.local_path(stored.sha256) is not None):
            return await _send_recorded(request, stored, False, filename)
    raise RegistryError(f"{filename} could not be fetched from upstream {found.fetched.index.name!r}: the fetches "
                        "of it failed; try again.", status=503)


async def _fetch(request: Request, r: Reader, ws: str, name: str, found: View, offer: Offer, filename: str,
                 key: str, lock: int) -> Response:
    """This worker pulls the file (holding ``lock``): the client gets its bytes as they arrive."""
    state = web_state(request)
    reg, index, listed, who = state.registry, found.fetched.index, offer.listed, r.who
    assert state.pulls is not None
    client = upstreams(state).client(ws, index)
    try:
        response = await client.send(client.build_request("GET", listed.url, headers={"Accept-Encoding": "identity"}),
                                     stream=True)
    except httpx.HTTPError as exc:
        os.close(lock)
        raise _failed(index, filename, describe(exc, reg.settings.upstream_timeout_seconds),
                      isinstance(exc, httpx.TimeoutException)) from None
    if response.status_code != 200:
        await response.aclose()
        os.close(lock)
        raise _failed(index, filename, f"it answered {response.status_code} for the file its page lists", False)

    def check(d: Digests) -> str | None:
        if listed.sha256 is not None and d.sha256 != listed.sha256:
            return (f"Upstream {index.name!r} sent {filename} with sha256 {d.sha256}, but its page declares "
                    f"{listed.sha256}: refused, and not stored.")
        if listed.size is not None and d.size != listed.size:
            return f"Upstream {index.name!r} sent {d.size} bytes of {filename}; its page declares {listed.size}."
        return None

    async def record(staged: Staged) -> None:
        d = staged.finish()
        entry = UpstreamFile(project=name, version=offer.version, filename=filename, sha256=d.sha256, size=d.size,
                             upstream=index.name, url=shown(listed.url), upload_time=listed.upload_time,
                             requires_python=listed.requires_python, metadata_sha256=listed.metadata_sha256,
                             fetched=who.provenance("upstream"))
        try:
            await anyio.to_thread.run_sync(partial(record_fetch, reg, who, ws, entry, staged))
        except RegistryError as exc:
            log.warning("fetched %s from upstream %s but did not record it: %s", filename, index.name, exc.message)

    headers = {"content-disposition": attachment(filename), "cache-control": "private, max-age=0"}
    if offer.sha256:
        headers["etag"] = f'"{offer.sha256}"'
    length = response.headers.get("content-length")
    if length and length.isdigit():
        headers["content-length"] = length
    chunks = state.pulls.pull(key, lock, response, reg.blobs.stage(), check, record)
    return Stream(chunks, status_code=200, headers=headers, media_type="application/octet-stream")
