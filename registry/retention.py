"""Which versions the workspace's retention policies delete, and why: one pure function of a
snapshot (``plan``), which the dry run prints and the apply carries out, deletion by deletion,
computing it again for the package on the snapshot each deletion commits on.

A policy applies to the packages linked to its repository and/or whose normalised names match its
pattern. A version goes if one of its rules selects it: it is not among the ``keep_newest`` newest
versions (PEP 440 order, pre-releases included), or it is a pre-release or dev release older than
``prerelease_days`` (by its earliest file's upload time, as the indexes serve it). Whatever the
rules say, a version stays if it is the package's newest release (as the index picks it: not yanked,
final, highest) or if a pipeline published one of its files while deploying to an environment that
a policy applying to the package protects (by the UUID its verified token carried, or the name the
step reported). Several policies on one package: the union of what their rules select, the union
of what they protect; a deletion is credited to the first policy, by name, whose rule selected it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from packaging.version import Version as PkgVersion

from . import layout, model
from .ledger import Snapshot
from .reads.records import list_packages, versions


@dataclass(frozen=True)
class Doomed:
    """A version the plan deletes: which, by which policy and rule, and how old it is."""

    package: str
    version: str
    policy: str
    reason: str  # the rule, in words
    age_days: int
    files: int
    bytes: int


@dataclass(frozen=True)
class Spared:
    """A version a rule selected that a protection keeps."""

    package: str
    version: str
    policy: str
    reason: str  # the rule that selected it
    protected: str  # why it stays


@dataclass(frozen=True)
class Plan:
    deletions: list[Doomed]
    spared: list[Spared]


def policies(snap: Snapshot, ws: str) -> list[model.RetentionPolicy]:
    return sorted(snap.records(layout.retention_dir(ws), model.RetentionPolicy), key=lambda p: p.name)


def applies(policy: model.RetentionPolicy, package: model.Package) -> bool:
    if policy.repository is not None and policy.repository != package.repository:
        return False
    return policy.pattern is None or fnmatch.fnmatchcase(package.name, policy.pattern)


def plan(snap: Snapshot, ws: str, now: datetime, package: str | None = None) -> Plan:
    """What the workspace's policies delete at ``now`` (of one package, if named)."""
    rules = policies(snap, ws)
    deletions: list[Doomed] = []
    spared: list[Spared] = []
    if not rules:
        return Plan(deletions, spared)
    for pkg in list_packages(snap, ws):
        if package is not None and pkg.name != package:
            continue
        mine = [p for p in rules if applies(p, pkg)]
        if mine:
            d, s = plan_package(mine, pkg.name, versions(snap, ws, pkg.name), now)
            deletions += d
            spared += s
    return Plan(deletions, spared)


def plan_package(rules: list[model.RetentionPolicy], name: str, all_versions: list[model.Version],
                 now: datetime) -> tuple[list[Doomed], list[Spared]]:
    """The plan for one package's versions under the policies that apply to it."""
    newest_first = sorted(all_versions, key=lambda v: model.release_key(v.version), reverse=True)
    newest_release = model.latest_release(all_versions)
    environments = {e.lower() for p in rules for e in p.protect_environments}
    deletions: list[Doomed] = []
    spared: list[Spared] = []
    for rank, version in enumerate(newest_first):
        age = now - published_at(version)
        selected = next(((p, why) for p in sorted(rules, key=lambda p: p.name)
                         if (why := _selects(p, version, rank, age.days))), None)
        if selected is None:
            continue
        policy, why = selected
        protected = ("the package's newest release" if newest_release is not None and version is newest_release
                     else _deployed(version, environments))
        if protected:
            spared.append(Spared(name, version.version, policy.name, why, protected))
        else:
            deletions.append(Doomed(name, version.version, policy.name, why, max(0, age.days), len(version.files),
                                    sum(f.size for f in version.files)))
    return deletions, spared


def published_at(version: model.Version) -> datetime:
    """When a version was published: its earliest file's upload time (an imported file's is the
    time its source index gave), or the version's own record for one without files."""
    return min((f.upload_time_served for f in version.files), default=version.created.at)


def _selects(policy: model.RetentionPolicy, version: model.Version, rank: int, age_days: int) -> str:
    """Why this policy's rules select the version ('' if they don't)."""
    if policy.keep_newest is not None and rank >= policy.keep_newest:
        return f"keep the newest {policy.keep_newest} versions (this is number {rank + 1})"
    if policy.prerelease_days is not None and _prerelease(version.version) and age_days > policy.prerelease_days:
        return f"pre-releases and dev releases older than {policy.prerelease_days} days go (this one: {age_days} days)"
    return ""


def _prerelease(version: str) -> bool:
    key = model.release_key(version)[1]
    return isinstance(key, PkgVersion) and (key.is_prerelease or key.is_devrelease)


def _deployed(version: model.Version, environments: Iterable[str]) -> str:
    """Which protected deployment environment a pipeline published one of its files into ('' if none)."""
    wanted = set(environments)
    if not wanted:
        return ""
    for f in version.files:
        run = f.uploaded.pipeline
        if run is None:
            continue
        named = run.reported.deployment_environment if run.reported else None
        for env in (run.environment_uuid, named):
            if env and env.lower() in wanted:
                return f"published by a pipeline deploying to {env}"
    return ""
