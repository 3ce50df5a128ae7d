"""What changes things: create a package, yank and un-yank, delete a version or a package.

Each action is a confirmation page (GET; shown in a dialog when scripts run) and a form (POST)
that checks its CSRF token, runs the operation (which checks permission, as for the API) and
redirects. The operations decide who may; a refusal is the error page with its 4xx.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from ... import operations
from ...errors import Conflict, Invalid
from . import data, urls
from .forms import CHANNEL, form
from .render import redirect, render
from .viewer import registry, signed_in, viewer

T = TypeVar("T")


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


# --- create a package -------------------------------------------------------------------------


def _create_form(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), signed_in(request, "create packages").who
    repos = data.creatable_repositories(reg, who, ws)
    return render(request, "create.html", status=status, ws=ws, place=data.place(reg, who, ws), repos=repos,
                  current="", **context)


@get(urls.NEW_PACKAGE.path, name=urls.NEW_PACKAGE.name)
async def create_form(request: Request, ws: FromPath[str]) -> object:
    return _create_form(request, ws, selected=request.query_params.get("repo"))


@post(urls.NEW_PACKAGE.path)
async def create_package(request: Request, ws: FromPath[str]) -> object:
    who = signed_in(request, "create packages").who
    fields = await form(request)
    name, repo = fields.get("name", "").strip(), fields.get("repository", "")
    try:
        if fields.get("type", "pypi") != "pypi":
            raise Invalid("This registry has PyPI packages only.")
        package = await anyio.to_thread.run_sync(
            operations.create_package, registry(request), who, CHANNEL, ws, name, repo)
    except (Invalid, Conflict) as exc:  # (the form again, saying what to change; other refusals are pages)
        return _create_form(request, ws, status=exc.status, error=exc.message, name=name, selected=repo)
    return redirect(request, urls.PACKAGE.link(ws=ws, name=package.name),
                    flash=f"Created {package.display_name}, linked to {ws}/{package.repository}: publish to it now.")


# --- confirmations ----------------------------------------------------------------------------


def _confirm(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), viewer(request).who
    return render(request, "confirm.html", status=status, ws=ws, place=data.place(reg, who, ws), current="", **context)


def _version_facts(request: Request, ws: str, name: str, version: str, doing: str
                   ) -> tuple[data.VersionDetail, list[str]]:
    detail = data.version(registry(request), viewer(request).who, ws, name, version)
    data.require(registry(request), viewer(request).who, ws, detail.package.name, "write", doing)
    return detail, [f.filename for f in detail.files]


@get(urls.DELETE_PACKAGE.path, name=urls.DELETE_PACKAGE.name)
async def confirm_delete_package(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    detail = data.package(registry(request), viewer(request).who, ws, name, per_page=1_000_000)
    data.require(registry(request), viewer(request).who, ws, detail.name, "admin", f"delete package {detail.name!r}")
    versions = [v.version for v in detail.versions]
    return _confirm(request, ws, title=f"Delete package {detail.display_name}?", danger=True,
                    consequence=f"This deletes {detail.display_name} and all {len(versions)} of its versions: they "
                                "can no longer be installed, their files are freed soon after, and their filenames can "
                                "never be uploaded again. The ledger keeps the history. Versions that will be lost:",
                    lost=versions, button="Delete package", action=urls.DELETE_PACKAGE.link(ws=ws, name=detail.name),
                    back=urls.PACKAGE.link(ws=ws, name=detail.name))


@get(urls.DELETE_VERSION.path, name=urls.DELETE_VERSION.name)
async def confirm_delete_version(request: Request, ws: FromPath[str], name: FromPath[str],
                                 version: FromPath[str]) -> object:
    detail, files = _version_facts(request, ws, name, version, "delete versions")
    p = detail.package
    return _confirm(request, ws, title=f"Delete {p.display_name} {detail.version}?", danger=True,
                    consequence=f"This deletes version {detail.version} and its {_files(len(files))}: it can no "
                                "longer be installed, and these filenames can never be uploaded again:",
                    lost=files, button="Delete version",
                    action=urls.DELETE_VERSION.link(ws=ws, name=p.name, version=detail.version),
                    back=urls.PACKAGE.link(ws=ws, name=p.name))


@get(urls.YANK.path, name=urls.YANK.name)
async def confirm_yank(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    detail, files = _version_facts(request, ws, name, version, "yank versions")
    p = detail.package
    return _confirm(request, ws, title=f"Yank {p.display_name} {detail.version}?", reason=True,
                    consequence=f"Installers will skip {detail.version} unless it is pinned exactly (PEP 592); its "
                                f"files ({_files(len(files))}) stay downloadable, and you can un-yank it later.",
                    lost=files, button="Yank version",
                    action=urls.YANK.link(ws=ws, name=p.name, version=detail.version),
                    back=urls.PACKAGE.link(ws=ws, name=p.name))


@get(urls.UNYANK.path, name=urls.UNYANK.name)
async def confirm_unyank(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    detail, files = _version_facts(request, ws, name, version, "un-yank versions")
    p = detail.package
    reason = f" (yanked: {detail.yanked_reason})" if detail.yanked_reason else ""
    return _confirm(request, ws, title=f"Un-yank {p.display_name} {detail.version}?",
                    consequence=f"Installers will pick {detail.version}{reason} again wherever it matches.",
                    lost=[], button="Un-yank version",
                    action=urls.UNYANK.link(ws=ws, name=p.name, version=detail.version),
                    back=urls.PACKAGE.link(ws=ws, name=p.name))


# --- the changes ------------------------------------------------------------------------------


async def _run(request: Request, verb: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``verb`` (an operation) by who is signed in, off the event loop."""
    who = signed_in(request, "change packages").who
    return await anyio.to_thread.run_sync(lambda: verb(registry(request), who, CHANNEL, *args, **kwargs))


@post(urls.DELETE_PACKAGE.path)
async def delete_package(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    await form(request)
    package, _ = await _run(request, operations.delete_package, ws, name)
    return redirect(request, urls.WORKSPACE.link(ws=ws),
                    flash=f"Deleted package {package.display_name} and all its versions.")


@post(urls.DELETE_VERSION.path)
async def delete_version(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    await form(request)
    record, _ = await _run(request, operations.delete_version, ws, name, version)
    return redirect(request, urls.PACKAGE.link(ws=ws, name=record.package),
                    flash=f"Deleted {record.package} {record.version} ({_files(len(record.files))}).")


@post(urls.YANK.path)
async def yank(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    fields = await form(request)
    record = await _run(request, operations.yank, ws, name, version, fields.get("reason", ""))
    return redirect(request, urls.VERSION.link(ws=ws, name=record.package, version=record.version),
                    flash=f"Yanked {record.package} {record.version}.")


@post(urls.UNYANK.path)
async def unyank(request: Request, ws: FromPath[str], name: FromPath[str], version: FromPath[str]) -> object:
    await form(request)
    record = await _run(request, operations.yank, ws, name, version, undo=True)
    return redirect(request, urls.VERSION.link(ws=ws, name=record.package, version=record.version),
                    flash=f"Un-yanked {record.package} {record.version}.")


ACTIONS = [create_form, create_package, confirm_delete_package, confirm_delete_version, confirm_yank, confirm_unyank,
           delete_package, delete_version, yank, unyank]
