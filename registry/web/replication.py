"""What a primary gives its read replicas, and nobody else (the operator and replica tokens): files by
sha256, for a replica that doesn't share the bucket, and the public key web sessions are checked with,
so a session made on the primary is good on its replicas (which can make none). (The ledger itself
is ledger_http.py's.)"""

from __future__ import annotations

import re

import anyio
from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Stream

from ..errors import Forbidden, NotFound, Unauthorized
from ..identity import Principal, may_read_blobs
from .state import reader, web_state
from .ui.viewer import session_keys

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _replica(who: Principal) -> None:
    if who.kind == "anonymous":
        raise Unauthorized("Authentication required: this is for read replicas, with a replica token "
                           "(`registry token create EMAIL --replica`).")
    if not may_read_blobs(who):
        raise Forbidden("Only the registry's read replicas (a replica token: `registry token create EMAIL --replica`, "
                        "by the operator) may read this.")


@get("/_/blobs/{sha256:str}", include_in_schema=False)
async def blob(request: Request, sha256: FromPath[str]) -> Response:
    """A file's bytes by their sha256, whatever package they belong to."""
    _replica((await reader(request)).who)
    if not _SHA256.fullmatch(sha256):
        raise NotFound("A file is named by its sha256: 64 lowercase hex digits.")
    blobs = web_state(request).registry.blobs
    headers = {"cache-control": "no-store"}
    try:
        size = await anyio.to_thread.run_sync(blobs.size, sha256)
        chunks = await blobs.open_stream(sha256, 0, size)
    except FileNotFoundError:
        raise NotFound(f"No file {sha256} is stored here.") from None
    return Stream(chunks, headers={**headers, "content-length": str(size)}, media_type="application/octet-stream")


@get("/_/replica/session-key", include_in_schema=False)
async def session_key(request: Request) -> Response:
    """The public key (hex) web session cookies are checked with: a replica can check, never sign."""
    _replica((await reader(request)).who)
    return Response(session_keys(request).public.hex() + "\n", media_type="text/plain",
                    headers={"cache-control": "no-store"})
