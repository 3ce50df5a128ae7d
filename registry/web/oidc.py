"""Trusted publishing for Bitbucket Pipelines, in the shape of the public index's token exchange.

`POST /_/oidc/mint-token` takes a step's OIDC token (and, unverified, what the step reports about its
run) and returns a registry token bound to the step's repository that expires within 15 minutes:
write-scoped, or with `"scope": "read"` one that may only read what the step's pipeline reads.
Refusals are 422 with `{"message": ..., "errors": [{"code", "description"}]}`, as clients expect.
"""

from __future__ import annotations

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec

from pipelines.verify import TokenRejected

from ..errors import Invalid, RegistryError
from ..model import ReportedRunContext, SessionScope
from ..operations import mint_pipeline_token
from ..reads import Reader
from .bodies import json_value
from .state import web_state


class MintRequest(msgspec.Struct, frozen=True):
    token: str
    context: dict | None = None  # our addition: the run as the step reports it (a ReportedRunContext)
    scope: SessionScope = "write"  # ours too: "read" for a step that only installs


def _context(raw: dict | None) -> ReportedRunContext | None:
    """The reported run; its build number as a JSON number too (BITBUCKET_BUILD_NUMBER is one), kept as digits."""
    if raw is None:
        return None
    number = raw.get("build_number")
    if isinstance(number, int) and not isinstance(number, bool):
        raw = {**raw, "build_number": str(number)}
    try:
        return msgspec.convert(raw, ReportedRunContext)
    except msgspec.ValidationError as exc:
        raise msgspec.ValidationError(str(exc).replace("at `$", "at `$.context")) from None


class Minted(msgspec.Struct, frozen=True):
    success: bool
    token: str  # a registry API token, bound to the step's repository
    expires: int  # unix time


class MintError(msgspec.Struct, frozen=True):
    code: str
    description: str


class MintRefusal(msgspec.Struct, frozen=True):
    """Why no token was minted, in the shape trusted-publishing clients read."""

    message: str
    errors: list[MintError]


class Audience(msgspec.Struct, frozen=True):
    audience: str


def _refusal(code: str, description: str) -> Response:
    return Response(MintRefusal("Token request failed", [MintError(code, description)]),
                    status_code=422, headers={"cache-control": "no-store"})


@get("/_/oidc/audience", sync_to_thread=False, summary="The audience a step's OIDC token must carry")
def audience(request: Request) -> Audience:
    settings = web_state(request).registry.settings
    return Audience(settings.oidc_audience or settings.base_url)


@post("/_/oidc/mint-token", status_code=200, summary="Exchange a step's OIDC token for a short-lived registry token",
      responses={422: ResponseSpec(MintRefusal, description="The token was refused, or the body is not "
                                   '{"token": "..."}: `errors` says why.', generate_examples=False)})
async def mint_token(request: Request) -> Response[Minted]:
    state = web_state(request)
    try:
        body = json_value(await request.body(), MintRequest)
        context = _context(body.context)
    except Invalid as exc:
        return _refusal("invalid-payload", exc.message)
    except msgspec.ValidationError as exc:
        return _refusal("invalid-payload", f"Malformed request: {exc}.")
    except msgspec.DecodeError:
        return _refusal("invalid-payload", 'Expected a JSON body {"token": "<the step\'s OIDC token>"}.')
    try:
        who = await anyio.to_thread.run_sync(Reader(state.registry).pipeline_for, body.token,
                                             state.authenticator.verifier)
        secret, record = await anyio.to_thread.run_sync(
            lambda: mint_pipeline_token(state.registry, who, context, scope=body.scope))
    except TokenRejected as exc:
        return _refusal(exc.code, exc.reason)
    except RegistryError as exc:
        return _refusal("invalid-publisher", exc.message)
    assert record.expires is not None  # (a minted pipeline token always expires)
    return Response(Minted(True, secret, int(record.expires.timestamp())), headers={"cache-control": "no-store"})
