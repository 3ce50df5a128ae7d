"""The Litestar application: routes, error rendering, and background maintenance."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from litestar import Litestar, Request, Response, get
from litestar.datastructures import CacheControlHeader, State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from pipelines.verify import Verifier

from .. import __version__, maintenance
from ..config import Settings
from ..errors import RegistryError
from ..operations import Registry
from ..reads import Reader
from ..replica import Follower
from ..replica.fill import Filler
from ..replica.follow import LEAD_EVERY
from . import api, files, ledger_http, oidc, past, replication, simple
from .ui import routes as ui
from .context import WebState, error_response, problem_response, realm
from .credentials import Authenticator
from .front import FrontDoor

log = logging.getLogger("registry.web")
STATIC = Path(__file__).parent / "static"
SWAGGER_UI = "/_/static/swagger-ui"  # vendored (static/swagger-ui/README.md): nothing loads from outside
MAINTENANCE_INTERVAL = 60.0
COLLECT_EVERY = 10  # maintenance rounds between blob collections


@get("/_/health", sync_to_thread=False, include_in_schema=False)
def health(request: Request) -> dict:
    state: WebState = request.app.state.web
    if state.replica is not None:
        return state.replica.health()
    damage = state.registry.ledger.damage.unresolved()
    if damage:  # (still 200: everything else is served; monitoring reads the status)
        return {"status": "damaged", "role": "primary", "ledger": state.registry.ledger.head(), "damage": len(damage),
                "action": "A crash recovery found files missing or altered; run `registry verify` for details."}
    return {"status": "ok", "role": "primary", "ledger": state.registry.ledger.head()}


def _wants_json(request: Request) -> bool:
    path = request.url.path.rstrip("/")
    return path.startswith(("/api/", "/_/oidc/")) or (path.endswith("/json") and "/pypi/" in path)


def _registry_error(request: Request, exc: RegistryError) -> Response:
    if exc.status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    if request.url.path == ui.PREFIX or request.url.path.startswith(ui.PREFIX + "/"):
        return ui.error_page(request, exc)  # (a page, never a Basic prompt)
    ws = request.path_params.get("ws") if hasattr(request, "path_params") else None
    if _wants_json(request):
        return problem_response(exc, realm(ws))
    return error_response(exc, realm=realm(ws))


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


def _warm(state: WebState) -> None:
    """Build each workspace's package list and summaries once, off the request path: the first list
    request then costs what the rest do."""
    try:
        Reader(state.registry).warm()
    except Exception:
        log.exception("warming the package lists failed (they are built on first use instead)")


def _maintenance(state: WebState):
    @asynccontextmanager
    async def lifespan(app: Litestar):
        async def loop() -> None:
            rounds = 0
            while True:
                await anyio.sleep(MAINTENANCE_INTERVAL)
                rounds += 1
                try:
                    state.registry.catch_up_history(background=True)
                    await anyio.to_thread.run_sync(state.registry.ledger.maybe_repack)
                    if state.replica is not None:
                        continue  # (a replica deletes nothing: the primary's collector decides what goes)
                    await anyio.to_thread.run_sync(state.registry.blobs.sweep_staging)
                    if rounds % COLLECT_EVERY == 0:
                        grace = state.registry.settings.gc_grace_seconds
                        done = await anyio.to_thread.run_sync(
                            lambda: maintenance.collect(state.registry, grace_seconds=grace, repack=False))
                        if done.freed:
                            log.info("freed %d unreferenced blobs (%d bytes)", done.freed, done.bytes)
                except Exception:  # maintenance must never take the server down
                    log.exception("background maintenance failed")

        state.registry.catch_up_history(background=True)  # (the history index may be behind: never a reader's wait)
        threading.Thread(target=_warm, args=(state,), name="warm-lists", daemon=True).start()
        try:  # (a bucket's clients are made now, rather than by the first request)
            await anyio.to_thread.run_sync(state.registry.blobs.check)
            await state.registry.blobs.aopen()
        except RegistryError as exc:
            log.error("%s", exc.message)  # (still serving: the index and metadata need no bucket)
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            if state.replica is not None:
                tg.start_soon(_follow, state)
            yield
            tg.cancel_scope.cancel()
        if state.forwarder is not None:
            await state.forwarder.aclose()
        await state.registry.blobs.aclose()

    return lifespan


async def _follow(state: WebState) -> None:
    """A replica's: every worker indexes the commits any of them fetched; the one that leads (the
    first to take the follow lock, another within a second or so when it dies) fetches the primary's
    new commits as they come, and the files the ledger references (fill.py), so they are here should
    the primary go away."""
    async def catch_up() -> None:
        seen = state.registry.ledger.head()
        state.registry.catch_up_history(background=True)
        while True:  # (the history index is derived: it follows whatever any worker fetched)
            await anyio.sleep(0.2)
            head = state.registry.ledger.head()
            if head != seen:
                state.registry.catch_up_history(background=True)
                seen = head

    async with anyio.create_task_group() as tg:
        tg.start_soon(catch_up)
        while not state.replica.lead():
            await anyio.sleep(LEAD_EVERY)
        tg.start_soon(Filler(state.registry, state.replica).run)
        await state.replica.follow()  # (returns only once stopped: the files held are still kept whole)


def create_app(settings: Settings | None = None, registry: Registry | None = None,
               verifier: Verifier | None = None) -> Litestar:
    settings = settings or Settings.load()
    registry = registry or Registry.open(settings)
    replica = Follower(settings, registry.ledger) if registry.primary is not None else None
    state = WebState(registry=registry, authenticator=Authenticator(verifier), replica=replica)
    return Litestar(
        route_handlers=[
            health,
            simple.root_index, simple.workspace_index, simple.project_detail,
            files.download, past.project_then, past.file_then,
            oidc.audience, oidc.mint_token,
            ledger_http.ledger_checkpoint, ledger_http.ledger_allowed_signers, ledger_http.ledger_checkpoint_key,
            ledger_http.ledger_git,
            replication.blob, replication.session_key,
            api.router,
            ui.router,
            create_static_files_router("/_/static", directories=[STATIC], name="static",
                                       cache_control=CacheControlHeader(max_age=86400, public=True)),
        ],
        state=State({"web": state}),
        template_config=ui.template_config(),
        exception_handlers={RegistryError: _registry_error, HTTPException: _http_error},
        request_max_body_size=1 * 2**20,  # uploads (front.py) set their own limit
        lifespan=[_maintenance(state)],
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


def create_asgi(settings: Settings | None = None, registry: Registry | None = None,
                verifier: Verifier | None = None) -> FrontDoor:
    """The app as served: behind the front door, which takes uploads and repeat index requests."""
    return FrontDoor(create_app(settings, registry, verifier))


def app_from_env() -> FrontDoor:
    """The granian factory: each worker process builds its own app from REGISTRY_* settings."""
    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_asgi(settings)
