"""The registry's own URLs that are made outside a web request: what the CLI and the server's first
start print (a one-time sign-in link). The web UI builds its links from the same (web/ui/urls.py):
the UI lives under `/-/` (no workspace can be called `-`), its pages of no workspace under `/-/_/`."""

from __future__ import annotations

from urllib.parse import quote

UI = "/-"  # the web UI's prefix
UI_OWN = f"{UI}/_"  # its pages that belong to no workspace (sign-in, tokens)


def signin_path(secret: str) -> str:
    """Where a one-time sign-in link is used."""
    return f"{UI_OWN}/link/{quote(secret, safe='')}"


def signin_url(base: str, secret: str) -> str:
    """The full sign-in link printed on the server."""
    return base.rstrip("/") + signin_path(secret)
