"""The index as it stood at a commit: `/<ws>/@<ref>/`, the project pages below it and their files,
where ``ref`` is a commit (`@3f2a…`) or a time (`@2025-01-31T12:00:00Z`). The pages are simple.py's
and the files files.py's, read through a `Reader` on the past commit with today's permissions.
(Their routes are shapes.py's: every segment of these paths is a parameter.)
"""

from __future__ import annotations

import anyio
from litestar import Request, Response

from ..errors import NotFound
from ..reads import Reader, project_name
from .answers import has_trailing_slash, redirect
from .files import any_file
from .simple import index_page, project_page
from .state import reader


async def as_of(request: Request, ws: str, ref: str) -> Reader:
    """The registry at ``ref`` as the caller may see it today. Whoever may not see the workspace
    today is answered as for a missing one, before the ref is even looked at."""
    now = await reader(request)
    if not now.sees_workspace(ws):
        raise now.hidden(ws, f"Workspace {ws!r} does not exist.")
    r = now.at(await anyio.to_thread.run_sync(now.resolve, ref))  # (index lookups: off the event loop)
    if not r.existed(ws):
        raise NotFound(f"Workspace {ws!r} did not exist yet at commit {r.commit}.")
    return r


async def index(request: Request, ws: str, ref: str) -> Response:
    """`/<ws>/@<ref>/`: the workspace's project list as it stood."""
    r = await as_of(request, ws, ref)
    if not has_trailing_slash(request):
        return redirect(request, f"/{ws}/@{ref}/")
    found = r.index(ws)
    if found is None:  # (as_of has checked it: the caller sees the workspace)
        raise r.hidden(ws, f"Workspace {ws!r} does not exist.")
    return index_page(request, r, ws, found)


async def project(request: Request, ws: str, ref: str, project: str) -> Response:
    """`/<ws>/@<ref>/<project>/`: a project's page as it stood."""
    return await project_page(request, await as_of(request, ws, ref), ws, project, f"/{ws}/@{ref}/")


async def file(request: Request, ws: str, ref: str, name: str, version: str, filename: str) -> Response:
    """`/<ws>/@<ref>/<project>/<version>/<file>` (and `.metadata`): a file as it stood."""
    r = await as_of(request, ws, ref)
    canonical = project_name(name)
    if canonical != name:
        return redirect(request, f"/{ws}/@{ref}/{canonical}/{version}/{filename}")
    return await any_file(request, r, ws, canonical, version, filename)
