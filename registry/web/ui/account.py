"""Signing in (email and API token, or a one-time link), signing out, your tokens and your sessions.

Signing in starts a session in the ledger (operations.start_session, use_signin_link) and signing
out ends it there, so every worker and replica stops honouring the cookie once it has the commit;
through a replica both are writes, forwarded to the primary and answered once the replica has them.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from ... import operations
from ...errors import Conflict, Forbidden, Invalid, NotFound, TooMany, Unauthorized
from ...model import SessionScope
from ...reads import Reader
from . import data, once, urls
from .forms import CHANNEL, form, safe_next
from .render import cookie, redirect, render
from .session import SESSION_COOKIE, new_session
from .viewer import registry, session_keys, signed_in, viewer


def _start(request: Request, started: operations.Started, to: str, flash: str) -> Redirect:
    value = new_session(started).cookie(session_keys(request))
    max_age = max(1, int(started.session.expires.timestamp() - time.time()))
    return redirect(request, to, flash=flash, cookies=[cookie(request, SESSION_COOKIE, value, max_age=max_age)])


def _signed_out(request: Request, to: str, flash: str) -> Redirect:
    return redirect(request, to, flash=flash, cookies=[cookie(request, SESSION_COOKIE, "", max_age=0)])


@get(urls.SIGNIN.path, name=urls.SIGNIN.name)
async def signin_form(request: Request) -> object:
    return render(request, "signin.html", next=safe_next(request.query_params.get("next")))


@post(urls.SIGNIN.path)
async def signin(request: Request) -> object:
    fields = await form(request)
    email, token, to = fields.get("email", "").strip(), fields.get("token", "").strip(), safe_next(fields.get("next"))
    reg = registry(request)
    try:
        who = Reader(reg).token_principal(email or "-", token or "-")
        if who.kind != "user":
            raise Forbidden("That token is not a person's (it is a pipeline step's, a witness's or a replica's); "
                            "sign in with a person's API token.")
        started = await anyio.to_thread.run_sync(operations.start_session, reg, who, CHANNEL)
    except (Forbidden, Unauthorized, TooMany) as exc:
        advice = exc.message.replace(
            "use your email as the username and an API token as the password", "check your email and API token"
        ).replace("create one with `registry token create EMAIL`", "ask the registry's operator for one, or, if you "
                  "are signed in elsewhere, create one under Your tokens")
        return render(request, "signin.html", status=exc.status if isinstance(exc, TooMany) else 403,
                      error=advice, email=email, next=to)
    scope = " (read scope: you can look, not change anything)" if started.session.scope == "read" else ""
    return _start(request, started, to, f"Signed in as {who.email}{scope}.")


@get(urls.SIGNIN_LINK.path, name=urls.SIGNIN_LINK.name)
async def link_page(request: Request, secret: FromPath[str]) -> object:
    record = Reader(registry(request)).signin_link(secret)
    return render(request, "link.html", link=record, secret=secret)


@post(urls.SIGNIN_LINK.path)
async def use_link(request: Request, secret: FromPath[str]) -> object:
    await form(request)
    started = await anyio.to_thread.run_sync(operations.use_signin_link, registry(request), secret)
    return _start(request, started, urls.HOME.link(), f"Signed in as {started.session.user}.")


@post(urls.SIGNOUT.path, name=urls.SIGNOUT.name)
async def signout(request: Request) -> object:
    await form(request)
    v = viewer(request)
    if v.signed_in and v.who.session:  # (a session of any scope may end itself)
        try:
            await anyio.to_thread.run_sync(operations.end_session, registry(request), v.who, CHANNEL, v.email,
                                           v.who.session)
        except NotFound:
            pass  # (ended meanwhile, from another session: over either way)
    return _signed_out(request, urls.HOME.link(), "Signed out.")


def _tokens_page(request: Request, status: int = 200, **context: Any) -> Template:
    who = signed_in(request, "see your tokens").who
    reg = registry(request)
    return render(request, "tokens.html", status=status, rows=data.tokens(reg, who), sessions=data.sessions(reg, who),
                  may_change=who.scope == "write", workspaces=data.workspaces(reg, who),
                  default_workspace=data.default_workspace(reg, who), your_name=data.your_name(reg, who), **context)


@get(urls.TOKENS.path, name=urls.TOKENS.name)
async def tokens(request: Request) -> object:
    v = signed_in(request, "see your tokens")
    made = once.unseal(session_keys(request), v.who.session or "", request.cookies.get(once.NEW_TOKEN_COOKIE, ""))
    if made is None or made[0].startswith("webhook/"):  # (render clears a cookie that is there: shown once, or
        return _tokens_page(request)                   # never; a webhook's secret is its settings page's)
    return _tokens_page(request, secret=made[1], made_id=made[0])


MAX_DAYS = 3650  # the form's max


@post(urls.TOKENS.path)
async def create_token(request: Request) -> object:
    fields = await form(request)
    v = signed_in(request, "create tokens")
    days, scope = fields.get("expires_days", "").strip(), fields.get("scope", "write")
    try:  # (the form's own limits, in the form's words: the operation's name CLI flags and scopes)
        if days and not (days.isdigit() and 1 <= int(days) <= MAX_DAYS):
            raise Invalid(f"Expires after (days) must be a whole number of days from 1 to {MAX_DAYS}, "
                          "or empty for never.")
        if scope not in ("read", "write"):
            raise Invalid(f"Scope must be read or write, not {scope[:40]!r}.")
        chosen: SessionScope = "read" if scope == "read" else "write"
        secret, record = await anyio.to_thread.run_sync(
            lambda: operations.create_token(registry(request), v.who, CHANNEL, v.email, chosen,
                                            int(days) if days else None, fields.get("label", "").strip()[:100]))
    except (Invalid, Forbidden) as exc:  # (a read-scoped session's refusal too: the page says which scope)
        return _tokens_page(request, status=exc.status, error=exc.message)
    # POST-redirect-GET: reloading the page shown next makes no second token. The secret goes there
    # sealed in a cookie of its own (once.py), shown once: never in the URL, the ledger or a log.
    sealed = once.seal(session_keys(request), v.who.session or "", record.id, secret)
    return redirect(request, urls.TOKENS.link(), flash=f"Created token {record.id}.",
                    cookies=[cookie(request, once.NEW_TOKEN_COOKIE, sealed, max_age=once.LIFETIME)])


@get(urls.REVOKE_TOKEN.path, name=urls.REVOKE_TOKEN.name)
async def confirm_revoke(request: Request, token_id: FromPath[str]) -> object:
    v = signed_in(request, "revoke your tokens")
    row = next((t for t in data.tokens(registry(request), v.who) if t.id == token_id and t.state == "active"), None)
    if row is None:
        raise Invalid(f"You have no active token {token_id}.", status=404)
    warning = " It is the token this session rests on: you will be signed out." if row.current else ""
    return render(request, "confirm.html", place=None, title=f"Revoke token {row.id}?", danger=True,
                  consequence=f"Anything that uses token {row.id}{' (' + row.label + ')' if row.label else ''} will "
                              "be refused from now on: pip, uv, twine, poetry, and web sessions signed in with it."
                              f"{warning}",
                  lost=[], button="Revoke token", action=urls.REVOKE_TOKEN.link(token_id=row.id),
                  back=urls.TOKENS.link())


@post(urls.REVOKE_TOKEN.path)
async def revoke(request: Request, token_id: FromPath[str]) -> object:
    await form(request)
    v = signed_in(request, "revoke your tokens")
    record = await anyio.to_thread.run_sync(operations.revoke_token, registry(request), v.who, CHANNEL, v.email,
                                            token_id)
    if record.id == v.who.token_id:  # (its sessions end with it, this one too)
        return _signed_out(request, urls.SIGNIN.link(),
                           f"Revoked token {record.id}, which this session used: sign in again.")
    return redirect(request, urls.TOKENS.link(), flash=f"Revoked token {record.id}.")


@get(urls.END_SESSION.path, name=urls.END_SESSION.name)
async def confirm_end_session(request: Request, session_id: FromPath[str]) -> object:
    who = signed_in(request, "end your sessions").who
    row = next((r for r in data.sessions(registry(request), who) if r.id == session_id), None)
    if row is None:
        raise NotFound(f"You have no session {session_id[:32]!r} on: it has ended already.")
    how = f"with token {row.token_id}" if row.token_id else "with a sign-in link"
    here = " It is this session: you will be signed out here." if row.current else ""
    return render(request, "confirm.html", place=None, title=f"End session {row.short}?", danger=True,
                  consequence=f"The browser signed in {how} at {row.created:%Y-%m-%d %H:%M} UTC is signed out on its "
                              f"next request, on every server of this registry. Nothing else changes.{here}",
                  lost=[], button="End session", action=urls.END_SESSION.link(session_id=row.id),
                  back=urls.TOKENS.link())


@post(urls.END_SESSION.path)
async def end_session(request: Request, session_id: FromPath[str]) -> object:
    await form(request)
    v = signed_in(request, "end your sessions")
    record = await anyio.to_thread.run_sync(operations.end_session, registry(request), v.who, CHANNEL, v.email,
                                            session_id)
    if record.id == v.who.session:
        return _signed_out(request, urls.HOME.link(), "Signed out.")
    return redirect(request, urls.TOKENS.link(), flash=f"Ended session {record.id[:12]}: that browser is signed out.")


@post(urls.END_OTHER_SESSIONS.path, name=urls.END_OTHER_SESSIONS.name)
async def end_other_sessions(request: Request) -> object:
    await form(request)
    v = signed_in(request, "end your sessions")
    ended = await anyio.to_thread.run_sync(
        lambda: operations.end_sessions(registry(request), v.who, CHANNEL, v.email, keep=v.who.session))
    return redirect(request, urls.TOKENS.link(), flash=f"Signed out everywhere else ({len(ended)} "
                                                   f"{'session' if len(ended) == 1 else 'sessions'} ended).")


@post(urls.DEFAULT_WORKSPACE.path, name=urls.DEFAULT_WORKSPACE.name)
async def set_default_workspace(request: Request) -> object:
    fields = await form(request)
    v = signed_in(request, "choose your default workspace")
    chosen = fields.get("workspace", "").strip() or None  # (none: a name several hold is a 409 again)
    user = await anyio.to_thread.run_sync(operations.set_default_workspace, registry(request), v.who, CHANNEL,
                                          v.email, chosen)
    said = f"The root index now takes a name several workspaces hold from {user.default_workspace}." \
        if user.default_workspace else "No default workspace: the root index refuses a name several workspaces hold."
    return redirect(request, urls.TOKENS.link(), flash=said)


@post(urls.YOUR_NAME.path, name=urls.YOUR_NAME.name)
async def rename_yourself(request: Request) -> object:
    fields = await form(request)
    v = signed_in(request, "change your name")
    try:
        user = await anyio.to_thread.run_sync(operations.rename_user, registry(request), v.who, CHANNEL, v.email,
                                              fields.get("name", ""))
    except (Invalid, Conflict, Forbidden) as exc:  # (a read-scoped session's refusal too: the page says which)
        return _tokens_page(request, status=exc.status, name_error=exc.message, typed_name=fields.get("name", ""))
    return redirect(request, urls.TOKENS.link(), flash=f"You are called {user.name!r} now: your later commits carry "
                                                       "that name.")


ACCOUNT = [signin_form, signin, link_page, use_link, signout, tokens, create_token, confirm_revoke, revoke,
           confirm_end_session, end_session, end_other_sessions, set_default_workspace,
           rename_yourself]
