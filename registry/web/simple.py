"""The Simple Repository API (PEP 503/691/700/592/658/714): rendering and caching (negotiation.py
picks the representation).

Pages are rendered once per state of what they show and served from memory. A project page is
keyed by the git id of the package's directory in the ledger, which changes exactly when a version,
file or yank under it changes. The ETag is the hash of the page's bytes: it moves when what the
caller is shown moves, and never with what they may not see.
"""

from __future__ import annotations

from urllib.parse import quote

from litestar import HttpMethod, Request, Response, route

from ..errors import RegistryError
from ..model import Package
from ..reads import Reader, project_name
from . import upstream
from .answers import has_trailing_slash, redirect
from .caches import Page, matches
from .incoming import incoming
from .negotiation import CONTENT_TYPES, negotiate
from .simple_render import render_index, render_project
from .state import reader, web_state


def _headers(page: Page, public: bool) -> list[tuple[bytes, bytes]]:
    return [
        (b"etag", page.etag.encode()),
        (b"vary", b"Accept, Authorization"),
        # always revalidate: a publish must be visible on the next request; unchanged pages cost a 304
        (b"cache-control", b"public, max-age=0, must-revalidate" if public else b"private, max-age=0, must-revalidate"),
    ]


def _respond(request: Request, r: Reader, page: Page, public: bool) -> Response:
    headers = _headers(page, public)
    # valid while the tip holds: a page of the past too, since today's permissions decide who sees it
    web_state(request).answers.remember(request.scope, r.now.commit_id, r.who.expires, page, headers)
    if matches(page.etag, request.headers.get("if-none-match")):
        return Response(b"", status_code=304, headers=dict((k.decode(), v.decode()) for k, v in headers))
    return Response(page.body, status_code=200, headers={**{k.decode(): v.decode() for k, v in headers},
                                                         "content-type": page.content_type})


def _format(request: Request) -> str:
    seen = incoming(request.scope)
    return negotiate(seen.accept, seen.format)


def _page(request: Request, key: tuple, fmt: str, render) -> Page:
    return web_state(request).pages.page(key, CONTENT_TYPES[fmt], render)


# --- controllers ---------------------------------------------------------------------------------

GET_HEAD = [HttpMethod.GET, HttpMethod.HEAD]


@route("/", http_method=GET_HEAD, include_in_schema=False)
async def root_index(request: Request) -> Response:
    """One index across every workspace the caller can read (a name shared by two is left out, unless
    the caller's default workspace holds it)."""
    r = await reader(request)
    fmt = _format(request)
    default = r.default_workspace()
    seen: dict[str, tuple[str, str]] = {}
    shared: set[str] = set()
    preferred: set[str] = set()
    keys = []
    for ws, state, visible in r.everywhere():
        keys.append((ws, state, tuple(p.name for p in visible)))
        for p in visible:
            if p.name in seen:
                shared.add(p.name)
            if ws == default:
                preferred.add(p.name)
            if p.name not in preferred or ws == default:  # (the default's spelling of a shared name)
                seen[p.name] = (p.name, p.display_name)
    if r.who.kind == "anonymous" and not seen:
        raise r.hidden(None, "")
    projects = sorted(v for k, v in seen.items() if k not in shared or k in preferred)
    page = _page(request, ("root", fmt, default, tuple(keys)), fmt, lambda: render_index(projects, fmt))
    return _respond(request, r, page, public=False)


async def workspace_index(request: Request, ws: str) -> Response:
    """`/<workspace>/`: the workspace's project list. A name that is no workspace is looked up as a
    project across the caller's workspaces, so that `--index-url https://HOST` works too."""
    r = await reader(request)
    found = r.index(ws)
    if found is None:  # (a workspace the caller may not see is no workspace to them)
        return _aggregate_project(request, r, ws)
    if not has_trailing_slash(request):
        return redirect(request, f"/{ws}/")
    return index_page(request, r, ws, found)


def index_page(request: Request, r: Reader, ws: str, found: tuple[str | None, list[Package]]) -> Response:
    """A workspace's project list as ``r`` sees it (today's index, or one of the past): ``found``
    is what ``r.index`` gave."""
    fmt = _format(request)
    state, visible = found
    key = ("ws", ws, state, fmt, tuple(p.name for p in visible))
    projects = [(p.name, p.display_name) for p in visible]
    page = _page(request, key, fmt, lambda: render_index(projects, fmt))
    return _respond(request, r, page, public=False)


async def project_detail(request: Request, ws: str, project: str) -> Response:
    """`/<workspace>/<project>/`: a project's page."""
    return await project_page(request, await reader(request), ws, project, f"/{ws}/")


async def project_page(request: Request, r: Reader, ws: str, project: str, base: str) -> Response:
    """A project's page as ``r`` sees it (today's index, or one of the past), under ``base``: the
    workspace's own package, or, for a name it doesn't own, an upstream project (web/upstream.py)."""
    canonical = project_name(project)
    if canonical != project or not has_trailing_slash(request):
        return redirect(request, f"{base}{quote(canonical)}/")
    fmt = _format(request)
    if not r.owns(ws, canonical):
        policy = r.upstream_for(ws)
        if policy is not None or (r.past and r.upstream_policy(ws) is not None):
            return await upstream.project_page(request, r, ws, canonical, policy, fmt)
    read = r.package(ws, canonical)
    policy = r.upstream_for(ws)
    if policy is not None and any(t.name == canonical for t in policy.tracks):
        return await upstream.tracked_page(request, r, ws, read.package, policy, fmt)
    key = ("project", r.package_state(ws, canonical), fmt, "")
    page = _page(request, key, fmt, lambda: render_project(read.package, r.versions(ws, canonical), fmt, ""))
    return _respond(request, r, page, public=read.repository.public)


def _aggregate_project(request: Request, r: Reader, name: str) -> Response:
    canonical = project_name(name)
    if canonical != name or not has_trailing_slash(request):
        return redirect(request, f"/{quote(canonical)}/")
    fmt = _format(request)
    found = r.named_everywhere(canonical)
    if not found:
        raise r.hidden(None, f"No workspace you can read has a package {canonical!r} "
                             "(and no workspace you can read is named so).")
    default = r.default_workspace() if len(found) > 1 else None
    chosen = [p for p in found if p.workspace == default] or found
    if len(chosen) > 1:
        raise ambiguous(request, canonical, [p.workspace for p in found], default)
    package = chosen[0]
    base = f"../{quote(package.workspace)}/{quote(canonical)}/"
    key = ("project", r.package_state(package.workspace, canonical), fmt, base)
    page = _page(request, key, fmt,
                 lambda: render_project(package, r.versions(package.workspace, canonical), fmt, base))
    return _respond(request, r, page, public=False)


def ambiguous(request: Request, name: str, held_by: list[str], default: str | None) -> RegistryError:
    """The 409 of the root index for a name several workspaces the caller reads hold: which ones (only
    those: ``held_by`` is what the caller may read), the URL that pins one, and how to choose a default.
    (pip and uv don't show it: the README's troubleshooting says how to see it.)"""
    base = (web_state(request).registry.settings.public_url or str(request.base_url)).rstrip("/")
    urls = ", ".join(f"{ws} ({base}/{quote(ws)}/)" for ws in held_by)
    yours = f"your default workspace, {default}, doesn't hold it; " if default else ""
    return RegistryError(
        f"Package {name!r} exists in several workspaces you can read: {urls}. Install it from one workspace's "
        f"own index URL (e.g. pip install --index-url {base}/{quote(held_by[0])}/ {name}), or {yours}choose the "
        f"workspace this index takes such names from: `registry user default-workspace EMAIL WS`, "
        f"PUT /api/users/EMAIL/default-workspace, or under Your tokens in the web UI.", status=409)
