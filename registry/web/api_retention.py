"""Retention policies and storage usage over the API: what `registry retention` and `registry
workspace quota` show and do, for the admins of what they cover (setting a quota stays the
operator's, on the server). The plan a GET answers is the dry run: the same function the apply runs."""

from __future__ import annotations

from datetime import datetime

import anyio
import msgspec
from litestar import Request, Router, delete, get, put
from litestar.params import FromPath

from .. import model, operations, retention, retention_runs, visibility
from ..errors import Denied, Invalid, Unauthorized
from ..model import Channel
from ..operations._common import require_workspace_admin
from ..permissions import role_on_workspace
from ..reads.records import versions
from ..reads.usage import workspace_usage
from .answers import refusals
from .api_types import View
from .bodies import json_value
from .state import reader

WS = "/workspaces/{ws:str}"
CH: Channel = "api"
READ = refusals(400, 401, 403, 404)
CHANGE = refusals(400, 401, 403, 404, 409, 503)
POLICY = ('{"repository": SLUG, "pattern": GLOB, "keep_newest": N, "prerelease_days": D, '
          '"protect_environments": [NAME or UUID, ...]} (repository and/or pattern; one rule or both)')


class PolicyBody(View, frozen=True, kw_only=True, forbid_unknown_fields=True):
    repository: str | None = None
    pattern: str | None = None
    keep_newest: int | None = None
    prerelease_days: int | None = None
    protect_environments: list[str] = []


class PolicyView(View, frozen=True, kw_only=True):
    name: str
    repository: str | None
    pattern: str | None
    keep_newest: int | None
    prerelease_days: int | None
    protect_environments: list[str]
    described: str
    updated_at: datetime
    updated_by: str


class PlannedView(View, frozen=True, kw_only=True):
    package: str
    version: str
    policy: str
    reason: str
    age_days: int | None = None  # (a deletion's)
    files: int | None = None
    bytes: int | None = None
    protected: str | None = None  # (a spared version's: why it stays)


class ScheduleView(View, frozen=True, kw_only=True):
    """The server's own retention runs (REGISTRY_RETENTION_APPLY), as far as this workspace goes."""

    apply: str  # off: only `registry retention apply` deletes; daily: the server runs it
    interval_seconds: int
    next_run: datetime | None  # (None: off)
    last_run_started: datetime | None = None  # (None: it never ran here)
    last_run_finished: datetime | None = None
    deleted: int | None = None  # in this workspace, by the last run (a workspace admin's to see)
    refused: int | None = None
    refusals: list[str] = []
    failed: str | None = None  # why the last run stopped in this workspace, if it did


class RetentionView(View, frozen=True, kw_only=True):
    workspace: str
    policies: list[PolicyView]
    deletions: list[PlannedView]  # what `registry retention apply` would delete now (the dry run)
    spared: list[PlannedView]  # what a rule selects that a protection keeps
    schedule: ScheduleView


class UsageView(View, frozen=True, kw_only=True):
    workspace: str
    bytes: int
    files: int
    quota_bytes: int | None
    repositories: dict[str, int]
    packages: dict[str, int]


def policy_view(p: model.RetentionPolicy) -> PolicyView:
    return PolicyView(name=p.name, repository=p.repository, pattern=p.pattern, keep_newest=p.keep_newest,
                      prerelease_days=p.prerelease_days, protect_environments=p.protect_environments,
                      described=operations.retention.describe(p), updated_at=p.updated.at, updated_by=p.updated.by)


@get(WS + "/retention", responses=READ,
     summary="The workspace's retention policies and what applying them would delete now, and why (the dry run). "
             "A workspace admin sees them all; a repository admin those of the repositories they administer")
async def show_retention(request: Request, ws: FromPath[str]) -> RetentionView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Authentication required to see retention policies: use your email and an API token "
                           "(they are the workspace admins', and each repository's admins').")
    visibility.workspace(r.snapshot, r.who, ws)
    rules = retention.policies(r.snapshot, ws)
    runs = retention_runs.schedule(r.reg.settings)
    if role_on_workspace(r.snapshot, r.who, ws) == "admin":
        return _retention(ws, rules, retention.plan(r.snapshot, ws, model.now()), _schedule(runs, ws))
    # (a repository admin: the policies of their repositories, and the plan of their packages only,
    # never the rest of the workspace's slugs, people and plan)
    mine = {repo.slug for repo in r.repositories(ws, at_least="admin")}
    if not mine:
        raise Denied(f"{r.who.actor} may not see the retention policies of workspace {ws}: they are its admins' "
                     "(all of them) and each repository's admins' (that repository's).")
    plan = retention.Plan([], [])
    now = model.now()
    for pkg in r.all_packages(ws):
        applied = [p for p in rules if retention.applies(p, pkg)] if pkg.repository in mine else []
        if applied:
            doomed, spared = retention.plan_package(applied, pkg.name, versions(r.snapshot, ws, pkg.name), now)
            plan.deletions.extend(doomed)
            plan.spared.extend(spared)
    return _retention(ws, [p for p in rules if p.repository in mine], plan, _schedule(runs, None))


def _schedule(runs: retention_runs.Schedule, ws: str | None) -> ScheduleView:
    """The runs, and (``ws``: to its admins) what the last one did in the workspace: a repository
    admin gets the times alone, the rest naming other repositories' packages."""
    last = runs.last_run
    view = ScheduleView(apply=runs.apply, interval_seconds=runs.interval_seconds, next_run=runs.next_run,
                        last_run_started=last.started if last else None,
                        last_run_finished=last.finished if last else None)
    if last is None or ws is None:
        return view
    tally = last.workspaces.get(ws, retention_runs.Tally())
    return msgspec.structs.replace(view, deleted=tally.deleted, refused=tally.refused, refusals=tally.refusals,
                                   failed=tally.failed or ("it stopped in another workspace before it was done (the "
                                                           "next run tries again)" if last.failed else None))


def _retention(ws: str, rules: list[model.RetentionPolicy], plan: retention.Plan,
               schedule: ScheduleView) -> RetentionView:
    return RetentionView(
        workspace=ws, policies=[policy_view(p) for p in rules], schedule=schedule,
        deletions=[PlannedView(package=d.package, version=d.version, policy=d.policy, reason=d.reason,
                               age_days=d.age_days, files=d.files, bytes=d.bytes) for d in plan.deletions],
        spared=[PlannedView(package=s.package, version=s.version, policy=s.policy, reason=s.reason,
                            protected=s.protected) for s in plan.spared])


@put(WS + "/retention/{name:str}", status_code=200, responses=CHANGE,
     summary="Add or replace a retention policy (repository admin; one on a pattern alone: workspace admin)",
     description=f"Body: {POLICY}.")
async def set_retention(request: Request, ws: FromPath[str], name: FromPath[str]) -> PolicyView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Authentication required to set retention policies: use your email and an API token.")
    try:
        body = json_value(await request.body(), PolicyBody)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"The body is not what this takes ({exc}): send one JSON object, {POLICY}.") from None
    done = await anyio.to_thread.run_sync(lambda: operations.set_retention(
        r.reg, r.who, CH, ws, name, repository=body.repository, pattern=body.pattern, keep_newest=body.keep_newest,
        prerelease_days=body.prerelease_days, protect=body.protect_environments))
    return policy_view(done)


@delete(WS + "/retention/{name:str}", status_code=200, responses=CHANGE,
        summary="Remove a retention policy (the admins of what it covers)")
async def remove_retention(request: Request, ws: FromPath[str], name: FromPath[str]) -> PolicyView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Authentication required to remove retention policies: use your email and an API token.")
    done = await anyio.to_thread.run_sync(operations.remove_retention, r.reg, r.who, CH, ws, name)
    return policy_view(done)


@get(WS + "/usage", responses=READ,
     summary="The bytes the workspace's published files take, its quota, and bytes by repository and package "
             "(workspace admin)")
async def show_usage(request: Request, ws: FromPath[str]) -> UsageView:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized("Authentication required to see usage: use your email and an API token.")
    require_workspace_admin(r.snapshot, r.who, ws, f"see the storage usage of {ws}")
    u = workspace_usage(r.snapshot, ws)
    return UsageView(workspace=ws, bytes=u.bytes, files=u.files, quota_bytes=u.quota_bytes,
                     repositories=u.repositories, packages=u.packages)


router = Router(path="/api", route_handlers=[show_retention, set_retention, remove_retention, show_usage],
                tags=["retention and quotas"])
