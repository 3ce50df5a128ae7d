"""Distribution downloads (streamed, with Range and HEAD) and PEP 658 `.metadata` files.

A file's URL is `/<ws>/<project>/<version>/<filename>`, under the project page that links it, so
the link can be relative and the permission check is the project's own.
"""

from __future__ import annotations

import logging
import re

from litestar import Request, Response

from ..errors import Gone, NotFound, RegistryError
from ..reads import Reader, project_name
from ..replica.blobs import ensure_local
from . import upstream_files
from .answers import redirect
from .send import core_metadata, send_blob
from .state import reader, web_state

log = logging.getLogger("registry.web")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def download(request: Request, ws: str, project: str, version: str, filename: str) -> Response:
    """`/<ws>/<project>/<version>/<file>` (and `.metadata`): a file of today's index."""
    r = await reader(request)
    canonical = project_name(project)
    if canonical != project:
        return redirect(request, f"/{ws}/{canonical}/{version}/{filename}")
    return await any_file(request, r, ws, canonical, version, filename)


async def any_file(request: Request, r: Reader, ws: str, canonical: str, version: str, filename: str) -> Response:
    """A file of the workspace's own package, or, for a name it doesn't own (or one that tracks its
    upstream releases), of an upstream project (web/upstream.py)."""
    policy = r.upstream_for(ws)
    if not r.owns(ws, canonical):
        if policy is not None or (r.past and r.upstream_policy(ws) is not None):
            return await upstream_files.serve_file(request, r, ws, canonical, version, filename, policy)
    elif policy is not None and any(t.name == canonical for t in policy.tracks):
        try:
            return await serve_file(request, r, ws, canonical, version, filename)
        except NotFound:
            r.package(ws, canonical)  # (whoever may not read the package learns nothing of upstream's)
            return await upstream_files.serve_file(request, r, ws, canonical, version, filename, policy)
    return await serve_file(request, r, ws, canonical, version, filename)


async def serve_file(request: Request, r: Reader, ws: str, canonical: str, version: str, filename: str) -> Response:
    """A file (or its `.metadata`) as ``r`` sees it: today's index, or one of the past (as_of)."""
    is_metadata = filename.endswith(".metadata")
    wanted = filename.removesuffix(".metadata") if is_metadata else filename
    read, record, found = r.file(ws, canonical, version, wanted, metadata=is_metadata)
    repository = read.repository
    sha256 = found.metadata_sha256 if is_metadata else found.sha256
    blobs = web_state(request).registry.blobs
    await ensure_local(web_state(request).registry, found.sha256)  # (a replica without the bucket: from the primary)
    path = r.blob_path(found.sha256)
    metadata = None
    if path is None and not blobs.remote and (not is_metadata or r.blob_path(found.metadata_sha256) is None):
        _raise_if_gone(r, ws, canonical, record, found, wanted)
    if is_metadata:
        metadata = await core_metadata(web_state(request).registry, found)
        size, path = len(metadata), None
    else:
        if path is None and not blobs.remote:
            raise _missing(r, found)
        size = path.stat().st_size if path is not None else found.size  # (a bucket's object: as recorded)
    return await send_blob(request, sha256=sha256, size=size, path=path, filename=filename, public=repository.public,
                           metadata=metadata, gone=lambda: _raise_if_gone(r, ws, canonical, record, found, wanted),
                           missing=lambda: _missing(r, found),
                           # (today's files only: one of the past may be collected with no commit)
                           holds=None if r.past else (r.now.commit_id, r.who.expires))


def _raise_if_gone(r: Reader, ws: str, canonical: str, record, found, wanted: str) -> None:
    deleted = r.deleted_by(ws, canonical, record, found)
    if deleted is not None:  # (a file of the past, deleted since and collected)
        raise Gone(f"{wanted} was deleted {f'by commit {deleted}' if deleted else 'since'} (after commit "
                   f"{r.commit}), and its bytes are no longer stored.")


def _missing(r: Reader, found) -> RegistryError:
    """A file the ledger names and the store lacks: damage, recorded for /_/health (a 503)."""
    r.reg.missing.add(found.sha256, found.filename)
    return r.reg.blobs.missing(found.sha256, repr(found.filename))

