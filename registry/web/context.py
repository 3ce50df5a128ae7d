"""What every controller needs from a request: the registry, a snapshot, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

from litestar import Request, Response

from ..auth import Authenticator, Principal
from ..errors import RegistryError
from ..ledger import Snapshot
from ..operations import Registry

if TYPE_CHECKING:
    from .simple import Answers


@dataclass
class WebState:
    registry: Registry
    authenticator: Authenticator = field(default_factory=Authenticator)
    answers: Answers | None = None  # set by the app


def web_state(request: Request) -> WebState:
    return request.app.state.web


async def snapshot_and_principal(request: Request) -> tuple[WebState, Snapshot, Principal]:
    state: WebState = request.app.state.web
    snap = state.registry.ledger.snapshot()
    who = await state.authenticator.principal(snap, request.headers.get("authorization"))
    return state, snap, who


def error_response(exc: RegistryError, realm: str = "registry") -> Response:
    headers = {"cache-control": "no-store"}
    if exc.status == 401:
        headers["www-authenticate"] = f'Basic realm="{realm}"'
    return Response(exc.message + "\n", status_code=exc.status, media_type="text/plain", headers=headers)


def problem_response(exc: RegistryError, realm: str = "registry") -> Response:
    """RFC 9457 problem details, for the JSON APIs."""
    headers = {"cache-control": "no-store"}
    if exc.status == 401:
        headers["www-authenticate"] = f'Basic realm="{realm}"'
    title = HTTPStatus(exc.status).phrase if exc.status in HTTPStatus._value2member_map_ else "Error"
    body = {"type": "about:blank", "title": title, "status": exc.status, "detail": exc.message}
    return Response(body, status_code=exc.status, media_type="application/problem+json", headers=headers)


def redirect(request: Request, path: str) -> Response:
    query = request.scope.get("query_string", b"").decode("latin-1")
    location = path + (f"?{query}" if query else "")
    return Response(b"", status_code=301, media_type="text/plain", headers={"location": location, "cache-control": "max-age=3600"})


def has_trailing_slash(request: Request) -> bool:
    # Litestar strips the trailing slash from scope["path"]; the raw path keeps it.
    raw = request.scope.get("raw_path")
    if raw is None:
        return True
    return raw.split(b"?", 1)[0].endswith(b"/")
