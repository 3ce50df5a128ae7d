"""What a workspace offers of an upstream project: the one place that decides, for a name and the
files an upstream page lists, which names may come from upstream at all (ownership, allow and deny
rules), which releases are withheld (the block list, the cooldown) and which hash each file is
served with. Pure: no I/O, so every rule is tested alone.

The rules, in the order they are applied:
1. A name the workspace owns, or ever owned, never comes from upstream, unless the policy
   ``tracks`` it: then upstream releases it doesn't have itself are mixed in (PEP 708).
2. A name matching a deny rule is refused; if there are allow rules, a name matching none is too.
3. A blocked release is withheld; so is a release younger than the cooldown (by the earliest
   upload-time of its files, or when this registry first saw it listed if the index gives none),
   unless the project is exempt.
4. A file already fetched is served with the hash recorded then: if the index now lists other
   bytes under its name, they are refused (``changed``) and the recorded ones kept.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import InvalidWheelFilename, canonicalize_name, canonicalize_version, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..model import UpstreamFile, UpstreamPolicy
from .pages import Listed

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar.xz")


def version_of(filename: str, project: str) -> str | None:
    """The version a wheel's or an sdist's filename names (PEP 440's normal form: 2.0 stays 2.0),
    for ``project``; None for anything else (eggs, installers) and for a filename of another project."""
    if filename.endswith(".whl"):
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return str(version) if name == project else None
    stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), None)
    if stem is None:
        return None
    for i, ch in enumerate(stem):  # (old sdists spell the name their own way: any dash may end it)
        if ch == "-" and canonicalize_name(stem[:i]) == project:
            try:
                return str(Version(stem[i + 1:]))
            except InvalidVersion:
                return None
    return None


def name_refused(policy: UpstreamPolicy, ws: str, name: str) -> str | None:
    """Why ``name`` may not come from upstream by the workspace's rules (None: it may)."""
    for rule in policy.deny:
        if fnmatch.fnmatchcase(name, rule.pattern):
            return (f"{name!r} matches the deny rule {rule.pattern!r} of workspace {ws} ({rule.reason}): it is not "
                    f"served from upstream. A workspace admin lifts it with `registry upstream unrule {ws} "
                    f"{rule.pattern}`.")
    if policy.allow and not any(fnmatch.fnmatchcase(name, rule.pattern) for rule in policy.allow):
        patterns = ", ".join(r.pattern for r in policy.allow)
        return (f"{name!r} matches none of the allow rules of workspace {ws} ({patterns}): only those names are "
                f"served from upstream. A workspace admin adds one with `registry upstream allow {ws} PATTERN "
                "--reason TEXT`.")
    return None


@dataclass(frozen=True)
class Offer:
    """A file the workspace offers from upstream, and the hash it is served with."""

    version: str
    listed: Listed
    sha256: str | None  # the recorded one once fetched; until then the index's (None: it gave none)
    recorded: UpstreamFile | None = None


@dataclass
class Decided:
    offered: list[Offer] = field(default_factory=list)
    withheld: dict[str, str] = field(default_factory=dict)  # filename -> why, said to whoever asks for it
    changed: list[str] = field(default_factory=list)  # filenames whose bytes upstream changed since fetched
    changes_at: datetime | None = None  # when the first release withheld by the cooldown comes of age

    def find(self, filename: str) -> Offer | None:
        return next((o for o in self.offered if o.listed.filename == filename), None)


def _age(days: float) -> str:
    if days >= 1:
        return f"{days:.1f} days"
    return f"{days * 24:.1f} hours"


def decide(policy: UpstreamPolicy, ws: str, project: str, files: list[Listed], recorded: dict[str, UpstreamFile],
           first_seen: dict[str, float], now: datetime, own_versions: frozenset[str] = frozenset()) -> Decided:
    """What of ``files`` (one upstream page) the workspace offers, and why the rest is withheld.
    ``recorded``: the files fetched already, by filename; ``first_seen``: when this registry first
    saw each version listed (a Unix time); ``own_versions``: a tracked name's own releases
    (canonical: `canonicalize_version`), which upstream's never replace."""
    out = Decided()
    by_version: dict[str, list[Listed]] = {}
    for f in files:
        v = version_of(f.filename, project)
        if v is None or canonicalize_version(v) in own_versions:
            continue
        by_version.setdefault(v, []).append(f)
    blocked = {canonicalize_version(b.version): b for b in policy.blocked if b.name == project}
    exempt = any(e.name == project for e in policy.exempt)
    cooldown = timedelta(seconds=policy.cooldown_seconds)
    for v, listed in by_version.items():
        why = None
        if canonicalize_version(v) in blocked:
            b = blocked[canonicalize_version(v)]
            why = (f"{project} {v} is on the block list of workspace {ws} ({b.reason}). A workspace admin lifts it "
                   f"with `registry upstream unblock {ws} {project} {v}`.")
        elif cooldown and not exempt:
            times = [f.upload_time for f in listed if f.upload_time is not None]
            born = min(times) if times else (datetime.fromtimestamp(first_seen[v], now.tzinfo) if v in first_seen
                                             else now)
            if now - born < cooldown:
                out.changes_at = min(out.changes_at or born + cooldown, born + cooldown)
                said = "was uploaded upstream" if times else "was first seen upstream by this registry"
                why = (f"{project} {v} {said} {_age((now - born).total_seconds() / 86400)} ago; workspace {ws} "
                       f"offers upstream releases once they are {_age(cooldown.total_seconds() / 86400)} old "
                       f"(its cooldown). A workspace admin exempts the project with `registry upstream exempt {ws} "
                       f"{project} --reason TEXT`.")
        for f in listed:
            if why is not None:
                out.withheld[f.filename] = why
                continue
            have = recorded.get(f.filename)
            if have is not None and f.sha256 is not None and f.sha256 != have.sha256:
                out.changed.append(f.filename)
            out.offered.append(Offer(version=v, listed=f, sha256=have.sha256 if have else f.sha256, recorded=have))
    return out
