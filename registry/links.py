"""The registry's own URLs, each declared once (a `Route`: its name and path) for the handler that
answers it and every link to it. Here is what is needed outside a web request too: the CLI and the
server's first start print a one-time sign-in link. The web UI's other pages are declared in
web/ui/urls.py: the UI lives under `/-/` (no workspace can be called `-`), its pages of no workspace
under `/-/_/`."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

UI = "/-"  # the web UI's prefix
UI_OWN = f"{UI}/_"  # its pages that belong to no workspace (sign-in, tokens)

_PARAMETER = re.compile(r"\{(\w+):str\}")


class Route:
    """One URL, declared once: its handler is registered at ``path`` under ``name`` (Litestar's
    `@get(route.path, name=route.name)`), and every link to it is ``route.link(**parameters)``.

    ``path`` is in Litestar's syntax, with `str` parameters only (`/-/{ws:str}/packages/{name:str}/`).
    A link percent-encodes each parameter whole (a name, version, filename or commit id may hold `/`,
    `?`, `#`, `%` or spaces) and keeps the path's trailing `/` (Litestar matches a path with or without
    it); a parameter the path doesn't name goes in the query string, unless it is None or empty.
    (Litestar's own `route_reverse` encodes nothing, drops the `/`, needs the app, and can't be given
    a parameter called `name`.)"""

    __slots__ = ("name", "path", "_start", "_steps")

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path
        pieces = _PARAMETER.split(path)  # literal, parameter, literal, ..., literal
        if not path.startswith("/") or "{" in "".join(pieces[::2]):
            raise ValueError(f"route {name}: {path!r} is not a path of `{{parameter:str}}`s")
        self._start = pieces[0]
        self._steps = list(zip(pieces[1::2], pieces[2::2], strict=True))  # (parameter, the literal after it)

    @property
    def parameters(self) -> list[str]:
        return [parameter for parameter, _ in self._steps]

    def link(self, **parameters: str | None) -> str:
        out = self._start
        for parameter, literal in self._steps:
            value = parameters.pop(parameter, None)
            if value is None:
                raise TypeError(f"a link to {self.name} ({self.path}) needs {parameter}")
            out += quote(value, safe="") + literal
        if parameters:
            query = {k: v for k, v in parameters.items() if v not in (None, "")}
            if query:
                out += f"?{urlencode(query)}"
        return out

    def __repr__(self) -> str:
        return f"Route({self.name!r}, {self.path!r})"


SIGNIN_LINK = Route("ui.signin-link", f"{UI_OWN}/link/{{secret:str}}")  # a one-time sign-in link is used here


def signin_url(base: str, secret: str) -> str:
    """The full sign-in link printed on the server."""
    return base.rstrip("/") + SIGNIN_LINK.link(secret=secret)
