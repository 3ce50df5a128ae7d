"""Every route the app serves, with its path parameters filled in: what the class tests walk, so a
route added tomorrow is walked too."""

from __future__ import annotations

import re

from tests.support.world import WS

# a value for each path parameter that names something the `world` fixture (tests/conftest.py) has
SAMPLES = {"ws": WS, "project": "acme-utils", "name": "acme-utils", "version": "1.0.0", "key": "CORE", "repo": "utils",
           "filename": "acme_utils-1.0.0-py3-none-any.whl", "at": "@2099-01-01", "tail": "json", "rest": "info/refs",
           "sha256": "0" * 64, "secret": "x" * 20, "token_id": "abc123", "session_id": "abc123", "commit_id": "0" * 12,
           "file_path": "ui/ui.css", "path": "openapi.json", "email": "dev@acme.test", "source": "public-lib"}
_PARAM = re.compile(r"\{(\w+):\w+\}")


def every_route(app, methods: set[str]) -> list[tuple[str, str]]:
    """(method, path) for each route and method of ``methods`` the app answers."""
    found = []
    for route in app.routes:
        for method in sorted(set(getattr(route, "methods", ())) & methods):
            found.append((method, _PARAM.sub(lambda m: SAMPLES[m.group(1)], route.path)))
    return found
