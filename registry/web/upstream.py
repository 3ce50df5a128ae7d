"""Upstream projects through a workspace's own index: `/<ws>/<name>/` for a name the workspace
doesn't own answers with the first upstream index (in priority order) that has it, filtered by the
workspace's rules (upstream/policy.py); its files are pulled through on their first download
(upstream/pulling.py), recorded in the ledger, and served from here afterwards. The index as it
stood at a commit (`/<ws>/@<ref>/<name>/`) lists the files fetched by then, which reproduces an
install that used them.

Who reads upstream projects, and how an owned name is kept from upstream: reads/upstream.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
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


def answer(request: Request, body: bytes, content_type: str, stale: str | None) -> Response:
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"etag": etag, "vary": "Accept, Authorization", "cache-control": "private, max-age=0, must-revalidate"}
    if stale:
        headers[STALE_HEADER] = stale
    if matches(etag, request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, status_code=200, headers={**headers, "content-type": content_type})


def _page(request: Request, key: tuple, fmt: str, render) -> Page:
    return web_state(request).pages.page(key, CONTENT_TYPES[fmt], render)


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
        page = _page(request, ("upstream-past", ws, name, r.upstream_state(ws, name), fmt), fmt,
                     lambda: render_rows(name, row_versions(rows, name), rows, fmt))
        return answer(request, page.body, page.content_type, None)
    if policy is None:
        raise r.hidden(ws, missing)
    refused = name_refused(policy, ws, name)
    if refused is not None:
        raise Forbidden(refused)
    found = await view(request, r, ws, name, policy)
    if found is None:
        raise NotFound(f"{missing[:-1]}, nor in its upstream indexes ({', '.join(u.name for u in policy.upstreams)}).")
    rows = _rows(found.decided.offered)
    page = _page(request, ("upstream", ws, name, r.upstream_state(ws, name), found.fetched.index.url,
                           found.fetched.page.fetched, tuple(rows), fmt), fmt,
                 lambda: render_rows(name, row_versions(rows, name), rows, fmt))
    return answer(request, page.body, page.content_type, found.fetched.stale)


async def tracked_rows(request: Request, r: Reader, ws: str, name: str, policy: UpstreamPolicy,
                       own: list[model.Version]) -> tuple[list[Row], list[str], str | None]:
    """For an owned name the policy tracks: the upstream releases it doesn't have itself, the page
    URL it tracks, and why a cached upstream page was used (None: a fresh one)."""
    if r.past:
        rows = _recorded_rows(r.upstream_files(ws, name))
        return rows, [], None
    try:
        found = await view(request, r, ws, name, policy, frozenset(canonicalize_version(v.version) for v in own))
    except UpstreamFailed as exc:  # (the name's own releases are served whatever upstream does)
        return [], [], exc.message
    if found is None:
        return [], [], None
    return _rows(found.decided.offered), [found.fetched.page.url], found.fetched.stale


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
    if found is None or offer is None or canonicalize_version(offer.version) != canonicalize_version(version):
        raise NotFound(f"{name} {version} has no file {filename!r} in workspace {ws} or its upstream indexes.")
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
    reg = web_state(request).registry
    path = reg.blobs.local_path(wanted)
    if path is not None:
        data = await anyio.to_thread.run_sync(path.read_bytes)
        if hashlib.sha256(data).hexdigest() == wanted:
            return await send_blob(request, sha256=wanted, size=len(data), path=None, filename=filename,
                                   public=False, metadata=data)
    index = found.fetched.index
    client = upstreams(web_state(request)).client(_ws(request), index)
    seconds = reg.settings.upstream_timeout_seconds
    try:
        answer = await client.get(offer.listed.url + ".metadata")
    except httpx.HTTPError as exc:
        raise _failed(index, filename, describe(exc, seconds), isinstance(exc, httpx.TimeoutException)) from None
    if answer.status_code != 200:
        raise _failed(index, filename, f"it answered {answer.status_code}", False)
    data = answer.content
    if hashlib.sha256(data).hexdigest() != wanted:
        raise _failed(index, filename, "its bytes don't have the sha256 its page declares", False)
    await anyio.to_thread.run_sync(reg.blobs.put_cache, data)
    return await send_blob(request, sha256=wanted, size=len(data), path=None, filename=filename, public=False,
                           metadata=data)


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
