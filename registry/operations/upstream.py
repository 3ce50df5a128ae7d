"""The workspace's upstream indexes: the settings a workspace admin edits (each edit one commit of
`upstream.json`), and the record of a file fetched from upstream on its first download.

A fetch is recorded on the snapshot it commits on: a name the workspace owns by then (unless
tracked) is refused, and so is a filename already recorded with other bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from packaging.utils import canonicalize_version

from .. import bounds, layout, names
from ..audit import Action, T
from ..blobs import Staged
from ..datadir import Registry
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, NoChange, Snapshot
from ..model import (
    BlockedVersion,
    Channel,
    Exemption,
    NameRule,
    Provenance,
    UpstreamFile,
    UpstreamIndex,
    UpstreamPolicy,
)
from ..reads.records import owns, upstream_policy
from ..upstream.credentials import Credentials, store
from ._common import make_change, replace, require_workspace_admin

log = logging.getLogger("registry.operations")
MAX_UPSTREAMS = 10
MAX_ENTRIES = 10_000  # rules, blocks, exemptions each: the record is read on every upstream page
MAX_COOLDOWN = timedelta(days=365)

Edit = Callable[[UpstreamPolicy, Provenance], UpstreamPolicy]


def _edit(reg: Registry, who: Principal, channel: Channel, ws: str, summary: str, edit: Edit) -> UpstreamPolicy:
    def build(snap: Snapshot) -> Change | NoChange:
        require_workspace_admin(snap, who, ws, f"change the upstream indexes of workspace {ws}")
        provenance = who.provenance(channel)
        current = upstream_policy(snap, ws) or UpstreamPolicy(updated=provenance)
        new = replace(edit(current, provenance), updated=provenance)
        for things in (new.upstreams, new.allow, new.deny, new.blocked, new.exempt, new.tracks):
            if len(things) > MAX_ENTRIES:
                raise Invalid(f"A workspace keeps at most {MAX_ENTRIES} of each kind of upstream rule.")
        return make_change(who, channel, Action.SET_UPSTREAM, f"upstream of {ws}: {summary}",
                           {layout.upstream(ws): new}, (T.WORKSPACE, ws), provenance=provenance, result=new)

    return reg.transact(build).result


def _without(items: list[Any], keep: Callable[[Any], bool], missing: str) -> list[Any]:
    kept = [i for i in items if keep(i)]
    if len(kept) == len(items):
        raise NotFound(missing)
    return kept


def add_upstream(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, url: str, *,
                 username: str | None = None, password: str | None = None, before: str | None = None) -> UpstreamPolicy:
    """Add (or replace, by name) an upstream index; last in priority unless ``before`` another. Its
    credentials are kept in the data directory first, then the ledger records that they are set."""
    name, url = names.upstream_name(name), names.upstream_url(url)
    username = bounds.secret(username or "", 256, "Upstream usernames")
    password = bounds.secret(password or "", 4096, "Upstream passwords")
    if ":" in username:
        raise Invalid("An upstream username can't hold ':' (HTTP Basic separates it from the password with one).")
    given = Credentials(username, password) if (username or password) else None
    if given is not None:  # (a refusal before anything is stored; the commit checks again)
        require_workspace_admin(reg.snapshot(), who, ws, f"change the upstream indexes of workspace {ws}")
        store(reg.settings, ws, name, given)

    def edit(p: UpstreamPolicy, by: Provenance) -> UpstreamPolicy:
        index = UpstreamIndex(name=name, url=url, credentials=given is not None, added=by)
        rest = [u for u in p.upstreams if u.name != name]
        if len(rest) >= MAX_UPSTREAMS:
            raise Invalid(f"A workspace has at most {MAX_UPSTREAMS} upstream indexes.")
        at = next((i for i, u in enumerate(rest) if u.name == before), None) if before else len(rest)
        if at is None:
            raise NotFound(f"Workspace {ws} has no upstream named {before!r} to put {name!r} before.")
        return replace(p, upstreams=[*rest[:at], index, *rest[at:]])

    policy = _edit(reg, who, channel, ws, f"add upstream {name} {url}", edit)
    if given is None:
        store(reg.settings, ws, name, None)  # (replaced without credentials: the old ones go)
    return policy


def remove_upstream(reg: Registry, who: Principal, channel: Channel, ws: str, name: str) -> UpstreamPolicy:
    policy = _edit(reg, who, channel, ws, f"remove upstream {name}", lambda p, by: replace(p, upstreams=_without(
        p.upstreams, lambda u: u.name != name, f"Workspace {ws} has no upstream named {name!r}.")))
    store(reg.settings, ws, name, None)
    return policy


def add_rule(reg: Registry, who: Principal, channel: Channel, ws: str, kind: str, pattern: str,
             reason: str) -> UpstreamPolicy:
    """An ``allow`` or ``deny`` rule (a pattern of names), replacing one of the same pattern."""
    if kind not in ("allow", "deny"):
        raise Invalid(f"A rule is 'allow' or 'deny', not {kind!r}.")
    pattern, reason = names.name_pattern(pattern), names.reason(reason)

    def edit(p: UpstreamPolicy, by: Provenance) -> UpstreamPolicy:
        rule = NameRule(pattern=pattern, reason=reason, added=by)
        rules = [r for r in getattr(p, kind) if r.pattern != pattern]
        return replace(p, **{kind: [*rules, rule]})

    return _edit(reg, who, channel, ws, f"{kind} {pattern}: {reason}", edit)


def remove_rule(reg: Registry, who: Principal, channel: Channel, ws: str, pattern: str) -> UpstreamPolicy:
    pattern = names.name_pattern(pattern)

    def edit(p: UpstreamPolicy, by: Provenance) -> UpstreamPolicy:
        allow = [r for r in p.allow if r.pattern != pattern]
        deny = [r for r in p.deny if r.pattern != pattern]
        if len(allow) + len(deny) == len(p.allow) + len(p.deny):
            raise NotFound(f"Workspace {ws} has no allow or deny rule {pattern!r}.")
        return replace(p, allow=allow, deny=deny)

    return _edit(reg, who, channel, ws, f"remove rule {pattern}", edit)


def block(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, version: str,
          reason: str) -> UpstreamPolicy:
    canonical, _ = names.package_name(name)
    version = names.version(version)
    reason = names.reason(reason)

    def edit(p: UpstreamPolicy, by: Provenance) -> UpstreamPolicy:
        rest = [b for b in p.blocked if not _same(b, canonical, version)]
        return replace(p, blocked=[*rest, BlockedVersion(name=canonical, version=version, reason=reason, added=by)])

    return _edit(reg, who, channel, ws, f"block {canonical} {version}: {reason}", edit)


def _same(b: BlockedVersion, name: str, version: str) -> bool:
    """Whether ``b`` blocks this release (1.0 and 1.0.0 are one release)."""
    return b.name == name and canonicalize_version(b.version) == canonicalize_version(version)


def unblock(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, version: str) -> UpstreamPolicy:
    canonical, _ = names.package_name(name)
    version = names.version(version)
    return _edit(reg, who, channel, ws, f"unblock {canonical} {version}", lambda p, by: replace(p, blocked=_without(
        p.blocked, lambda b: not _same(b, canonical, version),
        f"{canonical} {version} is not on the block list of workspace {ws}.")))


def set_cooldown(reg: Registry, who: Principal, channel: Channel, ws: str, days: float) -> UpstreamPolicy:
    if not 0 <= days <= MAX_COOLDOWN.days:
        raise Invalid(f"Give a cooldown of 0 (none) to {MAX_COOLDOWN.days} days; {days:g} is not.")
    seconds = round(days * 86400)
    return _edit(reg, who, channel, ws, f"cooldown {days:g} days",
                 lambda p, by: replace(p, cooldown_seconds=seconds))


def exempt(reg: Registry, who: Principal, channel: Channel, ws: str, kind: str, name: str, reason: str,
           *, undo: bool = False) -> UpstreamPolicy:
    """Exempt a project from the cooldown (``kind`` "exempt"), or have an owned name track its
    upstream releases too ("tracks", PEP 708); ``undo`` takes it back."""
    if kind not in ("exempt", "tracks"):
        raise Invalid(f"An exemption is 'exempt' or 'tracks', not {kind!r}.")
    canonical, _ = names.package_name(name)
    what = "from the cooldown" if kind == "exempt" else "tracking upstream releases"
    if undo:
        return _edit(reg, who, channel, ws, f"un-{kind} {canonical}", lambda p, by: replace(p, **{kind: _without(
            getattr(p, kind), lambda e: e.name != canonical, f"{canonical} is not exempt {what} in workspace {ws}."
            if kind == "exempt" else f"{canonical} is not {what} in workspace {ws}.")}))
    reason = names.reason(reason)

    def edit(p: UpstreamPolicy, by: Provenance) -> UpstreamPolicy:
        rest = [e for e in getattr(p, kind) if e.name != canonical]
        return replace(p, **{kind: [*rest, Exemption(name=canonical, reason=reason, granted=by)]})

    return _edit(reg, who, channel, ws, f"{kind} {canonical}: {reason}", edit)


# --- a file fetched from upstream ------------------------------------------------------------------


def record_fetch(reg: Registry, who: Principal, ws: str, record: UpstreamFile, staged: Staged,
                 wait: float = 30.0) -> UpstreamFile:
    """Store a file pulled from upstream and record it, as one commit (its bytes durable first, as
    for a publish). The identical record already there: nothing changes (the bytes are repaired if
    they went missing)."""

    def checked(snap: Snapshot) -> NoChange | None:
        policy = upstream_policy(snap, ws)
        if policy is None or not any(u.name == record.upstream for u in policy.upstreams):
            raise Conflict(f"Workspace {ws} no longer has the upstream {record.upstream!r}: {record.filename} is "
                           "not recorded.")
        if owns(snap, ws, record.project) and not any(t.name == record.project for t in policy.tracks):
            raise Forbidden(f"{record.project!r} is a package of workspace {ws}: its files never come from upstream.")
        existing = snap.get(layout.upstream_file(ws, record.project, record.filename), UpstreamFile)
        if existing is not None:
            if existing.sha256 != record.sha256:
                raise Conflict(f"Upstream {record.upstream!r} now serves other bytes as {record.filename} (sha256 "
                               f"{record.sha256}) than were fetched before ({existing.sha256}): refused.")
            return NoChange(existing)
        return None

    store_first = reg.blobs.remote and checked(reg.snapshot()) is None

    def build(snap: Snapshot) -> Change | NoChange:
        same = checked(snap)
        if same is not None:
            return same
        if reg.blobs.remote and not store_first:
            raise Conflict(f"The ledger changed while {record.filename} was fetched; it is fetched again next time.")
        pending: list = []
        reg.blobs.adopt(staged, defer=pending)
        change = make_change(
            who, "upstream", Action.FETCH_UPSTREAM,
            f"fetch {record.project} {record.version} from upstream {record.upstream}: {record.filename}",
            {layout.upstream_file(ws, record.project, record.filename): record},
            (T.WORKSPACE, ws), (T.PACKAGE, record.project), (T.VERSION, record.version), (T.FILE, record.filename),
            (T.SHA256, record.sha256), (T.SIZE, str(record.size)), (T.UPSTREAM, record.upstream),
            (T.UPSTREAM_URL, record.url),
            *(((T.UPLOAD_TIME, record.upload_time.isoformat()),) if record.upload_time else ()),
            provenance=record.fetched, result=record)
        return dataclasses.replace(change, needs=tuple(pending))

    with reg.blobs.placed(staged, wait) if store_first else contextlib.nullcontext():
        done = reg.transact(build, timeout=wait)
    if done.commit is None and reg.blobs.repair(staged):
        log.warning("fetch %s: the stored copy of %s was missing or damaged; stored again", ws, record.filename)
    return done.result
