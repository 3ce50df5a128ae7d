"""The management and audit API under /api, and the public index's JSON API under /<ws>/pypi/.

Controllers only parse, authorise through the shared helpers and render `views`; every change is an
operation run in a worker thread (it fsyncs), every read comes from the snapshot and the history
index. Refusals are RFC 9457 problem documents.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import anyio
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from packaging.utils import canonicalize_name

from .. import model, operations, views, visibility
from ..auth import Principal, role_on
from ..errors import Invalid, NotFound, Unauthorized
from ..ledger import Snapshot, layout
from ..model import Package, Repository
from .context import WebState, redirect, refusals, snapshot_and_principal

PACKAGE = "/workspaces/{ws:str}/packages/pypi/{name:str}"
VERSION = PACKAGE + "/versions/{version:str}"
MAX_PER_PAGE = 500
READ_LIST = refusals(400, 401, 403, 404)  # (403: credentials refused)
READ_ONE = refusals(301, 400, 401, 403, 404)
CHANGE = refusals(400, 401, 403, 404, 503)
YANK = refusals(400, 401, 403, 404, 409, 503)
CREATE = refusals(400, 401, 403, 404, 409, 413, 503)


class Deleted(views.View, kw_only=True):
    kind: str  # "package" or "version"
    workspace: str
    package: str
    version: str | None
    files: int
    commit: str


def _urls(request: Request, state: WebState) -> views.Urls:
    return views.Urls(state.registry.settings.public_url or str(request.base_url))


def _readable_package(snap: Snapshot, who: Principal, ws: str, name: str) -> tuple[Package, Repository]:
    return visibility.package(snap, who, ws, visibility.project_name(name))


def _readable_version(snap: Snapshot, who: Principal, ws: str, name: str, version: str):
    package, repository = _readable_package(snap, who, ws, name)
    record = operations.get_version(snap, ws, name, version)
    if record is None:
        raise NotFound(f"Package {name!r} has no version {version!r}.")
    return package, repository, record


# --- lists ---------------------------------------------------------------------------------------


def _listing(request: Request, state: WebState, snap: Snapshot, who: Principal, ws: str, keep, type_: str | None,
             q: str | None, page: int, per_page: int) -> views.PackageList:
    if type_ not in (None, "pypi"):
        raise Invalid(f"Unknown package type {type_!r}: this registry has pypi packages.")
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(f"page starts at 1 and per_page is 1 to {MAX_PER_PAGE}.")
    visibility.workspace(snap, who, ws)
    repos: dict[str, tuple[Repository, bool]] = {}
    items = []
    needle = canonicalize_name(q) if q else None
    for package in operations.list_packages(snap, ws):
        if needle and needle not in package.name:
            continue
        if package.repository not in repos:
            repository = snap.get(layout.repository(ws, package.repository), Repository)
            readable = repository is not None and visibility.can_read(snap, who, ws, package.repository)
            repos[package.repository] = (repository, readable)
        repository, readable = repos[package.repository]
        if readable and keep(repository):
            items.append((package, repository))
    urls = _urls(request, state)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    more = start + per_page < len(items)
    next_url = None
    if more:
        query = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}
        query |= {"page": str(page + 1), "per_page": str(per_page)}
        next_url = f"{urls.base}{request.url.path}?{urlencode(query)}"
    return views.PackageList(
        items=[views.package_item(p, r.project, r.public, urls) for p, r in chunk],
        page=page, per_page=per_page, total=len(items), next=next_url,
    )


Page = FromQuery[int]
TypeFilter = Annotated[str | None, QueryParameter(name="type", description="package type: pypi")]
NameFilter = Annotated[str | None, QueryParameter(name="q", description="part of the package name")]


@get("/workspaces/{ws:str}/packages", responses=READ_LIST, summary="Packages of a workspace the caller can read")
async def workspace_packages(request: Request, ws: FromPath[str], type_: TypeFilter = None, q: NameFilter = None,
                             page: Page = 1, per_page: Page = 50) -> views.PackageList:
    state, snap, who = await snapshot_and_principal(request)
    return _listing(request, state, snap, who, ws, lambda r: True, type_, q, page, per_page)


@get("/workspaces/{ws:str}/projects/{key:str}/packages", responses=READ_LIST, summary="Packages of a project the caller can read")
async def project_packages(request: Request, ws: FromPath[str], key: FromPath[str], type_: TypeFilter = None,
                           q: NameFilter = None, page: Page = 1, per_page: Page = 50) -> views.PackageList:
    state, snap, who = await snapshot_and_principal(request)
    key = model.project_key(key)
    visibility.project(snap, who, ws, key)
    return _listing(request, state, snap, who, ws, lambda r: r.project == key, type_, q, page, per_page)


@get("/workspaces/{ws:str}/repositories/{repo:str}/packages", responses=READ_LIST, summary="Packages linked to a repository")
async def repository_packages(request: Request, ws: FromPath[str], repo: FromPath[str], type_: TypeFilter = None,
                              q: NameFilter = None, page: Page = 1, per_page: Page = 50) -> views.PackageList:
    state, snap, who = await snapshot_and_principal(request)
    visibility.repository(snap, who, ws, repo)
    return _listing(request, state, snap, who, ws, lambda r: r.slug == repo, type_, q, page, per_page)


# --- packages ------------------------------------------------------------------------------------


@post("/workspaces/{ws:str}/packages", status_code=201, responses=CREATE, summary="Create a package linked to a repository (repository admin)")
async def create_package(request: Request, ws: FromPath[str], data: JSONBody[views.CreatePackage]) -> views.PackageView:
    state, snap, who = await snapshot_and_principal(request)
    if who.kind == "anonymous":
        raise Unauthorized("Creating a package requires credentials.")
    package = await anyio.to_thread.run_sync(
        operations.create_package, state.registry, who, "api", ws, data.name, data.repository)
    return await _package_view(request, package.name, ws)


async def _package_view(request: Request, name: str, ws: str) -> views.PackageView:
    state, snap, who = await snapshot_and_principal(request)
    package, repository = _readable_package(snap, who, ws, name)
    events = state.registry.ledger.history.package(ws, name, limit=1_000_000)
    created = next((e.commit for e in reversed(events) if e.summary.startswith("create package ")), None)
    return views.package_view(package, repository.project, repository.public, role_on(snap, who, ws, package.repository),
                              operations.versions(snap, ws, name), created, _urls(request, state))


@get(PACKAGE, responses=READ_ONE, summary="Package details: names, linked repository, creation, versions, your role")
async def package_details(request: Request, ws: FromPath[str], name: FromPath[str]) -> views.PackageView | Response:
    canonical = visibility.project_name(name)
    if canonical != name:
        return redirect(request, f"/api/workspaces/{ws}/packages/pypi/{canonical}")
    return await _package_view(request, name, ws)


@delete(PACKAGE, status_code=200, responses=CHANGE, summary="Delete a package and all its versions (repository admin)")
async def delete_package(request: Request, ws: FromPath[str], name: FromPath[str]) -> Deleted:
    state, _, who = await snapshot_and_principal(request)
    package, commit = await anyio.to_thread.run_sync(operations.delete_package, state.registry, who, "api", ws, name)
    files = sum(1 for t in commit.trailers if t[0] == "Sha256")
    return Deleted(kind="package", workspace=ws, package=package.name, version=None, files=files, commit=commit.id)


@get(PACKAGE + "/history", responses=READ_LIST, summary="Ledger commits that touched the package")
async def package_history(request: Request, ws: FromPath[str], name: FromPath[str], limit: Page = 100) -> views.HistoryView:
    state, snap, who = await snapshot_and_principal(request)
    name = visibility.project_name(name)
    _readable_package(snap, who, ws, name)
    events = state.registry.ledger.history.package(ws, name, limit=max(1, min(limit, 10_000)))
    return views.history_view(ws, name, None, events)


# --- versions ------------------------------------------------------------------------------------


async def _version_view(request: Request, ws: str, name: str, version: str) -> views.VersionView:
    state, snap, who = await snapshot_and_principal(request)
    package, _, record = _readable_version(snap, who, ws, name, version)
    events = state.registry.ledger.history.package(ws, name, record.version, limit=10_000)
    return views.version_view(package, record, events, _urls(request, state))


@get(VERSION, responses=READ_ONE, summary="Version details: files, hashes, publisher (person, API token or pipeline run), commits")
async def version_details(request: Request, ws: FromPath[str], name: FromPath[str],
                          version: FromPath[str]) -> views.VersionView | Response:
    canonical = visibility.project_name(name)
    if canonical != name:
        return redirect(request, f"/api/workspaces/{ws}/packages/pypi/{canonical}/versions/{version}")
    return await _version_view(request, ws, name, version)


@delete(VERSION, status_code=200, responses=CHANGE, summary="Delete a version (repository write)")
async def delete_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> Deleted:
    state, _, who = await snapshot_and_principal(request)
    record, commit = await anyio.to_thread.run_sync(
        operations.delete_version, state.registry, who, "api", ws, name, version)
    return Deleted(kind="version", workspace=ws, package=record.package, version=record.version,
                   files=len(record.files), commit=commit.id)


@post(VERSION + "/yank", status_code=200, responses=YANK, summary="Yank a version, with a reason (repository write)")
async def yank_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str],
                       data: JSONBody[views.YankRequest | None] = None) -> views.VersionView:
    state, _, who = await snapshot_and_principal(request)
    reason = data.reason if data else ""  # (no body: a yank without a reason)
    await anyio.to_thread.run_sync(lambda: operations.yank(state.registry, who, "api", ws, name, version, reason))
    return await _version_view(request, ws, canonicalize_name(name), version)


@delete(VERSION + "/yank", status_code=200, responses=YANK, summary="Un-yank a version (repository write)")
async def unyank_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> views.VersionView:
    state, _, who = await snapshot_and_principal(request)
    await anyio.to_thread.run_sync(lambda: operations.yank(state.registry, who, "api", ws, name, version, undo=True))
    return await _version_view(request, ws, canonicalize_name(name), version)


@get(VERSION + "/history", responses=READ_LIST, summary="Ledger commits that touched the version")
async def version_history(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> views.HistoryView:
    state, snap, who = await snapshot_and_principal(request)
    name = visibility.project_name(name)
    _readable_package(snap, who, ws, name)
    record = operations.get_version(snap, ws, name, version)
    label = record.version if record else version  # a deleted version's history still answers
    events = state.registry.ledger.history.package(ws, name, label, limit=10_000)
    if record is None and not events:
        raise NotFound(f"Package {name!r} has no version {version!r}, and never had.")
    return views.history_view(ws, name, label, events)


router = Router(path="/api", route_handlers=[
    workspace_packages, project_packages, repository_packages, create_package, package_details, delete_package,
    package_history, version_details, delete_version, yank_version, unyank_version, version_history,
], tags=["registry"])


# --- the public index's JSON API -----------------------------------------------------------------


async def json_api(request: Request, ws: str, name: str, version: str | None) -> Response:
    state, snap, who = await snapshot_and_principal(request)
    canonical = visibility.project_name(name)
    if canonical != name:
        tail = f"{version}/json" if version else "json"
        return redirect(request, f"/{ws}/pypi/{canonical}/{tail}")
    package, repository = _readable_package(snap, who, ws, canonical)
    all_versions = operations.versions(snap, ws, canonical)
    if version is None:
        if not all_versions:
            raise NotFound(f"Package {canonical!r} has no versions yet.")
        selected = views.latest(all_versions)
    else:
        selected = operations.get_version(snap, ws, canonical, version)
        if selected is None:
            raise NotFound(f"Package {canonical!r} has no version {version!r}.")
    source = next((f for f in selected.files if f.packagetype == "bdist_wheel"), selected.files[0] if selected.files else None)
    metadata = await anyio.to_thread.run_sync(operations.core_metadata, state.registry, source) if source else None
    serial = state.registry.ledger.history.serial()
    doc = views.json_project(package, all_versions, selected, metadata, serial, _urls(request, state),
                             with_releases=version is None)
    return Response(doc, media_type="application/json", headers={
        "x-pypi-last-serial": str(serial),
        "cache-control": ("public" if repository.public else "private") + ", max-age=0, must-revalidate",
    })


# Fully parametric on purpose: a static "pypi" segment would shadow a package named "pypi".
@get("/{ws:str}/{api:str}/{name:str}/{version:str}/{tail:str}", include_in_schema=False,
     summary="One release, in the public index's JSON API shape: /<ws>/pypi/<name>/<version>/json")
async def json_release(request: Request, ws: FromPath[str], api: FromPath[str], name: FromPath[str],
                       version: FromPath[str], tail: FromPath[str]) -> Response:
    if (api, tail) != ("pypi", "json"):
        raise NotFound(f"No such page: {request.url.path}")
    return await json_api(request, ws, name, version)
