"""The routes of paths made of parameters only, one route per shape (the number of segments), each
handing the request to what serves it by what its segments hold.

Litestar routes by a trie of path segments: a static segment is preferred to a parameter, and the
routes of one shape meet in one node, which holds one handler per method. So a static segment
such as the JSON API's `pypi` would shadow a package (or workspace) of that name, and two routes
of one shape can't both be declared: `/<ws>/@<ref>/<project>/<version>/<file>` and
`/<ws>/pypi/<name>/<version>/json` are both five parameters. Each shape is therefore routed once,
here:

    /<ws>/                                   simple.py: the workspace's index
    /<ws>/<project>/                         simple.py: a project's page
    /<ws>/@<ref>/                            past.py: the index as it stood
    /<ws>/@<ref>/<project>/                  past.py: a project's page as it stood
    /<ws>/<project>/<version>/<file>         files.py: a file (or its `.metadata`)
    /<ws>/pypi/<name>/json                   api.py: the JSON API of a project
    /<ws>/@<ref>/<project>/<version>/<file>  past.py: a file as it stood
    /<ws>/pypi/<name>/<version>/json         api.py: the JSON API of one release

A three-segment path that doesn't start `/<ws>/@` is no page, nor is a five-segment one that is
neither of the two above.
"""

from __future__ import annotations

from litestar import Request, Response, route
from litestar.params import FromPath

from ..errors import NotFound, RegistryError
from . import api, files, past, simple
from .simple import GET_HEAD


@route("/{ws:str}", http_method=GET_HEAD, include_in_schema=False)
async def one_segment(request: Request, ws: FromPath[str]) -> Response:
    return await simple.workspace_index(request, ws)


@route("/{ws:str}/{project:str}", http_method=GET_HEAD, include_in_schema=False)
async def two_segments(request: Request, ws: FromPath[str], project: FromPath[str]) -> Response:
    if project.startswith("@"):  # /<ws>/@<commit or time>/: the index as it stood then
        return await past.index(request, ws, project[1:])
    return await simple.project_detail(request, ws, project)


@route("/{ws:str}/{at:str}/{project:str}", http_method=GET_HEAD, include_in_schema=False)
async def three_segments(request: Request, ws: FromPath[str], at: FromPath[str], project: FromPath[str]) -> Response:
    if not at.startswith("@"):
        raise NotFound(f"No such page: {request.url.path}")
    return await past.project(request, ws, at[1:], project)


@route("/{ws:str}/{project:str}/{version:str}/{filename:str}", http_method=GET_HEAD, include_in_schema=False)
async def four_segments(request: Request, ws: FromPath[str], project: FromPath[str], version: FromPath[str],
                        filename: FromPath[str]) -> Response:
    if project == "pypi" and filename == "json":  # /<ws>/pypi/<name>/json: the JSON API, not a file
        return await api.json_api(request, ws, version, None)
    return await files.download(request, ws, project, version, filename)


@route("/{ws:str}/{at:str}/{name:str}/{version:str}/{tail:str}", http_method=GET_HEAD, include_in_schema=False)
async def five_segments(request: Request, ws: FromPath[str], at: FromPath[str], name: FromPath[str],
                        version: FromPath[str], tail: FromPath[str]) -> Response:
    if not at.startswith("@"):
        if (at, tail) != ("pypi", "json"):
            raise NotFound(f"No such page: {request.url.path}")
        if request.method == "HEAD":
            raise RegistryError(f"HEAD is not allowed on {request.url.path}.", status=405)
        return await api.json_api(request, ws, name, version)
    return await past.file(request, ws, at[1:], name, version, tail)


ROUTES = [one_segment, two_segments, three_segments, four_segments, five_segments]
