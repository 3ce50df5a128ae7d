"""Sending a stored file: its headers, a 304, a single range, a HEAD, a bucket's redirect, or its
bytes streamed from the blob store. Whose file it is, and whether the caller may have it, the
caller has decided (files.py for the workspace's own, upstream.py for upstream's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import anyio
from litestar import Request, Response
from litestar.response import Stream

from ..datadir import Registry
from ..disposition import attachment
from ..errors import RegistryError
from ..model import DistFile, UpstreamFile
from ..reads import records
from .caches import Page, matches
from .repeats import ANSWERED, FILE_LIMIT, StoredFile, read_at_once
from .state import web_state

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _nothing() -> None:
    return None


async def core_metadata(reg: Registry, f: DistFile | UpstreamFile) -> bytes:
    """A file's core metadata (PEP 658): the copy kept here read at once if it is small, as a small
    stored file is (repeats.read_at_once: a hop to a worker thread costs more than the read); else
    found or extracted again in a worker thread (records.core_metadata)."""
    kept = records.kept_core_metadata(reg, f, FILE_LIMIT)
    return kept if kept is not None else await anyio.to_thread.run_sync(records.core_metadata, reg, f)


async def send_blob(request: Request, *, sha256: str, size: int, path: Path | None, filename: str, public: bool,
                    metadata: bytes | None, gone: Callable[[], None] = _nothing,
                    missing: Callable[[], RegistryError] | None = None,
                    holds: tuple[str, float | None] | None = None) -> Response:
    """A stored file (or, given ``metadata``, those bytes as its `.metadata`): its headers, a 304,
    a range, a HEAD, a bucket's redirect or the bytes streamed. ``gone`` raises if the file is of
    the past and deleted since, ``missing`` is the refusal for bytes the store lacks. ``holds``: the
    commit and credentials' expiry the answer holds under, for a whole `.metadata` or small file to
    be answered again as a repeat (repeats.py)."""
    is_metadata = metadata is not None
    blobs = web_state(request).registry.blobs
    headers = {
        "etag": f'"{sha256}"',
        "accept-ranges": "bytes",
        # a filename never changes content, so any cache may keep it as long as it likes
        "cache-control": ("public" if public else "private") + ", max-age=31536000, immutable",
    }
    media_type = "text/plain" if is_metadata else "application/octet-stream"
    if not is_metadata:
        headers["content-disposition"] = attachment(filename)
    if matches(headers["etag"], request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=headers)
    to_bucket = web_state(request).registry.settings.blobs_redirect
    if path is None and not is_metadata and request.method == "GET" and to_bucket:
        # the bytes come from the bucket itself (Range included); the URL expires: never cached
        if sha256 in web_state(request).registry.missing.entries():  # (known damage: a 503 that says so)
            raise blobs.missing(sha256, repr(filename))
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
    if holds is not None and status == 200 and (metadata is not None or (path is not None and size <= FILE_LIMIT)):
        _repeatable(request, headers["etag"], holds, metadata, path, size, media_type)
    if request.method == "HEAD":
        return Response(b"", status_code=status, headers=headers, media_type=media_type)
    if metadata is not None:
        return Response(metadata[start:end + 1], status_code=status, headers=headers, media_type=media_type)
    if path is not None and end - start < FILE_LIMIT:  # (small: one read at once, as a repeat's, no worker thread)
        whole = read_at_once(path, start, end - start + 1)  # (gone or short: streamed, which says why)
        if whole is not None:
            return Response(whole, status_code=status, headers=headers, media_type=media_type)
    try:
        chunks = await blobs.open_stream(sha256, start, end - start + 1)
    except FileNotFoundError:
        gone()
        raise (missing() if missing else blobs.missing(sha256, repr(filename))) from None
    return Stream(chunks, status_code=status, headers=headers, media_type=media_type)


def _repeatable(request: Request, etag: str, holds: tuple[str, float | None], metadata: bytes | None,
                path: Path | None, size: int, media_type: str) -> None:
    """Mark a whole `.metadata` or small stored file as an answer the same request's bytes may get
    again (repeats.py) while ``holds`` (commit, credentials' expiry) does: a `.metadata` kept in the
    page cache by its hash, a file read from its path each time. (Its status and headers are taken
    as they are sent: access.py.)"""
    body: Page | StoredFile
    if metadata is not None:
        body = web_state(request).pages.put(("metadata", etag), Page(metadata, etag, media_type))
    else:
        assert path is not None
        body = StoredFile(str(path), size, etag)
    request.scope[ANSWERED] = (holds[0], holds[1], body)  # type: ignore[literal-required]  # (the scope is a dict)
