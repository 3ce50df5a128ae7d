"""What every page controller shares: who is looking, rendering a page, redirects, forms, CSRF."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from ...cache import Cache, weight
from ...datadir import Registry
from ...errors import Forbidden, RegistryError
from ...identity import ANONYMOUS, Principal
from ...reads import Reader
from . import present, urls
from .session import SESSION_COOKIE, VISITOR_COOKIE, Keys, Session, csrf_ok, csrf_token

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent.parent / "static" / "ui"
FLASH_COOKIE = "registry_flash"
HEADERS = {  # every UI page: private, never framed, nothing from elsewhere
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}
_keys: dict[Path, Keys] = {}
# (cookie, ledger commit) -> who, None: no longer valid
_principals = Cache("sessions", "web UI session cookies resolved to who holds them, per ledger commit")
_MISSING = object()


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in ("ui.css", "ui.js", "htmx.min.js"):
        digest.update((STATIC / name).read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()


def template_config() -> TemplateConfig:
    def setup(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.globals.update(urls=urls, static=lambda name: f"/_/static/ui/{name}?v={STATIC_VERSION}")
        env.filters.update(size=present.size, when=present.when, ago=present.ago, describe=present.describe,
                           short=lambda s: (s or "")[:12])
        env.trim_blocks = env.lstrip_blocks = True

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=setup)


def registry(request: Request) -> Registry:
    return request.app.state.web.registry


def session_keys(request: Request) -> Keys:
    settings = registry(request).settings
    path = settings.data_path
    if path not in _keys:
        _keys[path] = Keys.of(settings)
    return _keys[path]


@dataclass
class Viewer:
    who: Principal
    session: Session | None
    sid: str  # the session's id, or the visitor's before sign-in: what CSRF tokens derive from
    csrf: str
    new_visitor: bool = False
    stale_session: bool = False  # a cookie whose session ended (or its token): cleared on the way out

    @property
    def signed_in(self) -> bool:
        return self.who.kind == "user"


def viewer(request: Request) -> Viewer:
    found = request.scope.get("ui_viewer")
    if found is not None:
        return found
    reg = registry(request)
    raw = request.cookies.get(SESSION_COOKIE)
    session = Session.from_cookie(session_keys(request), raw)
    who, stale = ANONYMOUS, raw is not None and session is None
    if session is not None:
        read = Reader(reg)
        cache_key = (raw, read.commit)
        found_who = _principals.get(cache_key, _MISSING)
        if found_who is _MISSING:
            found_who = read.session_principal(session.email, session.session_id, session.expires)
            _principals.put(cache_key, found_who, weight(found_who))
        if found_who is None or (found_who.expires and found_who.expires <= time.time()):
            # (a replica that hasn't fetched the sign-in yet can't tell it from an ended session:
            # signed out for this request, the cookie kept)
            session, stale = None, knows(reg, session.commit)
        else:
            who = found_who
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    new = session is None and not (16 <= len(visitor) <= 64 and visitor.replace("-", "").replace("_", "").isalnum())
    if new:
        visitor = secrets.token_urlsafe(16)
    sid = session.sid if session else visitor
    found = request.scope["ui_viewer"] = Viewer(who, session, sid, csrf_token(sid), new, stale)
    return found


def knows(reg: Registry, commit: str) -> bool:
    """Whether this server's ledger has ``commit`` (a primary has every commit it made)."""
    if reg.primary is None:
        return True
    try:
        return commit in reg.ledger.repo()
    except ValueError:  # (no commit id at all)
        return True


async def catch_up(request: Request) -> None:
    """On a replica, a session started by a commit it hasn't fetched yet (signed in through another
    server a moment ago) first waits for that commit, as a write forwarded through it does: a
    browser signed in on one server is signed in on all."""
    state = request.app.state.web
    if state.replica is None or state.replica.stopped():
        return
    session = Session.from_cookie(session_keys(request), request.cookies.get(SESSION_COOKIE))
    if session is not None and not knows(state.registry, session.commit):
        await state.replica.wait_for(session.commit)


def secure(request: Request) -> bool:
    public = registry(request).settings.public_url
    return bool(public and public.startswith("https://"))


def cookie(request: Request, name: str, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(key=name, value=value, path=urls.PREFIX, httponly=True, samesite="lax",
                  secure=secure(request), max_age=max_age)


def _cookies(request: Request, extra: list[Cookie]) -> list[Cookie]:
    v = viewer(request)
    out = list(extra)
    if v.new_visitor:
        out.append(cookie(request, VISITOR_COOKIE, v.sid, max_age=30 * 86400))
    if v.stale_session and not any(c.key == SESSION_COOKIE for c in out):
        out.append(cookie(request, SESSION_COOKIE, "", max_age=0))
    if request.cookies.get(FLASH_COOKIE) and not any(c.key == FLASH_COOKIE for c in out):
        out.append(cookie(request, FLASH_COOKIE, "", max_age=0))
    return out


def base_url(request: Request) -> str:
    return (registry(request).settings.public_url or str(request.base_url)).rstrip("/")


def render(request: Request, template: str, *, status: int = 200, cookies: list[Cookie] = (), **context) -> Template:
    v = viewer(request)
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:300]
    context.setdefault("ws", None)
    return Template(template_name=template, status_code=status, headers=HEADERS, media_type="text/html",
                    cookies=_cookies(request, list(cookies)),
                    context=dict(viewer=v, flash=flash, path=request.url.path, base_url=base_url(request),
                                 htmx=request.headers.get("hx-request") == "true", **context))


def redirect(request: Request, to: str, flash: str | None = None, cookies: list[Cookie] = ()) -> Redirect:
    extra = list(cookies)
    if flash:
        extra.append(cookie(request, FLASH_COOKIE, quote(flash[:300]), max_age=60))
    return Redirect(to, status_code=303, headers=HEADERS, cookies=_cookies(request, extra))


async def form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is checked: a forged POST changes nothing."""
    data = await request.form()
    fields = {k: (v if isinstance(v, str) else str(v)) for k, v in data.items()}
    v = viewer(request)
    if not csrf_ok(v.sid, fields.get("csrf")):
        raise Forbidden("This form expired or was sent from another page (its security token doesn't match): "
                        "go back, reload the page and try again.")
    return fields


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site."""
    if not target:
        return urls.home()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(urls.PREFIX + "/") or ".." in target or "\\" in target:
        return urls.home()
    return target


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100_000))
    except ValueError:
        return 1


def error_page(request: Request, exc: RegistryError) -> Response:
    """The HTML answer for a refusal under the UI's prefix (app.py sends them here)."""
    params = request.path_params if hasattr(request, "path_params") else {}
    about = "commit" if "commit_id" in params else None  # (what the advice on a 404 is about)
    return render(request, "error.html", status=exc.status, error=exc, ws=params.get("ws"), about=about)
