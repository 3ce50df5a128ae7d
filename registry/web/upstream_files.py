"""Files of upstream projects, as the workspace's index serves them: once fetched, from the blob
store (at any commit since); before, pulled through from the index on their first download
(upstream/pulling.py: streamed while hashed, checked, stored, recorded by operations/upstream.py);
their PEP 658 metadata passed through. Which names and releases are offered is upstream.py's
`view`, as for the pages."""

from __future__ import annotations

import logging
import os
from functools import partial

import anyio
import httpx
from litestar import Request, Response
from litestar.response import Stream
from packaging.utils import canonicalize_version

from ..blobs import Digests, Staged
from ..disposition import attachment
from ..errors import Forbidden, NotFound, RegistryError
from ..model import UpstreamFile, UpstreamPolicy
from ..operations.upstream import record_fetch
from ..outbound import describe
from ..reads import Reader
from ..reads.records import versions
from ..replica.blobs import ensure_local
from ..upstream.pages import shown
from ..upstream.policy import name_refused
from .send import core_metadata, send_blob
from .state import web_state
from .upstream import Offer, View, failed, metadata, upstreams, via_primary, view

log = logging.getLogger("registry.web")


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
        return await _metadata(request, ws, found, offer, filename)
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
        data = await core_metadata(reg, f)
        assert f.metadata_sha256 is not None  # (core_metadata refuses a file without)
        return await send_blob(request, sha256=f.metadata_sha256, size=len(data), path=None, filename=filename,
                               public=False, metadata=data)
    path = reg.blobs.local_path(f.sha256)
    return await send_blob(request, sha256=f.sha256, size=f.size, path=path, filename=filename, public=False,
                           metadata=None)


async def _metadata(request: Request, ws: str, found: View, offer: Offer, filename: str) -> Response:
    """A wheel's PEP 658 metadata, as its index declared it: fetched, checked and kept as a cache."""
    wanted = offer.recorded.metadata_sha256 if offer.recorded else offer.listed.metadata_sha256
    if not wanted:
        raise NotFound(f"{offer.listed.filename} has no core metadata file: its index declares none (PEP 658).")
    data = await metadata(web_state(request), ws, found.fetched.index, offer.listed.url, wanted, filename)
    return await send_blob(request, sha256=wanted, size=len(data), path=None, filename=filename, public=False,
                           metadata=data)


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
        raise failed(index, filename, describe(exc, reg.settings.upstream_timeout_seconds),
                      isinstance(exc, httpx.TimeoutException)) from None
    if response.status_code != 200:
        await response.aclose()
        os.close(lock)
        raise failed(index, filename, f"it answered {response.status_code} for the file its page lists", False)

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
