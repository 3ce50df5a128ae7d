"""The web UI's routes, for app.py to register."""

from __future__ import annotations

from litestar import Router

from .account import ACCOUNT
from .actions import ACTIONS
from .pages import PAGES
from .render import error_page, template_config
from .settings import SETTINGS
from .storage import STORAGE
from .urls import PREFIX
from .viewer import catch_up
from .webhooks import WEBHOOKS

HANDLERS = [*ACCOUNT, *ACTIONS, *PAGES, *SETTINGS, *STORAGE, *WEBHOOKS]
router = Router(path="/", route_handlers=HANDLERS, include_in_schema=False, before_request=catch_up)

__all__ = ["PREFIX", "error_page", "router", "template_config"]
