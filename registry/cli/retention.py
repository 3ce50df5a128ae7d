"""Retention policies and quotas: `registry retention` and `registry workspace quota`."""

from __future__ import annotations

from .. import bounds, model, operations, retention
from ..errors import RegistryError, size
from ..operations.retention import describe
from ..reads.usage import workspace_usage
from .command import CHANNEL, Opened, known_workspace, opened


@opened
def retention_set(cx: Opened) -> int:
    a = cx.args
    policy = operations.set_retention(cx.reg, cx.who, CHANNEL, a.workspace, a.name, repository=a.repo,
                                      pattern=a.pattern, keep_newest=a.keep_newest,
                                      prerelease_days=a.prerelease_days, protect=a.protect)
    print(f"retention policy {policy.name} of {a.workspace}: {describe(policy)}")
    return 0


@opened
def retention_show(cx: Opened) -> int:
    known_workspace(cx.read, cx.args.workspace)
    policies = retention.policies(cx.read.snapshot, cx.args.workspace)
    for p in policies:
        print(f"{p.name}\t{describe(p)}\t(set by {p.updated.by} on {p.updated.at:%Y-%m-%d})")
    if not policies:
        print(f"workspace {cx.args.workspace} has no retention policy (`registry retention set` adds one)")
    return 0


@opened
def retention_remove(cx: Opened) -> int:
    policy = operations.remove_retention(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name)
    print(f"removed retention policy {policy.name} of {cx.args.workspace}")
    return 0


@opened
def retention_apply(cx: Opened) -> int:
    """The plan (every workspace's, or one's), printed; then, unless --dry-run, each deletion in its commit."""
    now = model.now()
    snap = cx.reg.snapshot()
    workspaces = [cx.args.workspace] if cx.args.workspace else snap.names("workspaces")
    if cx.args.workspace:
        known_workspace(cx.read, cx.args.workspace)
    deleted = 0
    for ws in workspaces:
        plan = retention.plan(snap, ws, now)
        for s in plan.spared:
            print(f"keep   {ws}/{s.package} {s.version}: {s.protected} (policy {s.policy}: {s.reason})")
        for d in plan.deletions:
            verb = "would delete" if cx.args.dry_run else "delete"
            print(f"{verb} {ws}/{d.package} {d.version}: policy {d.policy}: {d.reason}; published {d.age_days} days "
                  f"ago; {d.files} files, {size(d.bytes)}")
            if not cx.args.dry_run and operations.apply_deletion(cx.reg, cx.who, CHANNEL, ws, d, now) is not None:
                deleted += 1
    if not cx.args.dry_run:
        print(f"deleted {deleted} versions; the running server frees their files once the grace period has passed, "
              "`registry gc` frees them now")
    return 0


@opened
def workspace_quota(cx: Opened) -> int:
    """`registry workspace quota WS [BYTES|none]`: shows the usage and quota, or sets it."""
    ws, value = cx.args.slug, cx.args.bytes
    if value is not None:
        if value.lower() == "none":
            limit = None
        elif value.isascii() and value.isdigit() and len(value) <= 20:  # (set_quota bounds it)
            limit = int(value)
        else:
            raise RegistryError(f"Give the quota as a number of bytes (e.g. 10737418240 for 10 GiB) or 'none', not "
                                f"{bounds.shown(value)}.")
        operations.set_quota(cx.reg, cx.who, CHANNEL, ws, limit)
    known_workspace(cx.read, ws)
    usage = workspace_usage(cx.reg.snapshot(), ws)
    limit_text = "no quota" if usage.quota_bytes is None else f"quota {size(usage.quota_bytes)}"
    print(f"workspace {ws}: {size(usage.bytes)} in {usage.files} files; {limit_text}")
    for slug, used in sorted(usage.repositories.items()):
        print(f"  repository {ws}/{slug}: {size(used)}")
    return 0
