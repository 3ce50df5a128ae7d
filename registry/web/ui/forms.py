"""What a posted form brings: its fields once its CSRF token is checked, and where to go after signing
in (`next`, a page of ours only). Every change made through a form is recorded as the web's."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from litestar import Request

from ...errors import Forbidden
from . import urls
from .session import csrf_ok
from .viewer import viewer

CHANNEL: Final = "web"  # what the ledger's commits say a change came through


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
    home = urls.HOME.link()
    if not target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(urls.PREFIX + "/") or ".." in target or "\\" in target:
        return home
    return target
