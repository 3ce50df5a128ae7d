"""A workspace's webhooks over the API, for its admins: list them with how far each delivered and
its recent attempts, add or replace one (`PUT`, an audited commit), remove one, replay from a commit,
and read a hook's delivery history. A URL and a secret go in and are kept in the data directory; a
URL is answered back as scheme, host and fingerprint only, a secret only when the registry made it (once)."""

from __future__ import annotations

from datetime import datetime

import anyio
import msgspec
from litestar import Request, Router, delete, get, post, put
from litestar.params import FromPath

from ..errors import Invalid, Unauthorized
from ..model import Channel
from ..operations import webhooks as verbs
from ..permissions import require_scope
from ..reads.webhooks import HookState
from ..webhooks import secrets
from ..webhooks.state import Attempt
from .answers import refusals
from .api_types import View
from .bodies import json_value
from .state import reader

HOOKS = "/workspaces/{ws:str}/webhooks"
HOOK = HOOKS + "/{name:str}"
CH: Channel = "api"


class HookRequest(View, frozen=True, kw_only=True):
    url: str | None = None  # (a Bitbucket hook may give bitbucket_repository instead)
    events: list[str] = []
    repository: str | None = None
    signing: str = "ed25519"
    secret: str | None = None
    format: str = "event"
    bitbucket_repository: str | None = None
    branch: str = "main"
    pipeline: str | None = None


class ReplayRequest(View, frozen=True, kw_only=True):
    start: str  # a commit id (or an ISO 8601 time)


class AttemptView(View, frozen=True, kw_only=True, omit_defaults=True):
    at: datetime
    event: str
    type: str
    status: int | None = None
    ok: bool
    error: str = ""
    ms: int
    attempt: int


class HookView(View, frozen=True, kw_only=True, omit_defaults=True):
    name: str
    url: str  # scheme://host[:port]/… : its path (where Slack's and others' secret is) is never shown
    fingerprint: str  # "sha256:" and 16 hex digits of the SHA-256 of the whole URL
    events: list[str]
    repository: str | None = None
    signing: str
    format: str
    bitbucket_branch: str | None = None
    bitbucket_pipeline: str | None = None
    secret_set: bool
    added_by: str
    added_at: datetime
    delivered: str | None = None  # the last commit delivered
    failing: bool = False
    attempts: list[AttemptView] = []  # newest first
    secret: str | None = None  # a secret the registry made: in the answer that made it, only


class HookList(View, frozen=True, kw_only=True):
    workspace: str
    webhooks: list[HookView]


def _attempt(a: Attempt) -> AttemptView:
    return AttemptView(at=a.at, event=a.event, type=a.type, status=a.status, ok=a.ok, error=a.error, ms=a.ms,
                       attempt=a.attempt)


def hook_view(s: HookState, secret: str | None = None) -> HookView:
    h = s.hook
    return HookView(name=h.name, url=secrets.shown(h), fingerprint=secrets.endpoint_of(h).fingerprint,
                    events=list(h.events), repository=h.repository, signing=h.signing,
                    format=h.format, bitbucket_branch=h.bitbucket.branch if h.bitbucket else None,
                    bitbucket_pipeline=h.bitbucket.pipeline if h.bitbucket else None, secret_set=h.secret,
                    added_by=h.added.by, added_at=h.added.at, delivered=s.delivered, failing=s.failing,
                    attempts=[_attempt(a) for a in s.attempts], secret=secret)


READ = refusals(400, 401, 403, 404)  # (400: a path no name could be, before any lookup)
CHANGE = refusals(400, 401, 403, 404, 409, 503)


async def _body(request: Request, type_, example: str):
    try:
        return json_value(await request.body() or b"{}", type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"The body is not {example} ({exc}).") from None


@get(HOOKS, responses=READ, summary="The workspace's webhooks and their recent deliveries (admin)")
async def list_hooks(request: Request, ws: FromPath[str]) -> HookList:
    r = await reader(request)
    return HookList(workspace=ws, webhooks=[hook_view(s) for s in await anyio.to_thread.run_sync(r.webhooks, ws)])


@put(HOOK, status_code=200, responses=CHANGE,
     summary="Add a webhook, or replace the one of this name (workspace admin)",
     description="Body: {url, events: [publish|yank|unyank|delete|package-created|package-deleted|grant|policy|*], "
                 "repository?, signing?: ed25519|hmac-sha256, secret?, format?: event|bitbucket-pipeline, "
                 "bitbucket_repository?: WS/REPO, branch?, pipeline?}.")
async def put_hook(request: Request, ws: FromPath[str], name: FromPath[str]) -> HookView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Changing a workspace's webhooks requires credentials.")
    data = await _body(request, HookRequest, 'a webhook: {"url": "https://...", "events": ["publish"]}')

    def run() -> HookView:
        added = verbs.add_webhook(r.reg, r.who, CH, ws, name, data.url, data.events, repository=data.repository,
                                  signing=data.signing, secret=data.secret, fmt=data.format,
                                  bitbucket_repository=data.bitbucket_repository, branch=data.branch,
                                  pipeline=data.pipeline)
        return hook_view(HookState(added.hook, None, []), added.secret)

    return await anyio.to_thread.run_sync(run)


@delete(HOOK, status_code=200, responses=CHANGE, summary="Remove a webhook (workspace admin)")
async def delete_hook(request: Request, ws: FromPath[str], name: FromPath[str]) -> HookView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Changing a workspace's webhooks requires credentials.")
    if await request.body():
        raise Invalid("DELETE of a webhook takes no body.")
    hook = await anyio.to_thread.run_sync(verbs.remove_webhook, r.reg, r.who, CH, ws, name)
    return hook_view(HookState(hook, None, []))


@post(HOOK + "/replay", status_code=200, responses=CHANGE,
      summary="Deliver again from a commit on (workspace admin)", description='Body: {"start": "<commit id or time>"}.')
async def replay_hook(request: Request, ws: FromPath[str], name: FromPath[str]) -> HookView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Changing a workspace's webhooks requires credentials.")
    data = await _body(request, ReplayRequest, 'a replay: {"start": "<commit id>"}')

    def run() -> HookView:
        require_scope(r.who, f"replay the webhooks of workspace {ws}")  # (a read token's refusal: in its words)
        r.webhook(ws, name, attempts=0)  # (a stranger learns nothing of the ledger's commits from the resolve)
        hook = verbs.replay_webhook(r.reg, r.who, CH, ws, name, r.resolve(data.start))
        return hook_view(HookState(hook, None, []))

    return await anyio.to_thread.run_sync(run)


@get(HOOK + "/deliveries", responses=READ, summary="A webhook's recent attempts, newest first")
async def deliveries(request: Request, ws: FromPath[str], name: FromPath[str]) -> HookView:
    r = await reader(request)
    return hook_view(await anyio.to_thread.run_sync(r.webhook, ws, name))


router = Router(path="/api", route_handlers=[list_hooks, put_hook, delete_hook, replay_hook, deliveries],
                tags=["webhooks"])
