"""Routes of the index as it stood at a commit: `/<ws>/@<ref>/<project>/` and the files below it
(`/<ws>/@<ref>/` itself is the Simple API's two-segment route). The pages are simple.py's and the
files files.py's, read through a `Reader` on the past commit with today's permissions.

Both routes are fully parametric, as the paths they share with others are: a three-segment path
that doesn't start `/<ws>/@` is no page, and a five-segment one is the JSON API's
`/<ws>/pypi/<name>/<version>/json` (a static "pypi" segment would shadow a package named so).
"""

from __future__ import annotations

from litestar import Request, Response, route
from litestar.params import FromPath

from ..errors import NotFound, RegistryError
from ..reads import project_name
from .answers import redirect
from .api import json_api
from .files import serve_file
from .simple import GET_HEAD, as_of, past_project


@route("/{ws:str}/{at:str}/{project:str}", http_method=GET_HEAD, include_in_schema=False)
async def project_then(request: Request, ws: FromPath[str], at: FromPath[str], project: FromPath[str]) -> Response:
    if not at.startswith("@"):
        raise NotFound(f"No such page: {request.url.path}")
    return await past_project(request, ws, at[1:], project)


@route("/{ws:str}/{at:str}/{name:str}/{version:str}/{tail:str}", http_method=GET_HEAD, include_in_schema=False)
async def file_then(request: Request, ws: FromPath[str], at: FromPath[str], name: FromPath[str],
                    version: FromPath[str], tail: FromPath[str]) -> Response:
    """`/<ws>/@<ref>/<project>/<version>/<file>` (and `.metadata`), or one release in the public
    index's JSON API shape: `/<ws>/pypi/<name>/<version>/json`."""
    if not at.startswith("@"):
        if (at, tail) != ("pypi", "json"):
            raise NotFound(f"No such page: {request.url.path}")
        if request.method == "HEAD":
            raise RegistryError(f"HEAD is not allowed on {request.url.path}.", status=405)
        return await json_api(request, ws, name, version)
    r = await as_of(request, ws, at[1:])
    canonical = project_name(name)
    if canonical != name:
        return redirect(request, f"/{ws}/{at}/{canonical}/{version}/{tail}")
    return await serve_file(request, r, ws, canonical, version, tail)
