"""How the registry answers what it doesn't serve as a page: refusals (plain text for the index,
files and uploads, which pip, uv, twine and curl show; RFC 9457 problem documents for the JSON APIs)
and redirects. The one way every refusal and redirect is rendered, by Litestar's handlers and by the
front door alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec

from ..errors import RegistryError
from .api_types import Problem
from .asgi import Send
from .guards import local_path

_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def realm(ws: str | None) -> str:
    """The Basic realm: per workspace, so clients keep one credential each (a path segment that is no
    workspace name, which could hold anything, gives the plain one)."""
    return f"registry {ws}" if ws and _SLUG.fullmatch(ws) else "registry"


@dataclass(frozen=True)
class Reply:
    """A refusal or a redirect as it goes out: the one way every error (and redirect) is rendered,
    by Litestar's handlers and by the front door alike."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def response(self) -> Response:
        return Response(self.body, status_code=self.status, headers=dict(self.headers))

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        headers = (*self.headers, ("content-length", str(len(self.body))))
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def send(self, send: Send) -> None:
        """Over raw ASGI (the front door and a replica's forwarder answer before Litestar does)."""
        await send({"type": "http.response.start", "status": self.status, "headers": self.asgi_headers()})
        await send({"type": "http.response.body", "body": self.body})


def wants_problem(path: str) -> bool:
    """The one rule: a refusal at ``path`` is a problem document where the JSON APIs answer (the
    management API, OIDC token exchange, the JSON API of the public index), and plain text elsewhere
    (the index, files, uploads: what pip, uv, twine and curl show)."""
    path = path.rstrip("/")
    return path.startswith(("/api/", "/_/oidc/")) or (path.endswith("/json") and "/pypi/" in path)


def problem_document(exc: RegistryError) -> bytes:
    """The one rendering of a refusal as an RFC 9457 problem document (``PROBLEM``)."""
    title = HTTPStatus(exc.status).phrase if exc.status in HTTPStatus._value2member_map_ else "Error"
    return msgspec.json.encode(Problem(title=title, status=exc.status, detail=exc.message))


def refusal(exc: RegistryError, realm: str = "registry", *, path: str,
            extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Plain text for the index, files and uploads (what pip, uv, twine and curl show); an RFC 9457
    problem document for the JSON APIs, as ``wants_problem`` decides by the request's ``path``. A 401
    says how to authenticate, so clients retry."""
    headers = [("cache-control", "no-store"), *extra]
    if exc.status == 401:
        headers.append(("www-authenticate", f'Basic realm="{realm}"'))
    if wants_problem(path):
        body = problem_document(exc)
        headers.append(("content-type", PROBLEM))
    else:
        body = (exc.message + "\n").encode()
        headers.append(("content-type", "text/plain; charset=utf-8"))
    return Reply(exc.status, tuple(headers), body)


def moved(path: str, query: str = "") -> Reply:
    """A 301 to ``path`` on this origin (whatever a path segment held, the header is ASCII; what is
    quoted stays so)."""
    location = quote(local_path(path), safe="/%:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")
    return Reply(301, (("location", location), ("cache-control", "max-age=3600"),
                       ("content-type", "text/plain; charset=utf-8")), b"")


PROBLEM = "application/problem+json"


_REFUSALS = {
    301: "The canonical URL of a name that isn't normalised (Location); nothing else is answered there.",
    400: "A parameter or body that isn't valid: `detail` says which and why.",
    401: "No credentials, and nothing here may be read without them (or it doesn't exist), or credentials that "
         "are none (an unknown, revoked or expired token: `detail` says which): retry with HTTP Basic (email and "
         "API token) or a pipeline's token as Bearer.",
    403: "The credentials lack a permission on something they may read (`detail` names it), or a pipeline's "
         "token was refused.",
    404: "It doesn't exist, or the caller may not read it (the two are answered alike).",
    409: "It exists already, or is already in the state asked for.",
    413: "The request body is too large.",
    503: "The ledger stayed busy with other writers: try again.",
    502: "An upstream index failed, and nothing cached here stands in: `detail` names it and what it answered.",
    504: "An upstream index didn't answer in time, and nothing cached here stands in: `detail` names it.",
}


def refusals(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of what else an operation may answer: problem documents (RFC 9457)."""
    return {s: ResponseSpec(None if s == 301 else Problem, description=_REFUSALS[s],
                            media_type="text/plain" if s == 301 else PROBLEM, generate_examples=False)
            for s in statuses}


def redirect(request: Request, path: str) -> Response:
    return moved(path, request.scope.get("query_string", b"").decode("latin-1")).response()


def has_trailing_slash(request: Request) -> bool:
    # Litestar strips the trailing slash from scope["path"]; the raw path keeps it.
    raw = request.scope.get("raw_path")
    if raw is None:
        return True
    return raw.split(b"?", 1)[0].endswith(b"/")
