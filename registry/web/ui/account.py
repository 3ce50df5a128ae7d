"""Signing in (email and API token, or a one-time link), signing out, and your tokens."""

from __future__ import annotations

import anyio
from litestar import Request, get, post
from litestar.params import FromPath

from ... import identity, operations
from ...errors import Forbidden, Invalid, RegistryError, Unauthorized
from ...reads import Reader
from . import data, urls
from .base import cookie, form, redirect, registry, render, safe_next, session_keys, viewer
from .session import SESSION_COOKIE, SESSION_SECONDS, new_session

OWN = urls.OWN
CHANNEL = "web"


def _start(request: Request, who: identity.Principal, via: str, to: str, flash: str):
    value = new_session(who, via).cookie(session_keys(request))
    return redirect(request, to, flash=flash, cookies=[cookie(request, SESSION_COOKIE, value, max_age=SESSION_SECONDS)])


@get(f"{OWN}/signin", include_in_schema=False)
async def signin_form(request: Request) -> object:
    return render(request, "signin.html", next=safe_next(request.query_params.get("next")))


@post(f"{OWN}/signin", include_in_schema=False)
async def signin(request: Request) -> object:
    fields = await form(request)
    email, token, to = fields.get("email", "").strip(), fields.get("token", "").strip(), safe_next(fields.get("next"))
    try:
        who = Reader(registry(request)).token_principal(email or "-", token or "-")
        if who.kind != "user":
            raise Forbidden("That token was minted for a pipeline step; sign in with a person's API token.")
    except (Forbidden, Unauthorized) as exc:
        return render(request, "signin.html", status=403, error=exc.message.replace(
            "use your email as the username and an API token as the password", "check your email and API token").replace(
            "create one with `registry token create EMAIL`", "ask the registry's operator for one, or, if you "
            "are signed in elsewhere, create one under Your tokens"),
            email=email, next=to)
    return _start(request, who, "token", to, f"Signed in as {who.email}.")


@get(f"{OWN}/link/{{secret:str}}", include_in_schema=False)
async def link_page(request: Request, secret: FromPath[str]) -> object:
    record = Reader(registry(request)).signin_link(secret)
    return render(request, "link.html", link=record, secret=secret)


@post(f"{OWN}/link/{{secret:str}}", include_in_schema=False)
async def use_link(request: Request, secret: FromPath[str]) -> object:
    await form(request)
    reg = registry(request)
    token = await anyio.to_thread.run_sync(operations.use_signin_link, reg, secret)
    # (the session names the token; who it acts as is looked up in the ledger on every request)
    who = identity.Principal(kind="user", email=token.user, token_id=token.id, expires=token.expires.timestamp())
    return _start(request, who, "link", urls.home(), f"Signed in as {token.user}.")


@post(f"{OWN}/signout", include_in_schema=False)
async def signout(request: Request) -> object:
    await form(request)
    v = viewer(request)
    if v.signed_in and v.session and v.session.via == "link":  # its token exists for this session only
        try:
            await anyio.to_thread.run_sync(operations.revoke_token, registry(request), v.who, CHANNEL, v.who.email,
                                           v.who.token_id)
        except RegistryError:
            pass  # (already revoked: the session is over either way)
    return redirect(request, urls.home(), flash="Signed out.", cookies=[cookie(request, SESSION_COOKIE, "", max_age=0)])


def _tokens_page(request: Request, status: int = 200, **context):
    v = viewer(request)
    if not v.signed_in:
        raise Unauthorized("Sign in to see your tokens.")
    return render(request, "tokens.html", status=status, rows=data.tokens(registry(request), v.who), **context)


@get(f"{OWN}/tokens", include_in_schema=False)
async def tokens(request: Request) -> object:
    return _tokens_page(request)


MAX_DAYS = 3650  # the form's max


@post(f"{OWN}/tokens", include_in_schema=False)
async def create_token(request: Request) -> object:
    fields = await form(request)
    v = viewer(request)
    if not v.signed_in:
        raise Unauthorized("Sign in to create tokens.")
    days, scope = fields.get("expires_days", "").strip(), fields.get("scope", "write")
    try:  # (the form's own limits, in the form's words: the operation's name CLI flags and scopes)
        if days and not (days.isdigit() and 1 <= int(days) <= MAX_DAYS):
            raise Invalid(f"Expires after (days) must be a whole number of days from 1 to {MAX_DAYS}, or empty for never.")
        if scope not in ("read", "write"):
            raise Invalid(f"Scope must be read or write, not {scope[:40]!r}.")
        secret, record = await anyio.to_thread.run_sync(
            lambda: operations.create_token(registry(request), v.who, CHANNEL, v.who.email, scope,
                                            int(days) if days else None, fields.get("label", "").strip()[:100]))
    except (Invalid, Forbidden) as exc:
        return _tokens_page(request, status=exc.status, error=exc.message)
    # Shown in this answer only (never stored, never redirected through a cookie): reloading won't show it again.
    return _tokens_page(request, status=201, secret=secret, made=record)


@get(f"{OWN}/tokens/{{token_id:str}}/revoke", include_in_schema=False)
async def confirm_revoke(request: Request, token_id: FromPath[str]) -> object:
    v = viewer(request)
    if not v.signed_in:
        raise Unauthorized("Sign in to revoke your tokens.")
    row = next((t for t in data.tokens(registry(request), v.who) if t.id == token_id and t.state == "active"), None)
    if row is None:
        raise Invalid(f"You have no active token {token_id}.", status=404)
    warning = " It is the token this session rests on: you will be signed out." if row.current else ""
    return render(request, "confirm.html", place=None, title=f"Revoke token {row.id}?", danger=True,
                  consequence=f"Anything that uses token {row.id}{' (' + row.label + ')' if row.label else ''} will be "
                              f"refused from now on: pip, uv, twine, poetry, and web sessions signed in with it.{warning}",
                  lost=[], button="Revoke token", action=urls.revoke_token(row.id), back=urls.tokens())


@post(f"{OWN}/tokens/{{token_id:str}}/revoke", include_in_schema=False)
async def revoke(request: Request, token_id: FromPath[str]) -> object:
    await form(request)
    v = viewer(request)
    if not v.signed_in:
        raise Unauthorized("Sign in to revoke your tokens.")
    record = await anyio.to_thread.run_sync(operations.revoke_token, registry(request), v.who, CHANNEL, v.who.email, token_id)
    if record.id == v.who.token_id:
        return redirect(request, urls.signin(), flash=f"Revoked token {record.id}, which this session used: sign in again.",
                        cookies=[cookie(request, SESSION_COOKIE, "", max_age=0)])
    return redirect(request, urls.tokens(), flash=f"Revoked token {record.id}.")


ACCOUNT = [signin_form, signin, link_page, use_link, signout, tokens, create_token, confirm_revoke, revoke]
