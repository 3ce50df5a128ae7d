"""How the UI answers: a page from a template, a redirect (with a one-time flash message), the error
page; the security headers every answer carries, and the cookies it sets or clears on the way out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from ...errors import RegistryError
from . import present, urls
from .once import NEW_TOKEN_COOKIE
from .session import SESSION_COOKIE, VISITOR_COOKIE
from .viewer import registry, viewer

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


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in ("ui.css", "ui.js", "htmx.min.js"):
        digest.update((STATIC / name).read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    def setup(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        # (`url_for` replaces Litestar's: a link percent-encodes its parameters and needs no request)
        env.globals.update(url_for=urls.url_for, urls=urls,
                           static=lambda name: f"/_/static/ui/{name}?v={STATIC_VERSION}")
        env.filters.update(size=present.size, when=present.when, ago=present.ago, describe=present.describe,
                           short=lambda s: (s or "")[:12])
        env.trim_blocks = env.lstrip_blocks = True

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=setup)


def secure(request: Request) -> bool:
    public = registry(request).settings.public_url
    return bool(public and public.startswith("https://"))


def cookie(request: Request, name: str, value: str, max_age: int | None = None) -> Cookie:
    """One of the UI's cookies: for its pages only, out of scripts' reach, not sent from other sites."""
    return Cookie(key=name, value=value, path=urls.PREFIX, httponly=True, samesite="lax",
                  secure=secure(request), max_age=max_age)


def _cookies(request: Request, extra: Sequence[Cookie]) -> list[Cookie]:
    v = viewer(request)
    out = list(extra)
    if v.new_visitor:
        out.append(cookie(request, VISITOR_COOKIE, v.sid, max_age=30 * 86400))
    if v.stale_session and not any(c.key == SESSION_COOKIE for c in out):
        out.append(cookie(request, SESSION_COOKIE, "", max_age=0))
    if request.cookies.get(FLASH_COOKIE) and not any(c.key == FLASH_COOKIE for c in out):
        out.append(cookie(request, FLASH_COOKIE, "", max_age=0))
    if request.cookies.get(NEW_TOKEN_COOKIE) and not any(c.key == NEW_TOKEN_COOKIE for c in out):
        out.append(cookie(request, NEW_TOKEN_COOKIE, "", max_age=0))  # (a new token's secret: shown once)
    return out


def base_url(request: Request) -> str:
    return (registry(request).settings.public_url or str(request.base_url)).rstrip("/")


def render(request: Request, template: str, *, status: int = 200, cookies: Sequence[Cookie] = (),
           **context: Any) -> Template:
    v = viewer(request)
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:300]
    context.setdefault("ws", None)
    return Template(template_name=template, status_code=status, headers=HEADERS, media_type="text/html",
                    cookies=_cookies(request, cookies),
                    context=dict(viewer=v, flash=flash, path=request.url.path, base_url=base_url(request),
                                 htmx=request.headers.get("hx-request") == "true", **context))


def redirect(request: Request, to: str, flash: str | None = None, cookies: Sequence[Cookie] = ()) -> Redirect:
    extra = list(cookies)
    if flash:
        extra.append(cookie(request, FLASH_COOKIE, quote(flash[:300]), max_age=60))
    return Redirect(to, status_code=303, headers=HEADERS, cookies=_cookies(request, extra))


def error_page(request: Request, exc: RegistryError) -> Response:
    """The HTML answer for a refusal under the UI's prefix (app.py sends them here)."""
    params = request.path_params if hasattr(request, "path_params") else {}
    about = "commit" if "commit_id" in params else None  # (what the advice on a 404 is about)
    return render(request, "error.html", status=exc.status, error=exc, ws=params.get("ws"), about=about)
