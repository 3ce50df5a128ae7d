"""Finding what in the ledger can't be read back, and taking it out.

The ledger refuses to write what it couldn't read back (ledger/guard.py), but a ledger written by an
older release may hold it: a tree entry whose name libgit2 can't parse or no checkout can create (a
package name of 100,000 characters), a record that doesn't decode as its type or sits where its
content says it doesn't belong. `scan` names each by its path, reading trees with our own parser so
that nothing it meets can stop it; `registry verify` reports them, and `repair` removes them in one
signed commit whose message says what and why.

A record that reads back fine but breaks a rule of today's (a person's name holding `<`, a yank
reason with a control character) is no damage: it is noted, and kept. Whoever must remove one names
it (`registry repair PATH --apply`): data is never removed for a rule it was accepted under.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec

from . import layout, model, names
from .audit import Action, T
from .datadir import Registry
from .errors import Invalid, NotFound
from .identity import Principal
from .ledger import Change, Commit, NoChange, Snapshot, trees
from .operations._common import make_change, require_operator
from .operations.packages import tombstones
from .reads.records import list_packages


@dataclass(frozen=True)
class Damaged:
    """Something `repair` would remove: ``path`` (exact), and why."""

    path: str
    reason: str

    @property
    def shown(self) -> str:
        """The path as a person can read it: a long segment cut short, a strange one quoted."""
        return trees.shown(self.path)


@dataclass(frozen=True)
class Checked:
    """A record `scan` read (``record``), or something it found wrong (``damage``); ``note``: what a
    readable record breaks of today's rules."""

    path: str
    record: model.Record | None = None
    damage: Damaged | None = None
    note: Damaged | None = None


def scan(snap: Snapshot) -> Iterator[Checked]:
    """Every record of the snapshot, decoded and checked, and everything that can't be read back."""
    for found in snap.walk():
        if found.problem:
            yield Checked(found.path, damage=Damaged(found.path, f"git can't read it back: {found.problem}"))
            continue
        if found.is_tree:
            continue
        path = found.path
        type_ = layout.record_type(path)
        if type_ is None:
            if path != layout.README:
                yield Checked(path, damage=Damaged(path, "not a known kind of record"))
            continue
        raw = snap.raw(path)
        if raw is None:  # (walk met a file there; git's own lookup finds none)
            yield Checked(path, damage=Damaged(path, "git can't read it back"))
            continue
        try:
            record = msgspec.json.decode(raw, type=type_, strict=True)
        except msgspec.DecodeError as exc:  # (ValidationError included)
            yield Checked(path, damage=Damaged(_unit(path, type_),
                                               f"does not match the {type_.__name__} schema: {exc}"))
            continue
        try:
            expected = layout.expected_path(path, record)
        except ValueError as exc:  # (a version packaging can't even canonicalise)
            expected = f"no path ({exc})"
        if expected != path:
            yield Checked(path, damage=Damaged(_unit(path, type_), f"its content belongs at {expected}"))
            continue
        problems = names.record_problems(record)
        note = Damaged(_unit(path, type_), "reads back, but breaks today's rules: " + " ".join(problems)) \
            if problems else None
        yield Checked(path, record=record, note=note)


def _unit(path: str, type_: type) -> str:
    """What goes when the record at ``path`` does: a package goes with its versions (a version
    without its package can be neither read nor deleted); anything else alone."""
    return path.removesuffix("/package.json") if type_ is model.Package else path


def damaged(snap: Snapshot, named: Sequence[str] = ()) -> list[Damaged]:
    """What `repair` would remove, each once (nothing under something already removed): what can't
    be read back, and of the records that only break today's rules, those ``named`` by path."""
    found: list[Damaged] = []
    for c in scan(snap):
        if c.damage is not None:
            found.append(c.damage)
        elif c.note is not None and any(_matches(c.note, p) for p in named):
            found.append(c.note)
    out: list[Damaged] = []
    for d in sorted(found, key=lambda d: d.path):
        if not any(d.path == o.path or d.path.startswith(o.path + "/") for o in out):
            out.append(d)
    return out


def _chosen(found: list[Damaged], only: list[str]) -> list[Damaged]:
    if not only:
        return found
    chosen = [d for d in found if any(_matches(d, p) for p in only)]
    for p in only:
        if not any(_matches(d, p) for d in found):
            raise NotFound(f"{p!r} is not among what `registry repair` would remove: it reads back and keeps today's "
                           "rules (change it with the commands for its kind of record), or is not there.")
    return chosen


def _matches(d: Damaged, given: str) -> bool:
    given = given.rstrip("/")
    return d.path == given or d.path.startswith(given + "/") or d.shown == given or d.shown.startswith(given + "/")


@dataclass(frozen=True)
class Repaired:
    found: list[Damaged]  # what was removed (or, without apply, would be)
    commit: Commit | None = None


def repair(reg: Registry, who: Principal, *, only: list[str] | None = None, apply: bool = False) -> Repaired:
    """Remove what can't be read back (``only``: what is at or under these paths) in one commit,
    signed like every other; without ``apply``, only say what that would be."""
    require_operator(who, "repair the ledger")
    if not apply:
        return Repaired(_chosen(damaged(reg.snapshot(), only or []), only or []))

    def build(snap: Snapshot) -> Change | NoChange:
        chosen = _chosen(damaged(snap, only or []), only or [])
        if not chosen:
            return NoChange(Repaired([]))
        noun = "entry" if len(chosen) == 1 else "entries"
        body = "\n".join(f"- {d.shown}: {d.reason}" for d in chosen)
        provenance = who.provenance("cli")
        writes = {d.path: None for d in chosen} | _spent_filenames(snap, chosen, provenance) | _usage(snap, chosen)
        return make_change(who, "cli", Action.REPAIR, f"repair: remove {len(chosen)} {noun} the ledger can't read back",
                           writes, *_facts(chosen), body=f"Removed:\n{body}", result=Repaired(chosen),
                           provenance=provenance)

    done = reg.transact(build)
    return Repaired(done.result.found, done.commit)


def _spent_filenames(snap: Snapshot, chosen: list[Damaged], provenance: model.Provenance) -> dict:
    """The deleted-files records of packages whose versions a repair removes (where they can still
    be read): their filenames are never accepted again, as after any deletion."""
    gone: dict[tuple[str, str], list[model.Version]] = {}
    for d in chosen:
        parts = d.path.split("/")
        if len(parts) < 6 or parts[0] != "workspaces" or parts[2] != "packages" or not _valid_name(parts[5]):
            continue
        ws, name = parts[1], parts[5]
        if len(parts) == 6:  # the whole package
            versions = list(snap.records(layout.versions_dir(ws, name), model.Version))
        else:
            version = snap.get(d.path, model.Version) if layout.record_type(d.path) is model.Version else None
            versions = [version] if version is not None else []
        if versions:
            gone.setdefault((ws, name), []).extend(versions)
    return {layout.deleted_files(ws, name): tombstones(snap, ws, name, versions, provenance)
            for (ws, name), versions in gone.items()}


def _usage(snap: Snapshot, chosen: list[Damaged]) -> dict:
    """The usage figure of each workspace whose versions a repair removes, counted again without
    them (what `verify` checks it against), so that the quota is checked against what is left."""
    def removed(path: str) -> bool:
        return any(path == d.path or path.startswith(d.path + "/") for d in chosen)

    out = {}
    touched = {parts[1] for parts in (d.path.split("/") for d in chosen) if parts[0] == "workspaces"
               and parts[2:3] == ["packages"]}
    for ws in sorted(touched):
        if snap.get(layout.usage(ws), model.StorageUsage) is None:
            continue  # (a ledger from before the figure: it is counted when asked for)
        total = files = 0
        for package in list_packages(snap, ws):
            for path in snap.files(layout.versions_dir(ws, package.name)):
                version = None if removed(path) else snap.get(path, model.Version)
                if version is not None:
                    total += sum(f.size for f in version.files)
                    files += len(version.files)
        out[layout.usage(ws)] = model.StorageUsage(bytes=total, files=files)
    return out


def _valid_name(name: str) -> bool:
    try:
        return names.package_name(name)[0] == name
    except Invalid:
        return False


def _facts(chosen: list[Damaged]) -> list[tuple[str, str]]:
    """The workspaces and packages the removals concern, where their names are still valid ones."""
    facts: list[tuple[str, str]] = []
    for d in chosen:
        parts = d.path.split("/")
        for key, index, valid in ((T.WORKSPACE, 1, names.workspace_slug), (T.PACKAGE, 5, names.package_name)):
            if parts[0] != "workspaces" or len(parts) <= index or (key == T.PACKAGE and parts[2] != "packages"):
                continue
            try:
                valid(parts[index])
            except Invalid:
                continue
            if (key, parts[index]) not in facts:
                facts.append((key, parts[index]))
    return facts
