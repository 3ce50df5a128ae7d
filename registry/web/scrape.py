"""GET /_/metrics: every worker's counts in the Prometheus text format (registry/metrics.py), and the
gauges read when it is asked (the journal, the history index, a replica's lag).

Who may read it is REGISTRY_METRICS: "loopback" (a request from this host that no proxy forwarded,
or a witness or replica token: the operator's tokens that read the whole ledger already), "token"
(only those tokens), "off" (404); not given, "token" behind a proxy (a public URL set), else
"loopback" (`Settings.metrics_access`). The counts name no workspace, package or person, but they do show
how busy the registry is.
"""

from __future__ import annotations

import time
from datetime import datetime

import anyio
from litestar import Request, Response, get

from .. import cache, metrics
from ..errors import Forbidden, NotFound, Unauthorized
from ..identity import may_fetch_ledger
from .incoming import incoming
from .state import WebState, web_state

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
PROXIED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")  # (a proxy on this host: not this host's request)
TOKEN_HINT = "a witness or replica token (`registry token create EMAIL --witness`) as HTTP Basic or Bearer"


def from_this_host(request: Request) -> bool:
    client = request.scope.get("client")
    if not client or client[0] not in LOOPBACK:
        return False
    return not any(name in PROXIED for name, _ in request.scope["headers"])


async def _may_scrape(request: Request, state: WebState) -> None:
    mode = state.registry.settings.metrics_access
    if mode == "off":
        raise NotFound("Metrics are off on this registry (REGISTRY_METRICS=off); its operator can turn them on.")
    if mode == "loopback" and from_this_host(request):
        return
    who = (await state.authenticator.reader(state.registry, incoming(request.scope).authorization)).who
    where = " or from the registry's own host" if mode == "loopback" else ""
    if who.kind == "anonymous":
        raise Unauthorized(f"GET /_/metrics needs {TOKEN_HINT}{where}.")
    if not may_fetch_ledger(who):
        raise Forbidden(f"Your token may not read the metrics: they are the operator's. Use {TOKEN_HINT}{where}.")


@get("/_/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    """The metrics, for Prometheus (or anything that reads its text format)."""
    state = web_state(request)
    await _may_scrape(request, state)
    metrics.caches_seen(cache.counts())  # (this worker's, now; the others' within CACHE_ROUNDS flushes)
    metrics.flush()  # (both here, on the event loop's thread, where they run between scrapes too)
    body = await anyio.to_thread.run_sync(text, state)
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"cache-control": "no-store"})


def text(state: WebState) -> bytes:
    return metrics.exposition(metrics.Gauges(lambda: gauges(state)), flushed=True)


def gauges(state: WebState) -> dict[str, tuple[str, float | None]]:
    reg = state.registry
    found: dict[str, tuple[str, float | None]] = {
        "registry_ledger_journal_bytes": ("Bytes in the ledger's journal (what a crash now would replay)",
                                          reg.ledger.journal_bytes()),
        "registry_history_index_lag_commits": ("Ledger commits the history index has yet to take in",
                                               _or_none(reg.history.lag)),
    }
    if state.replica is not None:
        health = state.replica.health()
        contact = state.replica.status().get("last_contact")
        found |= {
            "registry_replica_lag_commits": ("Commits the primary has that this replica lacks",
                                             health["lag"]["commits"]),
            "registry_replica_lag_seconds": ("How long this replica has been behind its primary",
                                             health["lag"]["seconds"]),
            "registry_replica_checkpoint_age_seconds": ("Seconds since the primary's last checkpoint was fetched",
                                                        time.time() - datetime.fromisoformat(contact).timestamp()
                                                        if contact else None),
        }
    return found


def _or_none(read) -> float | None:
    try:
        return float(read())
    except Exception:  # (a gauge that can't be read now is left out, not the scrape failed)
        return None


CACHE_ROUNDS = 5  # another worker's cache counts are at most this many metrics.FLUSH_SECONDS old in a scrape
