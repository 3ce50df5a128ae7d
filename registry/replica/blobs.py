"""Files a replica's own store lacks (its data directory, or a bucket of its own): fetched from the
primary in the background (fill.py: every file the ledger references, by a durable cursor), or on
first read.

`GET /_/blobs/<sha256>` on the primary (a replica token's) streams the bytes; they are hashed as they
arrive, kept only if they are what their name says, and stored under it as an upload's are. Two
requests for the same missing file in one worker share one fetch. A replica on the primary's own
bucket finds every file there already, and fetches nothing.
"""

from __future__ import annotations

import logging

import anyio
import httpx

from .. import outbound
from ..cache import Cache
from ..errors import RegistryError
from ..outbound import describe, timeouts

log = logging.getLogger("registry.replica")
CHUNK = 256 * 1024
_fetching: dict[str, anyio.Event] = {}
# (files are immutable: once seen in the bucket, no more round trips for them)
_in_bucket = Cache("in-bucket", "a replica's files seen in its bucket, by sha256")


async def _held(reg, sha256: str) -> bool:
    if not reg.blobs.remote:
        return reg.blobs.local_path(sha256) is not None
    if _in_bucket.get(sha256):
        return True
    if await anyio.to_thread.run_sync(reg.blobs.exists, sha256):
        _in_bucket.put(sha256, True, 0)
        return True
    return False


async def ensure_local(reg, sha256: str, *, again: bool = False) -> None:
    """Make sure ``sha256`` is in this replica's blob store (a no-op on a primary). ``again``: fetch
    it even if a copy is there (one found torn); durable on return either way."""
    if reg.primary is None or (not again and await _held(reg, sha256)):
        return
    while sha256 in _fetching:
        await _fetching[sha256].wait()
        if await _held(reg, sha256):
            return
    _fetching[sha256] = done = anyio.Event()
    try:
        await _fetch(reg, sha256)
    finally:
        del _fetching[sha256]
        done.set()


async def _fetch(reg, sha256: str) -> None:
    url = f"{reg.primary}/_/blobs/{sha256}"
    token, seconds = reg.settings.follow_token, reg.settings.follow_timeout_seconds
    try:  # (each step bounded, not the whole: a big file comes at whatever speed it comes)
        async with outbound.client(timeouts(seconds), auth=("__token__", token) if token else None) as http:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace").strip()[:200]
                    raise RegistryError(f"This replica doesn't hold the file yet, and the primary at {reg.primary} "
                                        f"answered {response.status_code} for it ({body}).", status=502)
                with reg.blobs.stage() as staged:
                    async for chunk in response.aiter_bytes(CHUNK):  # (hashed and written off the event loop)
                        await anyio.to_thread.run_sync(staged.write, chunk)
                    got = staged.finish().sha256
                    if got != sha256:
                        raise RegistryError(f"The primary at {reg.primary} sent other bytes for file {sha256} "
                                            f"(sha256 {got}); nothing was stored. Its operator should run "
                                            "`registry verify`.", status=502)
                    await anyio.to_thread.run_sync(reg.blobs.adopt, staged)
    except httpx.HTTPError as exc:
        raise RegistryError(f"This replica doesn't hold the file yet, and the primary at {reg.primary} is "
                            f"unreachable ({describe(exc, seconds)}): retry once it is back.", status=503) from None
    log.info("fetched file %s from the primary", sha256)
