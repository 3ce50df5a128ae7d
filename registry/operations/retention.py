"""Retention policies (set and removed by the admins of what they cover), the deletions they make
(one commit each, naming the policy), and a workspace's quota (the operator's)."""

from __future__ import annotations

from datetime import datetime

from .. import bounds, layout, names, retention, visibility
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Forbidden, Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, Commit, NoChange, Snapshot
from ..model import Channel, RetentionPolicy, Workspace
from ..permissions import require
from ..reads.records import get_package, get_version
from ..reads.usage import counted as counted_usage
from ._common import make_change, replace, require_operator, require_workspace_admin
from .packages import deletion

MAX_DAYS = 36500  # a hundred years: more is surely a mistake
MAX_KEEP = 100_000


def _scope(snap: Snapshot, who: Principal, ws: str, policy: RetentionPolicy, doing: str) -> None:
    """A policy on a repository is its admins' (and the workspace's); one on a name pattern alone
    covers packages of every repository, so it is the workspace admins'."""
    if who.kind == "pipeline":
        raise Forbidden("A pipeline may publish and read its repository's packages, but not change retention "
                        "policies; a repository admin must do it.")
    if policy.repository is None:
        require_workspace_admin(snap, who, ws, doing)
        return
    visibility.repository(snap, who, ws, policy.repository)
    require(snap, who, ws, policy.repository, "admin", doing)


def set_retention(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, *,
                  repository: str | None = None, pattern: str | None = None, keep_newest: int | None = None,
                  prerelease_days: int | None = None, protect: list[str] | None = None) -> RetentionPolicy:
    """Add or replace a retention policy (one commit; none if it is already so)."""
    name = names.policy_name(name)
    repository = names.repository_slug(repository) if repository else None
    pattern = names.name_pattern(pattern) if pattern else None
    if repository is None and pattern is None:
        raise Invalid("Say which packages the policy covers: --repo REPO (those linked to it), --pattern GLOB "
                      "(normalised names, e.g. 'acme-*'), or both.")
    if keep_newest is None and prerelease_days is None:
        raise Invalid("Give the policy a rule: --keep-newest N (versions) and/or --prerelease-days D.")
    if keep_newest is not None and not 1 <= keep_newest <= MAX_KEEP:
        raise Invalid(f"--keep-newest must be from 1 to {MAX_KEEP}, not {keep_newest} (the newest release is kept "
                      "whatever it says).")
    if prerelease_days is not None and not 0 <= prerelease_days <= MAX_DAYS:
        raise Invalid(f"--prerelease-days must be from 0 to {MAX_DAYS}, not {prerelease_days}.")
    environments = sorted({names.environment(e) for e in bounds.count(protect or [], bounds.ENVIRONMENTS,
                                                                      "protected environments")})

    def build(snap: Snapshot) -> Change | NoChange:
        record = RetentionPolicy(name=name, repository=repository, pattern=pattern, keep_newest=keep_newest,
                                 prerelease_days=prerelease_days, protect_environments=environments,
                                 updated=who.provenance(channel))
        old = snap.get(layout.retention_policy(ws, name), RetentionPolicy)
        if old is not None:  # (changing it takes the right over what it covered, and over what it will)
            _scope(snap, who, ws, old, f"change retention policy {name!r} of {ws}")
        _scope(snap, who, ws, record, f"set retention policy {name!r} of {ws}")
        if repository is not None and not snap.exists(layout.repository(ws, repository)):
            raise NotFound(f"Repository {ws}/{repository} does not exist.")
        if old is not None and replace(old, updated=record.updated) == record:
            return NoChange(old)
        return make_change(who, channel, Action.SET_RETENTION, f"set retention policy {name} of {ws}: "
                           f"{describe(record)}", {layout.retention_policy(ws, name): record},
                           (T.WORKSPACE, ws), (T.RETENTION_POLICY, name),
                           *(((T.REPOSITORY, repository),) if repository else ()),
                           provenance=record.updated, result=record)

    return reg.transact(build).result


def remove_retention(reg: Registry, who: Principal, channel: Channel, ws: str, name: str) -> RetentionPolicy:
    name = names.policy_name(name)

    def build(snap: Snapshot) -> Change:
        if not snap.exists(layout.workspace(ws)):
            raise visibility.hidden(who, ws, f"Workspace {ws!r} does not exist.")
        old = snap.get(layout.retention_policy(ws, name), RetentionPolicy)
        if old is None:
            raise NotFound(f"Workspace {ws} has no retention policy {name!r} (`registry retention show {ws}` lists "
                           "them).")
        _scope(snap, who, ws, old, f"remove retention policy {name!r} of {ws}")
        return make_change(who, channel, Action.REMOVE_RETENTION, f"remove retention policy {name} of {ws}",
                           {layout.retention_policy(ws, name): None}, (T.WORKSPACE, ws), (T.RETENTION_POLICY, name),
                           result=old)

    return reg.transact(build).result


def apply_deletion(reg: Registry, who: Principal, channel: Channel, ws: str, doomed: retention.Doomed,
                   now: datetime, scheduled: str | None = None) -> Commit | None:
    """Delete one version a plan named, in its own commit naming the policy; the plan is computed
    again for its package on the snapshot the commit builds on, so a version a publish or a policy
    change has spared since is left alone (None). ``scheduled``: the server's own run made it, by
    this setting (its `Scheduled` trailer), not someone running `registry retention apply`."""
    by = (T.SCHEDULED, scheduled) if scheduled else None

    def build(snap: Snapshot) -> Change | NoChange:
        package = get_package(snap, ws, doomed.package)
        if package is None:
            return NoChange(None)
        require(snap, who, ws, package.repository, "write", f"delete versions of {doomed.package!r}")
        still = retention.plan(snap, ws, now, package=doomed.package).deletions
        match = next((d for d in still if (d.version, d.policy) == (doomed.version, doomed.policy)), None)
        record = get_version(snap, ws, doomed.package, doomed.version)
        if match is None or record is None:
            return NoChange(None)
        return deletion(snap, who, channel, ws, doomed.package, record, (T.RETENTION_POLICY, match.policy),
                        *((by,) if by else ()),
                        body=f"Retention policy {match.policy}: {match.reason}; published {match.age_days} days "
                             "ago." + (f"\nApplied by the server's scheduled run ({scheduled})." if by else ""))

    return reg.transact(build).commit


def set_quota(reg: Registry, who: Principal, channel: Channel, ws: str, limit: int | None) -> Workspace:
    """The operator sets (or, None, removes) a workspace's quota; its usage is counted afresh in the
    same commit, so the running figure starts from the records whatever came before."""
    require_operator(who, "set workspace quotas")
    if limit is not None and not 0 <= limit < 2**63:  # (a ledger record's integers are 64-bit)
        raise Invalid(f"A quota is a number of bytes, 0 to {2**63 - 1}, or 'none', not {bounds.shown(str(limit))}.")

    def build(snap: Snapshot) -> Change:
        workspace = snap.get(layout.workspace(ws), Workspace)
        if workspace is None:
            raise NotFound(f"Workspace {ws!r} does not exist.")
        usage = counted_usage(snap, ws)
        record = replace(workspace, quota_bytes=limit, quota_set=who.provenance(channel))
        said = "none" if limit is None else str(limit)
        return make_change(who, channel, Action.SET_QUOTA, f"quota of workspace {ws}: {said} "
                           f"(uses {usage.bytes} bytes in {usage.files} files)",
                           {layout.workspace(ws): record, layout.usage(ws): usage}, (T.WORKSPACE, ws),
                           (T.QUOTA, said), provenance=record.quota_set, result=record)

    return reg.transact(build).result


def describe(policy: RetentionPolicy) -> str:
    """A policy in one line, as commits, the CLI and the UI say it."""
    covers = " and ".join(x for x in (f"repository {policy.repository}" if policy.repository else "",
                                      f"names {policy.pattern}" if policy.pattern else "") if x)
    rules = [f"keep the newest {policy.keep_newest}" if policy.keep_newest is not None else "",
             f"pre-releases older than {policy.prerelease_days} days go" if policy.prerelease_days is not None
             else ""]
    kept = "; never the newest release"
    if policy.protect_environments:
        kept += ", nor what pipelines deployed to " + ", ".join(policy.protect_environments)
    return f"{covers}: {'; '.join(r for r in rules if r)}{kept}"

