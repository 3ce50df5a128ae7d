"""The workspace's upstream indexes over the API: their settings (`GET`), one edit at a time as an
audited commit (`POST`, the same edits as `registry upstream`), and which of the workspace's own
names an upstream index also lists. Credentials go in an edit, are kept in the data directory, and
are never answered back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import anyio
import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath

from .. import visibility
from ..errors import Denied, Invalid, NotFound, Unauthorized
from ..model import Channel, UpstreamPolicy
from ..operations import upstream as verbs
from ..reads.records import list_packages
from ..upstream.fetching import also_upstream
from .answers import refusals
from .api_types import View
from .bodies import json_value
from .state import reader, web_state
from .upstream import upstreams

UPSTREAM = "/workspaces/{ws:str}/upstream"


class Add(View, frozen=True, kw_only=True, tag="add", tag_field="op"):
    name: str
    url: str
    username: str | None = None
    password: str | None = None
    before: str | None = None


class Remove(View, frozen=True, kw_only=True, tag="remove", tag_field="op"):
    name: str


class Rule(View, frozen=True, kw_only=True, tag="rule", tag_field="op"):
    kind: Literal["allow", "deny"]
    pattern: str
    reason: str


class Unrule(View, frozen=True, kw_only=True, tag="unrule", tag_field="op"):
    pattern: str


class Block(View, frozen=True, kw_only=True, tag="block", tag_field="op"):
    name: str
    version: str
    reason: str


class Unblock(View, frozen=True, kw_only=True, tag="unblock", tag_field="op"):
    name: str
    version: str


class Cooldown(View, frozen=True, kw_only=True, tag="cooldown", tag_field="op"):
    days: float


class Exempt(View, frozen=True, kw_only=True, tag="exempt", tag_field="op"):
    kind: Literal["exempt", "tracks"] = "exempt"
    name: str
    reason: str = ""
    undo: bool = False


Edit = Add | Remove | Rule | Unrule | Block | Unblock | Cooldown | Exempt
EDITS = ("One edit, by its `op`: add {name, url, username?, password?, before?}, remove {name}, rule {kind: allow|"
         "deny, pattern, reason}, unrule {pattern}, block {name, version, reason}, unblock {name, version}, cooldown "
         "{days}, exempt {kind: exempt|tracks, name, reason, undo?}.")


class UpstreamIndexView(View, frozen=True, kw_only=True):
    name: str
    url: str
    credentials: bool
    added_by: str
    added_at: datetime


class EntryView(View, frozen=True, kw_only=True, omit_defaults=True):
    """A rule, a blocked release or an exemption: what it names, why, who, when."""

    name: str  # a pattern of names (rules), or a project
    version: str | None = None  # a blocked release
    reason: str
    by: str
    at: datetime


class UpstreamView(View, frozen=True, kw_only=True):
    workspace: str
    upstreams: list[UpstreamIndexView]  # in priority order
    cooldown_days: float
    allow: list[EntryView]
    deny: list[EntryView]
    blocked: list[EntryView]
    exempt: list[EntryView]
    tracks: list[EntryView]


class AlsoPublished(View, frozen=True, kw_only=True):
    name: str
    upstream: str | None  # the index that also lists it; "?" if one failed to answer


class AlsoPublishedView(View, frozen=True, kw_only=True):
    workspace: str
    packages: list[AlsoPublished]  # the workspace's own names (that the caller can read) an upstream also lists


def upstream_view(ws: str, p: UpstreamPolicy | None) -> UpstreamView:
    if p is None:
        return UpstreamView(workspace=ws, upstreams=[], cooldown_days=0, allow=[], deny=[], blocked=[], exempt=[],
                            tracks=[])
    return UpstreamView(
        workspace=ws, cooldown_days=p.cooldown_seconds / 86400,
        upstreams=[UpstreamIndexView(name=u.name, url=u.url, credentials=u.credentials, added_by=u.added.by,
                                     added_at=u.added.at) for u in p.upstreams],
        allow=[EntryView(name=r.pattern, reason=r.reason, by=r.added.by, at=r.added.at) for r in p.allow],
        deny=[EntryView(name=r.pattern, reason=r.reason, by=r.added.by, at=r.added.at) for r in p.deny],
        blocked=[EntryView(name=b.name, version=b.version, reason=b.reason, by=b.added.by, at=b.added.at)
                 for b in p.blocked],
        exempt=[EntryView(name=e.name, reason=e.reason, by=e.granted.by, at=e.granted.at) for e in p.exempt],
        tracks=[EntryView(name=e.name, reason=e.reason, by=e.granted.by, at=e.granted.at) for e in p.tracks])


@get(UPSTREAM, responses=refusals(400, 401, 403, 404), summary="The workspace's upstream indexes and their rules")
async def get_upstream(request: Request, ws: FromPath[str]) -> UpstreamView:
    r = await reader(request)
    r.workspace(ws)  # (hidden as a missing workspace from whoever doesn't see it)
    if r.who.kind == "anonymous":
        raise Unauthorized(f"The upstream settings of workspace {ws} are shown to its members: use your email and "
                           "an API token.")
    if not r.is_member(ws):
        raise Denied(f"The upstream settings of workspace {ws} are shown to its members (its admins, and whoever holds "
                     "a role on one of its projects or repositories); ask a workspace admin.")
    return upstream_view(ws, r.upstream_policy(ws))


@post(UPSTREAM, status_code=200, responses=refusals(400, 401, 403, 404, 503),
      summary="Change the upstream indexes or their rules, one edit (workspace admin)", description=EDITS)
async def edit_upstream(request: Request, ws: FromPath[str]) -> UpstreamView:
    r = await reader(request)
    if r.who.kind == "anonymous":  # (before the body is read: whoever may not change it learns nothing of it)
        raise Unauthorized("Changing a workspace's upstream indexes requires credentials.")
    try:
        data = json_value(await request.body(), Edit)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"The body is not an edit of the upstream settings ({exc}): give one JSON object whose 'op' is "
                      "add, remove, rule, unrule, block, unblock, cooldown or exempt, with its fields.") from None
    reg, who = r.reg, r.who
    ch: Channel = "api"

    def run() -> UpstreamPolicy:
        match data:
            case Add():
                return verbs.add_upstream(reg, who, ch, ws, data.name, data.url, username=data.username,
                                          password=data.password, before=data.before)
            case Remove():
                return verbs.remove_upstream(reg, who, ch, ws, data.name)
            case Rule():
                return verbs.add_rule(reg, who, ch, ws, data.kind, data.pattern, data.reason)
            case Unrule():
                return verbs.remove_rule(reg, who, ch, ws, data.pattern)
            case Block():
                return verbs.block(reg, who, ch, ws, data.name, data.version, data.reason)
            case Unblock():
                return verbs.unblock(reg, who, ch, ws, data.name, data.version)
            case Cooldown():
                return verbs.set_cooldown(reg, who, ch, ws, data.days)
            case Exempt():
                return verbs.exempt(reg, who, ch, ws, data.kind, data.name, data.reason, undo=data.undo)
        raise NotFound("No such edit.")  # (unreachable: the body is one of the edits)

    return upstream_view(ws, await anyio.to_thread.run_sync(run))


@get(UPSTREAM + "/also-published", responses=refusals(400, 401, 403, 404, 502, 504),
     summary="The workspace's own packages that an upstream index also lists (a squatter, unless tracked)")
async def also_published(request: Request, ws: FromPath[str]) -> AlsoPublishedView:
    r = await reader(request)
    r.workspace(ws)
    if not r.is_member(ws):
        raise Denied(f"What workspace {ws} owns that upstream also lists is shown to its members; ask a workspace "
                     "admin.")
    policy = r.upstream_for(ws)
    if policy is None:
        return AlsoPublishedView(workspace=ws, packages=[])
    mine = [p.name for p in list_packages(r.snapshot, ws) if visibility.can_read(r.now, r.who, ws, p.repository)]
    found = await also_upstream(upstreams(web_state(request)), ws, policy.upstreams, mine)
    return AlsoPublishedView(workspace=ws, packages=[AlsoPublished(name=n, upstream=u) for n, u in found.items() if u])


router = Router(path="/api", route_handlers=[get_upstream, edit_upstream, also_published], tags=["upstream"])
