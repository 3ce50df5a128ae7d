"""Distribution downloads (streamed, with Range and HEAD) and PEP 658 `.metadata` files.

A file's URL is `/<ws>/<project>/<version>/<filename>`, under the project page that links it, so
the link can be relative and the permission check is the project's own.
"""

from __future__ import annotations

import logging
import re

import anyio
from litestar import Request, Response
from litestar.response import Stream

from ..disposition import attachment
from ..errors import Gone, RegistryError
from ..reads import Reader, project_name
from ..replica.blobs import ensure_local
from .answers import redirect
from .caches import matches
from .state import reader, web_state

log = logging.getLogger("registry.web")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def download(request: Request, ws: str, project: str, version: str, filename: str) -> Response:
    """`/<ws>/<project>/<version>/<file>` (and `.metadata`): a file of today's index."""
    r = await reader(request)
    canonical = project_name(project)
    if canonical != project:
        return redirect(request, f"/{ws}/{canonical}/{version}/{filename}")
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
    if path is None and not blobs.remote and (not is_metadata or r.blob_path(found.metadata_sha256) is None):
        _raise_if_gone(r, ws, canonical, record, found, wanted)
    if is_metadata:
        metadata = await anyio.to_thread.run_sync(r.core_metadata, found)
        size, path = len(metadata), None
    else:
        if path is None and not blobs.remote:
            raise _missing(r, found)
        size = path.stat().st_size if path is not None else found.size  # (a bucket's object: as recorded)
    headers = {
        "etag": f'"{sha256}"',
        "accept-ranges": "bytes",
        # a filename never changes content, so any cache may keep it as long as it likes
        "cache-control": ("public" if repository.public else "private") + ", max-age=31536000, immutable",
    }
    media_type = "text/plain" if is_metadata else "application/octet-stream"
    if not is_metadata:
        headers["content-disposition"] = attachment(filename)
    if matches(headers["etag"], request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=headers)
    to_bucket = web_state(request).registry.settings.blobs_redirect
    if path is None and not is_metadata and request.method == "GET" and to_bucket:
        # the bytes come from the bucket itself (Range included); the URL expires: never cached
        if sha256 in r.reg.missing.entries():  # (known damage: a 503 that says so, not the bucket's 404)
            raise r.reg.blobs.missing(sha256, repr(found.filename))
        url = blobs.url(sha256, filename)
        if url is not None:  # (always, here: a store that has no URLs keeps its files here, at `path`)
            return Response(b"", status_code=302, headers={"location": url, "cache-control": "no-store"})

    start, end, status = 0, size - 1, 200
    spec = request.headers.get("range")
    if spec and request.headers.get("if-range", headers["etag"]) == headers["etag"]:
        match = _RANGE.match(spec.strip())
        if match and match.group(1) + match.group(2):  # a single range; several: serve it whole
            first, last = match.group(1), match.group(2)
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start, end = max(size - int(last), 0), size - 1
            if start > end or start >= size:
                return Response(b"", status_code=416, headers={**headers, "content-range": f"bytes */{size}"},
                                media_type=media_type)
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
    headers["content-length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type=media_type)
    if is_metadata:
        return Response(metadata[start:end + 1], status_code=status, headers=headers, media_type=media_type)
    try:
        chunks = await blobs.open_stream(sha256, start, end - start + 1)
    except FileNotFoundError:
        _raise_if_gone(r, ws, canonical, record, found, wanted)
        raise _missing(r, found) from None
    return Stream(chunks, status_code=status, headers=headers, media_type=media_type)


def _raise_if_gone(r: Reader, ws: str, canonical: str, record, found, wanted: str) -> None:
    deleted = r.deleted_by(ws, canonical, record, found)
    if deleted is not None:  # (a file of the past, deleted since and collected)
        raise Gone(f"{wanted} was deleted {f'by commit {deleted}' if deleted else 'since'} (after commit "
                   f"{r.commit}), and its bytes are no longer stored.")


def _missing(r: Reader, found) -> RegistryError:
    """A file the ledger names and the store lacks: damage, recorded for /_/health (a 503)."""
    r.reg.missing.add(found.sha256, found.filename)
    return r.reg.blobs.missing(found.sha256, repr(found.filename))

