"""The Simple Repository API (PEP 503/691/700/592/658/714): rendering and caching (negotiation.py
picks the representation).

Pages are rendered once per state of what they show and served from memory. A project page is
keyed by the git id of the package's directory in the ledger, which changes exactly when a version,
file or yank under it changes. The ETag is the hash of the page's bytes: it moves when what the
caller is shown moves, and never with what they may not see.
"""

from __future__ import annotations

from urllib.parse import quote

import jinja2
import msgspec
from litestar import HttpMethod, Request, Response, route
from markupsafe import Markup

from .. import model
from ..errors import RegistryError
from ..model import Package
from ..reads import Reader, project_name
from .answers import has_trailing_slash, redirect
from .caches import Page, matches
from .incoming import incoming
from .negotiation import API_VERSION, CONTENT_TYPES, JSON, negotiate
from .state import reader, web_state

# --- rendering -----------------------------------------------------------------------------------

# The HTML pages (PEP 503), compiled once and autoescaped. markupsafe spells two escapes otherwise
# than html.escape, which these pages have always used: `"` is `&#34;` there, `&quot;` here, and
# `'` is `&#39;`, `&#x27;` here. Only an escaped quote can give either spelling (an `&` in a value
# is `&amp;`; the templates have neither), so the rendered page is respelled: the same bytes as ever.
_RESPELL = (("&#34;", "&quot;"), ("&#39;", "&#x27;"))


_TEMPLATES = {
    "page": (  # (``rows``: the page's lines, rendered already; an empty page has one empty line)
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="{{ api_version }}">\n'
        "    <title>{{ title }}</title>\n  </head>\n  <body>\n"
        "    <h1>{{ title }}</h1>\n"
        "{{ rows or '\n' }}"
        "  </body>\n</html>\n"
    ),
    "project": (  # one line per file
        "{% for v, f, url in files %}"
        '    <a href="{{ url }}#sha256={{ f.sha256 }}"'
        '{% if f.requires_python %} data-requires-python="{{ f.requires_python }}"{% endif %}'
        '{% if f.packagetype == "bdist_wheel" %}'
        ' data-dist-info-metadata="sha256={{ f.metadata_sha256 }}"'
        ' data-core-metadata="sha256={{ f.metadata_sha256 }}"{% endif %}'
        '{% if v.yanked %} data-yanked="{{ v.yanked_reason }}"{% endif %}'
        ">{{ f.filename }}</a><br>\n"
        "{% endfor %}"
    ),
    "index": (  # one line per project
        "{% for name, display in projects %}"
        '    <a href="{{ quote(name) }}/">{{ display }}</a><br>\n'
        "{% endfor %}"
    ),
}
_env = jinja2.Environment(loader=jinja2.DictLoader(_TEMPLATES), autoescape=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined)
_env.globals.update(api_version=API_VERSION, quote=quote)
_PAGE, _PROJECT, _INDEX = (_env.get_template(name) for name in ("page", "project", "index"))


def _html(title: str, rows: jinja2.Template, **values: object) -> bytes:
    """A page: its lines from ``rows`` (rendered with ``values``), framed; spelt as ever (``_RESPELL``)."""
    text = _PAGE.render(title=title, rows=Markup(rows.render(**values)))
    for markupsafe, ours in _RESPELL:
        text = text.replace(markupsafe, ours)
    return text.encode()


_json = msgspec.json.Encoder()


def render_project(package: Package, all_versions: list[model.Version], fmt: str, base: str) -> bytes:
    """A project page. File URLs are relative (``base`` + version/filename), so pages don't depend
    on the host or the proxy in front of us."""
    files = []
    for v in all_versions:
        for f in v.files:
            url = f"{base}{quote(v.version)}/{quote(f.filename)}"
            files.append((v, f, url))
    if fmt == JSON:
        return _json.encode({
            "meta": {"api-version": API_VERSION},
            "name": package.name,
            "versions": [v.version for v in all_versions],
            "files": [_json_file(v, f, url) for v, f, url in files],
        })
    return _html(f"Links for {package.name}", _PROJECT, files=files)


def _json_file(v: model.Version, f: model.DistFile, url: str) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.packagetype == "bdist_wheel" else False
    return {
        "filename": f.filename,
        "url": url,
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python,
        "core-metadata": metadata,
        "dist-info-metadata": metadata,
        "size": f.size,
        "upload-time": f.upload_time_served.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "yanked": (v.yanked_reason or True) if v.yanked else False,
    }


def render_index(projects: list[tuple[str, str]], fmt: str) -> bytes:
    """The project list: (normalised name, display name) pairs."""
    if fmt == JSON:
        return _json.encode({"meta": {"api-version": API_VERSION}, "projects": [{"name": d} for _, d in projects]})
    return _html("Simple index", _INDEX, projects=projects)


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
    """One index across every workspace the caller can read (names shared by two are left out)."""
    r = await reader(request)
    fmt = _format(request)
    seen: dict[str, tuple[str, str]] = {}
    shared: set[str] = set()
    keys = []
    for ws, state, visible in r.everywhere():
        keys.append((ws, state, tuple(p.name for p in visible)))
        for p in visible:
            if p.name in seen:
                shared.add(p.name)
            seen[p.name] = (p.name, p.display_name)
    if r.who.kind == "anonymous" and not seen:
        raise r.hidden(None, "")
    projects = sorted(v for k, v in seen.items() if k not in shared)
    page = _page(request, ("root", fmt, tuple(keys)), fmt, lambda: render_index(projects, fmt))
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
    return project_page(request, await reader(request), ws, project, f"/{ws}/")


def project_page(request: Request, r: Reader, ws: str, project: str, base: str) -> Response:
    """A project's page as ``r`` sees it (today's index, or one of the past), under ``base``."""
    canonical = project_name(project)
    if canonical != project or not has_trailing_slash(request):
        return redirect(request, f"{base}{quote(canonical)}/")
    fmt = _format(request)
    read = r.package(ws, canonical)
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
    if len(found) > 1:
        names = ", ".join(p.workspace for p in found)
        raise RegistryError(
            f"Package {canonical!r} exists in several workspaces ({names}); use the workspace's own index "
            f"URL, e.g. /{found[0].workspace}/.", status=409)
    package = found[0]
    base = f"../{quote(package.workspace)}/{quote(canonical)}/"
    key = ("project", r.package_state(package.workspace, canonical), fmt, base)
    page = _page(request, key, fmt,
                 lambda: render_project(package, r.versions(package.workspace, canonical), fmt, base))
    return _respond(request, r, page, public=False)
