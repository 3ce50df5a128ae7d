"""A person's own settings over the API: the default workspace of their root index (`/<name>/`
takes a name several workspaces hold from it). Each change is one commit, as
`registry user default-workspace` makes it."""

from __future__ import annotations

import anyio
import msgspec
from litestar import Request, Router, delete, get, put
from litestar.params import FromPath

from .. import names, operations
from ..errors import Forbidden, Invalid, NotFound, Unauthorized
from ..model import User
from ..reads import Reader
from .answers import refusals
from .api_types import View
from .bodies import json_value
from .state import reader

DEFAULT = "/users/{email:str}/default-workspace"


class DefaultWorkspace(View, frozen=True, kw_only=True):
    user: str
    workspace: str | None  # None: a name several workspaces hold is a 409 at the root index


class ChooseWorkspace(View, frozen=True, kw_only=True):
    workspace: str


def _view(user: User) -> DefaultWorkspace:
    return DefaultWorkspace(user=user.email, workspace=user.default_workspace)


async def _yourself(request: Request, email: str, doing: str) -> Reader:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized(f"{doing.capitalize()} requires credentials.")
    if r.who.kind != "operator" and r.who.email != names.email(email):
        raise Forbidden(f"You can only {doing} of your own (your email is {r.who.email or 'not a person'}).")
    return r


@get(DEFAULT, responses=refusals(400, 401, 403, 404), summary="A person's default workspace (theirs only)")
async def get_default(request: Request, email: FromPath[str]) -> DefaultWorkspace:
    r = await _yourself(request, email, "read the default workspace")
    user = r.user(email)
    if user is None:  # (only the operator gets here for someone else)
        raise NotFound(f"There is no user {names.email(email)}.")
    return _view(user)


@put(DEFAULT, status_code=200, responses=refusals(400, 401, 403, 404, 503),
     summary="Choose the workspace the root index takes a name several workspaces hold from",
     description='Body: `{"workspace": "SLUG"}`, a workspace the person can read. Their own only (or the operator).')
async def put_default(request: Request, email: FromPath[str]) -> DefaultWorkspace:
    r = await _yourself(request, email, "set the default workspace")  # (before the body: strangers learn nothing)
    try:
        data = json_value(await request.body(), ChooseWorkspace)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"The body is not a choice of workspace ({exc}): give one JSON object, "
                      '{"workspace": "SLUG"} (DELETE clears it).') from None
    user = await anyio.to_thread.run_sync(operations.set_default_workspace, r.reg, r.who, "api", email,
                                          data.workspace)
    return _view(user)


@delete(DEFAULT, status_code=200, responses=refusals(400, 401, 403, 404, 503),
        summary="No default workspace: a name several workspaces hold is a 409 at the root index again")
async def delete_default(request: Request, email: FromPath[str]) -> DefaultWorkspace:
    r = await _yourself(request, email, "clear the default workspace")
    user = await anyio.to_thread.run_sync(operations.set_default_workspace, r.reg, r.who, "api", email, None)
    return _view(user)


router = Router(path="/api", route_handlers=[get_default, put_default, delete_default], tags=["people"])
