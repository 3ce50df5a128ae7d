"""The Litestar application: routes, error rendering, and background maintenance."""

from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
from litestar import Litestar, Request, Response, get
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException
from litestar.file_system import BaseLocalFileSystem
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from pipelines.verify import Verifier

from .. import __version__, allocator, apart, cache, locks, metrics, retention_runs
from ..blobs import BlobStore
from ..config import LOG_FORMAT, Settings
from ..datadir import Registry
from ..errors import RegistryError
from ..reads import Reader
from ..replica import Follower
from ..replica.run import run_replica
from ..webhooks.delivery import Deliverer
from . import (
    access,
    api,
    api_admin,
    api_preferences,
    api_retention,
    api_upstream,
    api_webhooks,
    eventlog,
    framework_caches,
    ledger_http,
    oidc,
    replication,
    scrape,
    shapes,
    simple,
)
from .answers import realm, refusal
from .bodies import RegistryRequest
from .credentials import Authenticator
from .front import FrontDoor
from .state import WebState
from .stopping import on_signals
from .ui import routes as ui

log = logging.getLogger("registry.web")
STATIC = Path(__file__).parent / "static"
SWAGGER_UI = "/_/static/swagger-ui"  # vendored (static/swagger-ui/README.md): nothing loads from outside
MAINTENANCE_INTERVAL = 60.0
COLLECT_EVERY = 10  # maintenance rounds between blob collections


@get("/_/health", sync_to_thread=False, include_in_schema=False)
def health(request: Request) -> dict:
    return health_of(request.app.state.web)


@get("/_/ready", include_in_schema=False)
async def ready(request: Request) -> Response:
    """Whether to send this server requests (a load balancer's question; /_/health is the operator's):
    503 while the blob store can't be reached, the ledger is damaged, or a replica is stopped or
    further behind its primary than REGISTRY_READY_MAX_LAG_SECONDS; 200 otherwise (a disk running
    low, or files missing from the store, are /_/health's to report: other servers would do no better).
    The store is asked at most once a second per worker (readiness.py); `checked` says how many seconds
    ago this answer's was."""
    state: WebState = request.app.state.web
    answer = await anyio.to_thread.run_sync(health_of, state)
    why = []
    problem, age = await state.store_check.problem(state.registry.blobs)
    if problem is not None:
        why.append(f"The blob store can't be reached: {problem}")
    if "damage" in answer:
        why.append(f"The ledger is damaged ({answer['damage']} problem(s) a crash recovery found): run `registry "
                   "verify` for details.")
    if answer.get("stopped"):
        why.append(f"This replica stopped following its primary: {answer['stopped']}")
    limit = state.registry.settings.ready_max_lag_seconds
    if answer.get("lag", {}).get("seconds", 0) > limit:
        lag = answer["lag"]
        why.append(f"This replica is {lag['seconds']:.0f} s ({lag['commits']} commit(s)) behind its primary, more "
                   f"than REGISTRY_READY_MAX_LAG_SECONDS={limit:g}.")
    body = {"ready": not why, "reasons": why, "role": answer["role"], "ledger": answer["ledger"],
            "checked": round(age, 3)}
    return Response(body, status_code=503 if why else 200, headers={"cache-control": "no-store"})


def health_of(state: WebState) -> dict:
    """What /_/health answers: the ledger's state, a replica's lag, the blob store's and the disk's."""
    if state.replica is not None:
        return _storage(state, state.replica.health())
    damage = state.registry.ledger.damage.unresolved()
    if damage:  # (still 200: everything else is served; monitoring reads the status)
        return _retention(state, _storage(state, {
            "status": "damaged", "role": "primary", "ledger": state.registry.ledger.head(), "damage": len(damage),
            "action": "A crash recovery found files missing or altered; run `registry verify` for details."}))
    return _retention(state, _storage(state, {"status": "ok", "role": "primary",
                                              "ledger": state.registry.ledger.head()}))


def _storage(state: WebState, answer: dict) -> dict:
    """The blob store's and the disk's part of the health: files the ledger names that the store
    lacks (damage), and the free space of the data directory's disk against its floor."""
    reg = state.registry
    missing = len(reg.missing.entries())
    disk = reg.disk.report()
    answer["blobs"] = {"missing": missing}
    answer["disk"] = disk
    if missing and answer["status"] in ("ok", "damaged"):
        answer["status"] = "damaged"
        bucket = _bucket(reg.blobs)
        answer["action"] = " ".join(filter(None, [answer.get("action"), (
            f"{missing} file(s) the ledger records are missing from the blob store: downloads of them are 503s. "
            "Run `registry verify` for the list" + (f"; if the files were moved to the bucket, run `registry blobs "
                                                    f"migrate --to {bucket}` again where the old files are."
                                                    if bucket is not None else "."))]))
    if disk["state"] != "ok" and answer["status"] == "ok":
        answer["status"] = f"disk-{disk['state']}"  # (disk-low: uploads are refused; disk-full: all writes)
        answer["action"] = (f"The data directory's disk has {disk['free']} bytes free (it keeps {disk['floor']} "
                            "free, REGISTRY_MIN_FREE_BYTES): " + ("uploads are" if disk["state"] == "low" else
                                                                  "writes are") + " refused (507); reads go on. "
                            "Free space there (`registry gc` frees deleted files) or grow the disk.")
    return answer


def _retention(state: WebState, answer: dict) -> dict:
    """The server's retention runs (a primary's): the setting, the last run's counts, the next run.
    Counts only: /_/health answers anyone, and what was deleted where is the workspaces' admins' (the
    retention API, the Storage tab)."""
    s = retention_runs.schedule(state.registry.settings)
    last = s.last_run
    answer["retention"] = {
        "apply": s.apply, "interval_seconds": s.interval_seconds,
        "next_run": s.next_run.isoformat() if s.next_run else None,
        "last_run": None if last is None else {
            "started": last.started.isoformat(), "finished": last.finished.isoformat(), "deleted": last.deleted,
            "refused": last.refused, "failed": bool(last.failed)}}
    if last is not None and last.failed and s.next_run is not None and answer["status"] == "ok":
        answer["status"] = "retention-failed"
        answer["action"] = (f"The server's last retention run stopped before it was done (the server's log says why; "
                            "so does GET /api/workspaces/<ws>/retention to the admins of the workspace it stopped in). "
                            f"The next run tries again at {s.next_run.isoformat()}; `registry retention apply` runs "
                            "it now.")
    return answer


def _registry_error(request: Request, exc: RegistryError) -> Response:
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    if request.url.path == ui.PREFIX or request.url.path.startswith(ui.PREFIX + "/"):
        return ui.error_page(request, exc)  # (a page, never a Basic prompt)
    ws = request.path_params.get("ws") if hasattr(request, "path_params") else None
    return refusal(exc, realm(ws), path=request.url.path).response()


def _http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if exc.detail and exc.detail != "Not Found" else f"No such page: {request.url.path}"
    if exc.status_code == 400 and detail.startswith("JSON is malformed"):
        example = ' Send {"reason": "..."}, or no body at all.' if request.url.path.endswith("/yank") else ""
        detail = f"The request body is not valid JSON ({detail.removeprefix('JSON is malformed: ')}).{example}"
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and extra:  # request validation: say which field and why
        detail += ": " + "; ".join(f"{e.get('key', '?')}: {e.get('message', '')}" for e in extra if isinstance(e, dict))
    return _registry_error(request, RegistryError(detail, status=exc.status_code))


class _StaticFiles(BaseLocalFileSystem):
    """The static files, where a name no file can have (too long, a NUL) is simply not found."""

    async def info(self, path, **kwargs):
        try:
            return await super().info(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(path) from exc


def _warm(state: WebState) -> None:
    """Build each workspace's package list and summaries once, off the request path: the first list
    request then costs what the rest do."""
    try:
        Reader(state.registry).warm()
    except Exception:
        log.exception("warming the package lists failed (they are built on first use instead)")


def _bucket(store: BlobStore) -> str | None:
    """The URL of the bucket the blobs are in, if they are in one."""
    if not store.remote:
        return None
    from ..blobs.s3 import S3BlobStore  # (loaded already: the store is one; the only remote store)

    return str(store.location).rstrip("/") if isinstance(store, S3BlobStore) else None


def _check_blobs(state: WebState) -> None:
    """Once after start, in the background (one worker): the files the ledger names that the store
    lacks, by one listing of the store, for /_/health. A registry started on a bucket that misses
    files (restarted on it before the last `blobs migrate`) says so within seconds of starting, not
    at the first download of one; the collector's passes and `registry verify` keep it current."""
    try:
        with state.registry.missing.checking() as mine:
            if mine:
                found = apart.walk("check_blobs", state.registry)  # (a big ledger's walk: in a child)
                if found:
                    log.error("%d file(s) the ledger records are missing from the blob store; `registry verify` "
                              "lists them", found)
    except Exception as exc:  # (a bucket that doesn't answer: the next collection checks again)
        log.warning("checking the blob store for missing files failed: %s", getattr(exc, "message", exc))


async def _collect(reg: Registry) -> None:
    """A collection of unreferenced blobs, unless another worker of the server is making one (their
    rounds line up: one walk at a time is enough)."""
    fd = locks.first(reg.settings.collect_lock_path)
    if fd is None:
        return
    try:
        done = await anyio.to_thread.run_sync(partial(apart.walk, "collect", reg, reg.settings.gc_grace_seconds))
    finally:
        os.close(fd)
    if done["freed"]:
        log.info("freed %d unreferenced blobs (%d bytes)", done["freed"], done["bytes"])


def _maintenance(state: WebState, signals: bool):
    @asynccontextmanager
    async def lifespan(app: Litestar):
        async def _counting() -> None:  # (requests and cache lookups are tallied: the metrics get them here)
            rounds = 0
            while True:
                await anyio.sleep(metrics.FLUSH_SECONDS)
                metrics.flush()
                rounds += 1
                if rounds % scrape.CACHE_ROUNDS == 0:
                    metrics.caches_seen(cache.counts())

        async def loop() -> None:
            rounds = 0
            while True:
                await anyio.sleep(MAINTENANCE_INTERVAL)
                rounds += 1
                try:
                    state.registry.catch_up_history(background=True)
                    await anyio.to_thread.run_sync(state.registry.ledger.maybe_repack)
                    await anyio.to_thread.run_sync(allocator.trim)  # (what the last minute's requests freed)
                    if state.replica is not None:
                        continue  # (a replica deletes nothing: the primary's collector decides what goes)
                    await anyio.to_thread.run_sync(state.registry.blobs.sweep_staging)
                    if rounds % COLLECT_EVERY == 0:
                        await _collect(state.registry)
                except Exception:  # maintenance must never take the server down
                    log.exception("background maintenance failed")

        state.registry.catch_up_history(background=True)  # (the history index may be behind: never a reader's wait)
        threading.Thread(target=_warm, args=(state,), name="warm-lists", daemon=True).start()
        deliverer = scheduler = None
        if state.replica is None:  # (a replica's holes are its follower's to fill; its primary delivers webhooks)
            threading.Thread(target=_check_blobs, args=(state,), name="check-blobs", daemon=True).start()
            deliverer = Deliverer(state.registry)  # (one worker's delivers: the others wait for its lock)
            deliverer.start()
            if state.registry.settings.retention_runs:  # (likewise one worker's; a replica deletes nothing)
                scheduler = retention_runs.Scheduler(state.registry)
                scheduler.start()
        try:  # (a bucket's clients are made now, rather than by the first request)
            await anyio.to_thread.run_sync(state.registry.blobs.check)
            await state.registry.blobs.aopen()
        except RegistryError as exc:
            log.error("%s", exc.message)  # (still serving: the index and metadata need no bucket)
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            app.state.head_watch = ledger_http.HeadWatch(state.registry.ledger)  # (wakes `?wait=` long polls)

            async def stop() -> None:  # (SIGINT, SIGTERM: long polls answered now, the rest within seconds)
                app.state.head_watch.stop()
                if deliverer is not None:
                    deliverer.stop()
                if scheduler is not None:
                    scheduler.stop()
                await state.stopping.stop()
                access.flush()  # (the lines of what was just answered)

            if signals:
                on_signals(stop)
            tg.start_soon(app.state.head_watch.watch)
            if state.replica is not None:
                tg.start_soon(run_replica, state.registry, state.replica)
            tg.start_soon(_counting)
            yield
            await stop()
            tg.cancel_scope.cancel()
        metrics.caches_seen(cache.counts())
        metrics.flush()
        metrics.exited(os.getpid())
        if state.forwarder is not None:
            await state.forwarder.aclose()
        if state.upstreams is not None:
            await state.upstreams.aclose()
        await state.registry.blobs.aclose()
        access.flush()

    return lifespan


def create_app(settings: Settings | None = None, registry: Registry | None = None,
               verifier: Verifier | None = None, signals: bool = False) -> Litestar:
    """The app; ``signals``: it is the process's (granian's worker), and stops promptly on SIGINT/SIGTERM."""
    settings = settings or Settings.load()
    registry = registry or Registry.open(settings)
    cache.configure(settings)  # (the caches made below take their bounds from these)
    replica = Follower(settings, registry.ledger) if registry.primary is not None else None
    state = WebState(registry=registry, authenticator=Authenticator(verifier), replica=replica)
    app = Litestar(
        route_handlers=[
            health, ready, scrape.scrape,
            simple.root_index, *shapes.ROUTES,
            oidc.audience, oidc.mint_token,
            ledger_http.ledger_checkpoint, ledger_http.ledger_allowed_signers, ledger_http.ledger_checkpoint_key,
            ledger_http.ledger_git,
            replication.blob, replication.session_key,
            api.router,
            api_upstream.router,
            api_webhooks.router,
            api_admin.router,
            api_preferences.router,
            api_retention.router,
            ui.router,
            create_static_files_router("/_/static", directories=[STATIC], name="static", file_system=_StaticFiles(),
                                       cache_control=CacheControlHeader(max_age=86400, public=True)),
        ],
        state=State({"web": state}),
        request_class=RegistryRequest,
        template_config=ui.template_config(),
        exception_handlers={RegistryError: _registry_error, HTTPException: _http_error},
        request_max_body_size=1 * 2**20,  # uploads (front.py) set their own limit
        lifespan=[_maintenance(state, signals)],
        openapi_config=OpenAPIConfig(
            title="Registry API", version=__version__, path="/api/schema",
            description="Management and audit API of the registry: packages, versions, deletion, yanks, history. "
                        "Authenticate with HTTP Basic (email and API token) or a Bitbucket Pipelines token as Bearer.",
            security=[{"basic": []}, {"bearer": []}],
            components=Components(security_schemes={
                "basic": SecurityScheme(type="http", scheme="basic"),
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            }),
            render_plugins=[SwaggerRenderPlugin(
                js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js", css_url=f"{SWAGGER_UI}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_UI}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI}/favicon-32x32.png'>")],
        ),
    )
    framework_caches.remove(app)  # (Litestar's caches of what requests send: unbounded in bytes)
    return app


def create_asgi(settings: Settings | None = None, registry: Registry | None = None,
                verifier: Verifier | None = None, signals: bool = False) -> access.AccessLog:
    """The app as served: behind the front door, which takes uploads and repeat index requests, and
    the access log around it all (which also counts every request for the metrics and gives each
    answer its request id; REGISTRY_ACCESS_LOG=off keeps only that)."""
    app = create_app(settings, registry, verifier, signals)
    state: WebState = app.state.web
    chosen = state.registry.settings
    return access.AccessLog(FrontDoor(app), state.authenticator, writes=chosen.logs_access,
                            counts=chosen.metrics_access != "off", repeats=(state.repeats, state.registry.ledger.head))


def app_from_env() -> access.AccessLog:
    """The granian factory: each worker process builds its own app from REGISTRY_* settings."""
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    access.configure(settings.logs_access, sys.stderr, json=settings.logs_json)
    eventlog.configure(settings.event_log, sys.stderr)
    return create_asgi(settings, signals=True)
