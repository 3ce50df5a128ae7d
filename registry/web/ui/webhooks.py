"""A workspace's webhooks, for its admins (a tab of its settings): its hooks with their recent
deliveries and failures, and the forms that add one (an HMAC secret the registry makes is shown
once, sealed in a cookie as a new token is: once.py), remove one (confirmed) and replay one from a
commit; each form one verb, one commit.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from ... import operations
from ...errors import NotFound
from ...model import WEBHOOK_EVENTS
from ...reads import Reader
from . import data, once, urls
from .render import cookie, redirect
from .settings import MISTAKES, _checked_form, _confirm, _run, _said, _settings
from .viewer import registry, session_keys, signed_in, viewer


def _webhooks(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), signed_in(request, f"administer workspace {ws}").who
    data.require_workspace_admin(reg, who, ws, f"administer workspace {ws}")
    hooks = Reader(reg, who).webhooks(ws)
    return _settings(request, ws, "webhooks", status, hooks=hooks, events=WEBHOOK_EVENTS, **context)


def _secret_shown_once(request: Request, ws: str) -> tuple[str, str] | None:
    """(hook name, HMAC secret) the add form just made, if this session's redirect carries it."""
    made = once.unseal(session_keys(request), viewer(request).who.session or "",
                       request.cookies.get(once.NEW_TOKEN_COOKIE, ""))
    kind, _, name = made[0].partition(":") if made else ("", "", "")
    if made is None or kind != f"webhook/{ws}":
        return None
    return name, made[1]


@get(urls.SETTINGS_WEBHOOKS.path, name=urls.SETTINGS_WEBHOOKS.name)
async def webhooks(request: Request, ws: FromPath[str]) -> object:
    made = _secret_shown_once(request, ws)  # (render clears the cookie: shown once, or never)
    return _webhooks(request, ws, made_hook=made[0] if made else None, secret=made[1] if made else None)


@post(urls.SETTINGS_WEBHOOKS.path)
async def add_webhook(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "add webhooks")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"change the webhooks of {ws}")
    chosen = [e for e in (await request.form()).getall("events", []) if isinstance(e, str)]  # (the checkboxes)
    name, url = fields.get("name", "").strip(), fields.get("url", "").strip()
    repository, signing = fields.get("repository", "").strip() or None, fields.get("signing", "ed25519")
    try:
        added = await _run(request, operations.add_webhook, ws, name, url, chosen, repository=repository,
                           signing=signing)
    except MISTAKES as exc:
        return _webhooks(request, ws, status=exc.status, error=_said(exc), values=fields, chosen=chosen)
    said = f"Added webhook {added.hook.name}: it delivers what happens from now on, in commit order."
    if added.secret is None:
        return redirect(request, urls.SETTINGS_WEBHOOKS.link(ws=ws), flash=said)
    # The HMAC secret the registry made goes to the page shown next sealed in a cookie of its own
    # (once.py, as a new token's): never in the URL, the ledger or a log; shown once.
    sealed = once.seal(session_keys(request), viewer(request).who.session or "", f"webhook/{ws}:{added.hook.name}",
                       added.secret)
    return redirect(request, urls.SETTINGS_WEBHOOKS.link(ws=ws), flash=said,
                    cookies=[cookie(request, once.NEW_TOKEN_COOKIE, sealed, max_age=once.LIFETIME)])


def _hook_named(request: Request, ws: str, doing: str) -> str:
    reg, who = registry(request), signed_in(request, doing).who
    name = request.query_params.get("name", "")
    data.require_workspace_admin(reg, who, ws, f"change the webhooks of {ws}")
    if not any(h.hook.name == name for h in Reader(reg, who).webhooks(ws, attempts=0)):
        raise NotFound(f"Workspace {ws} has no webhook named {name or '(none named)'!r}: its Webhooks settings list "
                       "its hooks.")
    return name


@get(urls.REMOVE_WEBHOOK.path, name=urls.REMOVE_WEBHOOK.name)
async def confirm_remove_webhook(request: Request, ws: FromPath[str]) -> object:
    name = _hook_named(request, ws, "remove webhooks")
    return _confirm(request, ws, title=f"Remove webhook {name}?", danger=True,
                    consequence="It is told of nothing more from now on, in one commit (its secret and its record "
                                "of deliveries go too). A hook added again under its name starts afresh: it "
                                "delivers only what happens after it is added.",
                    lost=[], button="Remove webhook", action=urls.REMOVE_WEBHOOK.link(ws=ws, name=name),
                    back=urls.SETTINGS_WEBHOOKS.link(ws=ws))


@post(urls.REMOVE_WEBHOOK.path)
async def remove_webhook(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "remove webhooks")
    name = request.query_params.get("name", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"change the webhooks of {ws}")
    await _run(request, operations.remove_webhook, ws, name)
    return redirect(request, urls.SETTINGS_WEBHOOKS.link(ws=ws), flash=f"Removed webhook {name}.")


@post(urls.REPLAY_WEBHOOK.path, name=urls.REPLAY_WEBHOOK.name)
async def replay_webhook(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "replay webhooks")
    name = request.query_params.get("name", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"change the webhooks of {ws}")
    start = fields.get("start", "").strip().lower()
    try:
        hook = await _run(request, operations.replay_webhook, ws, name, start)
    except MISTAKES as exc:
        return _webhooks(request, ws, status=exc.status, error=_said(exc), failed=f"replay:{name}", values=fields)
    assert hook.replay is not None
    return redirect(request, urls.SETTINGS_WEBHOOKS.link(ws=ws),
                    flash=f"Webhook {name} delivers again from commit {hook.replay.start[:12]} on, in order.")


WEBHOOKS = [webhooks, add_webhook, confirm_remove_webhook, remove_webhook, replay_webhook]
