"""A workspace's storage, for its admins (a tab of its settings): what its published files take
against its quota, by repository and by package, and its retention policies with their dry run
(data.py's `storage_settings`: the plan `registry retention apply` carries out). Setting and removing
a policy are forms (one verb, one commit each); applying the plan is not: it deletes versions, so it
stays the operator's (the server's scheduled runs, or the command line), as quotas do. The tab says
when the server's runs ran last, what they did here, and when they run next.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from ... import bounds, operations
from ...errors import Invalid, NotFound
from . import data, urls
from .render import redirect
from .settings import MISTAKES, _checked_form, _confirm, _lines, _run, _said, _settings
from .viewer import registry, signed_in, viewer


def _storage(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    found = data.storage_settings(registry(request), signed_in(request, f"administer workspace {ws}").who, ws)
    return _settings(request, ws, "storage", status, storage=found, **context)


@get(urls.SETTINGS_STORAGE.path, name=urls.SETTINGS_STORAGE.name)
async def storage(request: Request, ws: FromPath[str]) -> object:
    return _storage(request, ws)


def _whole(fields: dict[str, str], key: str, label: str) -> int | None:
    """A number typed in a field (empty: none), or what to type instead."""
    text = fields.get(key, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # (int() takes '²' as a digit, and fails on it)
        raise Invalid(f"{label} is a whole number (or empty, for no such rule), not {bounds.shown(text)}.")
    return int(text)


@post(urls.SETTINGS_STORAGE.path)
async def set_retention(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "set retention policies")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"set retention policies of {ws}")
    try:
        policy = await _run(request, operations.set_retention, ws, fields.get("name", "").strip(),
                            repository=fields.get("repository", "").strip() or None,
                            pattern=fields.get("pattern", "").strip() or None,
                            keep_newest=_whole(fields, "keep_newest", "Keep the newest"),
                            prerelease_days=_whole(fields, "prerelease_days", "Pre-releases older than"),
                            protect=_lines(fields.get("protect", "")))
    except MISTAKES as exc:
        return _storage(request, ws, status=exc.status, error=_said(exc), values=fields)
    return redirect(request, urls.SETTINGS_STORAGE.link(ws=ws),
                    flash=f"Retention policy {policy.name} of {ws}: {operations.retention.describe(policy)}. "
                          "Nothing is deleted until it is applied (by the server's scheduled run, if it is on, or "
                          "`registry retention apply`); below is what applying it would delete now.")


def _policy(request: Request, ws: str, name: str) -> None:
    found = data.storage_settings(registry(request), signed_in(request, "remove retention policies").who, ws)
    if not any(p.name == name for p, _ in found.policies):
        raise NotFound(f"Workspace {ws} has no retention policy {name or '(none named)'!r}: its Storage and "
                       "retention settings list its policies.")


@get(urls.REMOVE_RETENTION.path, name=urls.REMOVE_RETENTION.name)
async def confirm_remove_retention(request: Request, ws: FromPath[str]) -> object:
    name = request.query_params.get("policy", "")
    _policy(request, ws, name)
    return _confirm(request, ws, title=f"Remove retention policy {name}?", danger=True,
                    consequence="Neither the server's scheduled runs nor `registry retention apply` delete what it "
                                "selects any more; what it deleted stays deleted. Removing it is one commit; you can "
                                "set it again at any time.",
                    lost=[name], button="Remove policy", action=urls.REMOVE_RETENTION.link(ws=ws, policy=name),
                    back=urls.SETTINGS_STORAGE.link(ws=ws))


@post(urls.REMOVE_RETENTION.path)
async def remove_retention(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "remove retention policies")
    name = request.query_params.get("policy", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"remove retention policies of {ws}")
    await _run(request, operations.remove_retention, ws, name)
    return redirect(request, urls.SETTINGS_STORAGE.link(ws=ws), flash=f"Removed retention policy {name} of {ws}.")


STORAGE = [storage, set_retention, confirm_remove_retention, remove_retention]
