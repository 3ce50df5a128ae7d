"""The management and audit API under /api, and the public index's JSON API under /<ws>/pypi/.

Controllers only parse, ask the read layer (`Reader`) or run an operation (in a worker thread: it
fsyncs), and render `api_types`. Refusals are RFC 9457 problem documents.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import anyio
import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from .. import model, operations
from ..audit import T
from ..errors import Invalid, NotFound, Unauthorized
from ..reads import Reader, project_name
from ..upstream.fetching import also_upstream
from . import api_types as views
from .answers import redirect, refusals
from .send import core_metadata
from .state import WebState, reader, web_state
from .upstream import upstreams

PACKAGE = "/workspaces/{ws:str}/packages/pypi/{name:str}"
VERSION = PACKAGE + "/versions/{version:str}"
READ_LIST = refusals(400, 401, 403, 404)  # (401: credentials refused; 403: a pipeline's token refused)
READ_ONE = refusals(301, 400, 401, 403, 404)
CHANGE = refusals(400, 401, 403, 404, 503)
YANK = refusals(400, 401, 403, 404, 409, 503)
CREATE = refusals(400, 401, 403, 404, 409, 413, 503)


class Deleted(views.View, frozen=True, kw_only=True):
    kind: str  # "package" or "version"
    workspace: str
    package: str
    version: str | None
    files: int
    commit: str


def _urls(request: Request, state: WebState) -> views.Urls:
    return views.Urls(state.registry.settings.public_url or str(request.base_url))


# --- lists ---------------------------------------------------------------------------------------


def _listing(request: Request, r: Reader, ws: str, type_: str | None, q: str | None, page: int, per_page: int,
             project: str | None = None, repository: str | None = None) -> views.PackageList:
    if type_ not in (None, "pypi"):
        raise Invalid(f"Unknown package type {type_!r}: this registry has pypi packages.")
    found = r.packages(ws, project=project, repository=repository, q=q, page=page, per_page=per_page)
    urls = _urls(request, web_state(request))
    next_url = None
    if found.more:
        query = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}
        query |= {"page": str(page + 1), "per_page": str(per_page)}
        next_url = f"{urls.base}{request.url.path}?{urlencode(query)}"
    return views.PackageList(
        items=[views.package_item(i.package, i.repository.project, i.repository.public, urls) for i in found.items],
        page=page, per_page=per_page, total=found.total, next=next_url,
    )


Page = FromQuery[int]
TypeFilter = Annotated[str | None, QueryParameter(name="type", description="package type: pypi")]
NameFilter = Annotated[str | None, QueryParameter(name="q", description="part of the package name")]


@get("/workspaces/{ws:str}/packages", responses=READ_LIST, summary="Packages of a workspace the caller can read")
async def workspace_packages(request: Request, ws: FromPath[str], type_: TypeFilter = None, q: NameFilter = None,
                             page: Page = 1, per_page: Page = 50) -> views.PackageList:
    return _listing(request, await reader(request), ws, type_, q, page, per_page)


@get("/workspaces/{ws:str}/projects/{key:str}/packages", responses=READ_LIST,
     summary="Packages of a project the caller can read")
async def project_packages(request: Request, ws: FromPath[str], key: FromPath[str], type_: TypeFilter = None,
                           q: NameFilter = None, page: Page = 1, per_page: Page = 50) -> views.PackageList:
    return _listing(request, await reader(request), ws, type_, q, page, per_page, project=key)


@get("/workspaces/{ws:str}/repositories/{repo:str}/packages", responses=READ_LIST,
     summary="Packages linked to a repository")
async def repository_packages(request: Request, ws: FromPath[str], repo: FromPath[str], type_: TypeFilter = None,
                              q: NameFilter = None, page: Page = 1, per_page: Page = 50) -> views.PackageList:
    return _listing(request, await reader(request), ws, type_, q, page, per_page, repository=repo)


# --- packages ------------------------------------------------------------------------------------


@post("/workspaces/{ws:str}/packages", status_code=201, responses=CREATE,
      summary="Create a package linked to a repository (repository admin)")
async def create_package(request: Request, ws: FromPath[str], data: JSONBody[views.CreatePackage]) -> views.PackageView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Creating a package requires credentials.")
    package = await anyio.to_thread.run_sync(
        operations.create_package, r.reg, r.who, "api", ws, data.name, data.repository)
    return await _package_view(request, package.name, ws)


async def _package_view(request: Request, name: str, ws: str) -> views.PackageView:
    r = await reader(request)
    read = r.package(ws, name)
    view = views.package_view(read.package, read.repository.project, read.repository.public, read.role,
                              r.versions(ws, name), r.created_by(ws, read.package.name),
                              _urls(request, web_state(request)))
    policy = r.upstream_for(ws)
    if policy is None:
        return view
    found = await also_upstream(upstreams(web_state(request)), ws, policy.upstreams, [read.package.name])
    return msgspec.structs.replace(view, also_published_upstream=found[read.package.name])


@get(PACKAGE, responses=READ_ONE, summary="Package details: names, linked repository, creation, versions, your role")
async def package_details(request: Request, ws: FromPath[str], name: FromPath[str]) -> views.PackageView | Response:
    canonical = project_name(name)
    if canonical != name:
        return redirect(request, f"/api/workspaces/{ws}/packages/pypi/{canonical}")
    return await _package_view(request, name, ws)


@delete(PACKAGE, status_code=200, responses=CHANGE, summary="Delete a package and all its versions (repository admin)")
async def delete_package(request: Request, ws: FromPath[str], name: FromPath[str]) -> Deleted:
    r = await reader(request)
    package, commit = await anyio.to_thread.run_sync(operations.delete_package, r.reg, r.who, "api", ws, name)
    files = len(commit.trailers_named(T.SHA256))
    return Deleted(kind="package", workspace=ws, package=package.name, version=None, files=files, commit=commit.id)


@get(PACKAGE + "/history", responses=READ_LIST, summary="Ledger commits that touched the package")
async def package_history(request: Request, ws: FromPath[str], name: FromPath[str],
                          limit: Page = 100) -> views.HistoryView:
    r = await reader(request)
    name = project_name(name)
    return views.history_view(ws, name, None, r.history(ws, name, limit=max(1, min(limit, 10_000))))


# --- versions ------------------------------------------------------------------------------------


async def _version_view(request: Request, ws: str, name: str, version: str) -> views.VersionView:
    r = await reader(request)
    read, record = r.version(ws, name, version)
    commits = r.history(ws, read.package.name, record.version, limit=10_000)
    return views.version_view(read.package, record, commits, _urls(request, web_state(request)))


@get(VERSION, responses=READ_ONE,
     summary="Version details: files, hashes, publisher (person, API token or pipeline run), commits")
async def version_details(request: Request, ws: FromPath[str], name: FromPath[str],
                          version: FromPath[str]) -> views.VersionView | Response:
    canonical = project_name(name)
    if canonical != name:
        return redirect(request, f"/api/workspaces/{ws}/packages/pypi/{canonical}/versions/{version}")
    return await _version_view(request, ws, name, version)


@delete(VERSION, status_code=200, responses=CHANGE, summary="Delete a version (repository write)")
async def delete_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> Deleted:
    r = await reader(request)
    record, commit = await anyio.to_thread.run_sync(operations.delete_version, r.reg, r.who, "api", ws, name, version)
    return Deleted(kind="version", workspace=ws, package=record.package, version=record.version,
                   files=len(record.files), commit=commit.id)


@post(VERSION + "/yank", status_code=200, responses=YANK, summary="Yank a version, with a reason (repository write)")
async def yank_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str],
                       data: JSONBody[views.YankRequest | None] = None) -> views.VersionView:
    r = await reader(request)
    reason = data.reason if data else ""  # (no body: a yank without a reason)
    await anyio.to_thread.run_sync(lambda: operations.yank(r.reg, r.who, "api", ws, name, version, reason))
    return await _version_view(request, ws, project_name(name), version)


@delete(VERSION + "/yank", status_code=200, responses=YANK, summary="Un-yank a version (repository write)")
async def unyank_version(request: Request, ws: FromPath[str], name: FromPath[str],
                         version: FromPath[str]) -> views.VersionView:
    r = await reader(request)
    await anyio.to_thread.run_sync(lambda: operations.yank(r.reg, r.who, "api", ws, name, version, undo=True))
    return await _version_view(request, ws, project_name(name), version)


@get(VERSION + "/history", responses=READ_LIST, summary="Ledger commits that touched the version")
async def version_history(request: Request, ws: FromPath[str], name: FromPath[str],
                          version: FromPath[str]) -> views.HistoryView:
    r = await reader(request)
    name = project_name(name)
    commits = r.history(ws, name, version, limit=10_000)
    return views.history_view(ws, name, r.version_label(ws, name, version), commits)


router = Router(path="/api", route_handlers=[
    workspace_packages, project_packages, repository_packages, create_package, package_details, delete_package,
    package_history, version_details, delete_version, yank_version, unyank_version, version_history,
], tags=["registry"])


# --- the public index's JSON API -----------------------------------------------------------------


async def json_api(request: Request, ws: str, name: str, version: str | None) -> Response:
    r = await reader(request)
    canonical = project_name(name)
    if canonical != name:
        tail = f"{version}/json" if version else "json"
        return redirect(request, f"/{ws}/pypi/{canonical}/{tail}")
    read = r.package(ws, canonical)
    repository = read.repository
    all_versions = r.versions(ws, canonical)
    if version is None:
        latest = model.latest_release(all_versions)
        if latest is None:
            raise NotFound(f"Package {canonical!r} has no versions yet.")
        selected = latest
    else:
        _, selected = r.version(ws, canonical, version)
    # (the metadata of a wheel if there is one, else of whatever file there is)
    source = next((f for f in selected.files if f.packagetype == "bdist_wheel"),
                  selected.files[0] if selected.files else None)
    metadata = await core_metadata(r.reg, source) if source else None
    serial = r.serial()
    doc = views.json_project(read.package, all_versions, selected, metadata, serial, _urls(request, web_state(request)),
                             with_releases=version is None)
    return Response(doc, media_type="application/json", headers={
        "x-pypi-last-serial": str(serial),
        "cache-control": ("public" if repository.public else "private") + ", max-age=0, must-revalidate",
    })
