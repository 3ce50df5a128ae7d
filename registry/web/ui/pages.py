"""The pages: package lists at three levels, a package, a version, history, a commit, a download."""

from __future__ import annotations

from typing import TypedDict

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import File, Redirect, Stream

from ...disposition import attachment
from ...errors import RegistryError
from ...names import project_key
from ...reads import Reader
from ...replica.blobs import ensure_local
from ...upstream.fetching import also_upstream
from ..upstream import upstreams
from . import data, urls
from .render import render
from .viewer import registry, viewer


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


@get(urls.HOME.path, name=urls.HOME.name)
async def home(request: Request) -> object:
    who = viewer(request).who
    return render(request, "home.html", places=data.workspaces(registry(request), who))


def _listing(request: Request, ws: str, heading: str, subtitle: str, crumbs, current: str, **scope):
    v, reg = viewer(request), registry(request)
    q = request.query_params.get("q", "")[:100]
    listing = data.packages(reg, v.who, ws, q=q, sort=request.query_params.get("sort", "name"),
                            page=page_number(request.query_params.get("page")), **scope)
    place = data.place(reg, v.who, ws)
    creatable = v.signed_in and bool(data.creatable_repositories(reg, v.who, ws)) and "project" not in scope
    upstream = data.upstream(reg, v.who, ws) if current == "workspace" else None
    repo_admin = "repository" in scope and data.administers_repository(reg, v.who, ws, scope["repository"])
    readers = data.pipeline_readers(reg, v.who, ws, scope["repository"]) if "repository" in scope else None
    return render(request, "packages.html", ws=ws, place=place, listing=listing, heading=heading, subtitle=subtitle,
                  crumbs=crumbs, current=current, can_create=creatable, repo=scope.get("repository"),
                  upstream=upstream, repo_admin=repo_admin, pipeline_readers=readers)


@get(urls.WORKSPACE.path, name=urls.WORKSPACE.name)
async def workspace_packages(request: Request, ws: FromPath[str]) -> object:
    return _listing(request, ws, "Packages", f"Every PyPI package of workspace {ws} that you can see.", [],
                    "workspace")


@get(urls.PROJECT.path, name=urls.PROJECT.name)
async def project_packages(request: Request, ws: FromPath[str], key: FromPath[str]) -> object:
    key = project_key(key)
    return _listing(request, ws, f"Packages of project {key}", "Packages linked to the project's repositories.",
                    [(key, urls.PROJECT.link(ws=ws, key=key))], f"project:{key}", project=key)


@get(urls.REPOSITORY.path, name=urls.REPOSITORY.name)
async def repository_packages(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    return _listing(request, ws, f"Packages of {repo}",
                    "Packages linked to this repository: they inherit its permissions.",
                    [(repo, urls.REPOSITORY.link(ws=ws, repo=repo))], f"repo:{repo}", repository=repo)


@get(urls.PACKAGE.path, name=urls.PACKAGE.name)
async def package_page(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    v, reg = viewer(request), registry(request)
    detail = data.package(reg, v.who, ws, name, page=page_number(request.query_params.get("page")))
    if detail.name != name:
        return Redirect(urls.PACKAGE.link(ws=ws, name=detail.name), status_code=301)
    policy = data.upstream(reg, v.who, ws)
    also = None
    if policy is not None and policy.upstreams:
        found = await also_upstream(upstreams(request.app.state.web), ws, policy.upstreams, [detail.name])
        also = found[detail.name]
    tracked = policy is not None and any(t.name == detail.name for t in policy.tracks)
    return render(request, "package.html", ws=ws, place=data.place(reg, v.who, ws), p=detail, current="",
                  also_upstream=also, tracked=tracked)


@get(urls.VERSION.path, name=urls.VERSION.name)
async def version_page(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    v, reg = viewer(request), registry(request)
    detail = data.version(reg, v.who, ws, name, version)
    if (detail.package.name, detail.version) != (name, version):
        return Redirect(urls.VERSION.link(ws=ws, name=detail.package.name, version=detail.version), status_code=301)
    return render(request, "version.html", ws=ws, place=data.place(reg, v.who, ws), v=detail, current="")


@get(urls.DOWNLOAD.path, name=urls.DOWNLOAD.name)
async def download(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str],
                   filename: FromPath[str]) -> Response:
    reg = registry(request)
    if reg.primary is not None:  # a replica without the bucket fetches a file it lacks from the primary
        await ensure_local(reg, Reader(reg, viewer(request).who).file(ws, name, version, filename)[2].sha256)
    path, record = data.file(reg, viewer(request).who, ws, name, version, filename)
    headers = {"cache-control": "private, no-store", "x-content-type-options": "nosniff",
               "content-disposition": attachment(record.filename)}  # (File would otherwise build its own)
    if path is None:  # in a bucket: redirected there, or streamed from it
        if reg.settings.blobs_redirect and (url := reg.blobs.url(record.sha256, record.filename)):
            return Redirect(url, status_code=302)
        try:
            chunks = await reg.blobs.open_stream(record.sha256, 0, record.size)
        except FileNotFoundError:
            raise RegistryError(f"The content of {filename!r} is missing from the blob store; the operator should "
                                "run `registry verify`.", status=500) from None
        return Stream(chunks, media_type="application/octet-stream",
                      headers={**headers, "content-length": str(record.size)})
    return File(path, filename=record.filename, media_type="application/octet-stream", headers=headers)


def _history(request: Request, ws: str, subject: str, crumbs, history) -> object:
    reg, who = registry(request), viewer(request).who
    return render(request, "history.html", ws=ws, place=data.place(reg, who, ws), subject=subject, crumbs=crumbs,
                  history=history, current="history" if len(crumbs) == 1 else "")


class Cursor(TypedDict):
    """Which page of a history: `?before=<commit>` (Older) or `?after=<commit>` (Newer)."""

    before: str | None
    after: str | None


def _cursor(request: Request) -> Cursor:
    return Cursor(before=request.query_params.get("before") or None, after=request.query_params.get("after") or None)


@get(urls.HISTORY.path, name=urls.HISTORY.name)
async def workspace_history(request: Request, ws: FromPath[str]) -> object:
    history = data.workspace_history(registry(request), viewer(request).who, ws, **_cursor(request))
    return _history(request, ws, f"workspace {ws}", [("history", urls.HISTORY.link(ws=ws))], history)


@get(urls.REPOSITORY_HISTORY.path, name=urls.REPOSITORY_HISTORY.name)
async def repository_history(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    history = data.workspace_history(registry(request), viewer(request).who, ws, repo, **_cursor(request))
    return _history(request, ws, f"repository {repo}",
                    [(repo, urls.REPOSITORY.link(ws=ws, repo=repo)),
                     ("history", urls.REPOSITORY_HISTORY.link(ws=ws, repo=repo))], history)


@get(urls.PACKAGE_HISTORY.path, name=urls.PACKAGE_HISTORY.name)
async def package_history(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    history = data.package_history(registry(request), viewer(request).who, ws, name, **_cursor(request))
    return _history(request, ws, f"package {name}",
                    [(name, urls.PACKAGE.link(ws=ws, name=name)),
                     ("history", urls.PACKAGE_HISTORY.link(ws=ws, name=name))], history)


@get(urls.VERSION_HISTORY.path, name=urls.VERSION_HISTORY.name)
async def version_history(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    history = data.package_history(registry(request), viewer(request).who, ws, name, version, **_cursor(request))
    return _history(request, ws, f"{name} {version}", [
        (name, urls.PACKAGE.link(ws=ws, name=name)), (version, urls.VERSION.link(ws=ws, name=name, version=version)),
        ("history", urls.VERSION_HISTORY.link(ws=ws, name=name, version=version))], history)


@get(urls.COMMIT.path, name=urls.COMMIT.name)
async def commit_page(request: Request, ws: FromPath[str], commit_id: FromPath[str]) -> object:
    reg, who = registry(request), viewer(request).who
    detail = data.commit(reg, who, ws, commit_id)
    return render(request, "commit.html", ws=ws, place=data.place(reg, who, ws), c=detail, current="")


PAGES = [home, workspace_packages, project_packages, repository_packages, package_page, version_page, download,
         workspace_history, repository_history, package_history, version_history, commit_page]
