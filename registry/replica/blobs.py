"""Files a replica's own store lacks (its data directory, or a bucket of its own): fetched from the
primary when published, or on first read.

`GET /_/blobs/<sha256>` on the primary (a replica token's) streams the bytes; they are hashed as they
arrive, kept only if they are what their name says, and stored under it as an upload's are. Two
requests for the same missing file in one worker share one fetch. A replica on the primary's own
bucket finds every file there already, and fetches nothing.
"""

from __future__ import annotations

import logging

import anyio
import httpx

from ..audit import T
from ..cache import Cache
from ..errors import RegistryError

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


async def ensure_local(reg, sha256: str) -> None:
    """Make sure ``sha256`` is in this replica's blob store (a no-op on a primary)."""
    if reg.primary is None or await _held(reg, sha256):
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


async def prefetch(reg, since: str) -> None:
    """The files the commits after ``since`` published (their Sha256 trailers), each unless here."""
    wanted = [sha for c in reg.ledger.walk(since=since) for sha in c.trailers_named(T.SHA256)]
    for sha256 in wanted:
        try:
            await ensure_local(reg, sha256)
        except RegistryError as exc:  # (a file deleted since, the primary gone: asked again on first read)
            log.info("not prefetched: %s", exc.message)


async def _fetch(reg, sha256: str) -> None:
    url = f"{reg.primary}/_/blobs/{sha256}"
    token = reg.settings.follow_token
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5),
                                     auth=("__token__", token) if token else None) as client:
            async with client.stream("GET", url) as response:
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
                            f"unreachable ({exc or type(exc).__name__}): retry once it is back.", status=503) from None
    log.info("fetched file %s from the primary", sha256)
