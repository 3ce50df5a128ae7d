"""Who may see what, and what everyone else is told: exactly what they would be told if it didn't exist.

A caller who may not read a package, a repository, a project or a workspace gets the answer for a
missing one: the same status, the same words, the same headers. Strangers (no credentials) get
401 with `WWW-Authenticate` for both, so that pip and uv retry with stored credentials; a signed-in
caller gets 404 for both. Only someone who may read a thing learns that they may not change it.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import InvalidName, canonicalize_name

from . import layout, model
from .errors import NotFound, RegistryError, Unauthorized
from .history import Filed
from .identity import Principal
from .ledger import Snapshot
from .model import Package, Project, Repository, RetiredRepository, Workspace
from .permissions import role_on, role_on_workspace


def hidden(who: Principal, ws: str | None, missing: str) -> RegistryError:
    """The refusal for something ``who`` may not see, or that doesn't exist (the same thing)."""
    if who.kind == "anonymous":
        where = f" for workspace {ws}" if ws else ""
        return Unauthorized(f"Authentication required: use your email and an API token{where}.")
    return NotFound(missing)


def project_name(name: str) -> str:
    """The normalised name, or a 404 that says what a project name is (never a redirect to it)."""
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise NotFound(f"{name!r} is not a valid project name: names are ASCII letters, digits and '.', '_', '-', "
                       "starting and ending with a letter or digit (PEP 508).") from None


def can_read(snap: Snapshot, who: Principal, ws: str, repo: str) -> bool:
    """Whether ``who`` may read the repository (which must exist: `role_on` raises NotFound otherwise)."""
    return model.at_least(role_on(snap, who, ws, repo), "read")


def can_read_now(now: Snapshot, who: Principal, ws: str, repo: str) -> bool:
    """For a package of the past: whether ``who`` may read its repository today (a repository
    that doesn't exist today is read by no one)."""
    return now.exists(layout.repository(ws, repo)) and can_read(now, who, ws, repo)


def sees_workspace(snap: Snapshot, who: Principal, ws: str) -> bool:
    """Whether the workspace exists for ``who``: they administer it or may read one of its repositories."""
    if snap.get(layout.workspace(ws), Workspace) is None:
        return False
    if role_on_workspace(snap, who, ws) == "admin":
        return True
    return any(can_read(snap, who, ws, r.slug) for r in snap.records(layout.repositories_dir(ws), Repository))


def member(snap: Snapshot, who: Principal, ws: str) -> bool:
    """Whether ``who`` belongs to the workspace: the operator, its admins, a pipeline of one of its
    repositories, or a user granted a role on one of its projects or repositories. The read anyone
    has on a public repository doesn't make a member. (Members read upstream projects through it.)"""
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None or who.kind in ("anonymous", "witness", "replica") or who.scope in ("witness", "replica"):
        return False
    if who.kind == "operator":
        return True
    if who.kind == "pipeline" or who.repository is not None:
        return who.workspace == ws and who.repository is not None and snap.exists(layout.repository(ws, who.repository))
    if who.email is None:
        return False
    if who.email in workspace.admins:
        return True
    return (any(who.email in r.grants for r in snap.records(layout.repositories_dir(ws), Repository))
            or any(who.email in p.grants for p in snap.records(layout.projects_dir(ws), Project)))


def workspace(snap: Snapshot, who: Principal, ws: str) -> Workspace:
    """The workspace, if ``who`` sees it (`sees_workspace`); otherwise the refusal for a missing one."""
    found = snap.get(layout.workspace(ws), Workspace)
    if found is None or not sees_workspace(snap, who, ws):
        raise hidden(who, ws, f"Workspace {ws!r} does not exist.")
    return found


def missing_package(snap: Snapshot, who: Principal, ws: str, name: str) -> RegistryError:
    if not sees_workspace(snap, who, ws):  # (a hidden workspace reads as a missing one: neither is named missing)
        if who.kind == "operator":
            return NotFound(f"Workspace {ws!r} does not exist.")
        return hidden(who, ws, f"No workspace {ws!r} with a package {name!r} is visible to you: check both names.")
    return hidden(who, ws, f"Package {name!r} does not exist in workspace {ws}.")


def package(snap: Snapshot, who: Principal, ws: str, name: str,
            now: Snapshot | None = None) -> tuple[Package, Repository]:
    """The package and its repository, if ``who`` may read it (``now``: the package as it was in
    ``snap``, read with the permissions of ``now``, and its repository as it is now)."""
    found = snap.get(layout.package(ws, name), Package) if snap.exists(layout.workspace(ws)) else None
    today = now if now is not None else snap  # (where permissions, and the repository, are read)
    repository = today.get(layout.repository(ws, found.repository), Repository) if found is not None else None
    if found is None or repository is None or not can_read(today, who, ws, found.repository):
        raise missing_package(today, who, ws, name)
    return found, repository


def repository(snap: Snapshot, who: Principal, ws: str, repo: str) -> Repository:
    found = snap.get(layout.repository(ws, repo), Repository) if snap.exists(layout.workspace(ws)) else None
    if found is None or not can_read(snap, who, ws, repo):
        raise hidden(who, ws, f"Repository {ws}/{repo} does not exist.")
    return found


def project(snap: Snapshot, who: Principal, ws: str, key: str) -> Project:
    """The project, if ``who`` administers the workspace or may read one of its repositories."""
    found = snap.get(layout.project(ws, key), Project) if snap.exists(layout.workspace(ws)) else None
    if found is None or not (role_on_workspace(snap, who, ws) == "admin" or any(
            can_read(snap, who, ws, r.slug) for r in snap.records(layout.repositories_dir(ws), Repository)
            if r.project == key)):
        raise hidden(who, ws, f"Project {key} does not exist in workspace {ws}.")
    return found


@dataclass(frozen=True)
class Audience:
    """Which of a workspace's commits a caller may see in its audit trail: a package's, where they
    may read its repository; a repository's own, where they administer it; every one (the
    workspace's own, the projects'), where they administer the workspace."""

    everything: bool
    readable: frozenset[str] = frozenset()
    administered: frozenset[str] = frozenset()

    def sees(self, entry: Filed) -> bool:
        if self.everything:
            return True
        if entry.kind == "package":
            return entry.repository in self.readable
        return entry.kind == "repository" and entry.repository in self.administered


def trail_audience(snap: Snapshot, who: Principal, ws: str) -> Audience:
    if role_on_workspace(snap, who, ws) == "admin":
        return Audience(everything=True)
    roles = {r.slug: role_on(snap, who, ws, r.slug) for r in snap.records(layout.repositories_dir(ws), Repository)}
    former = former_slugs(snap, ws)
    return Audience(False, with_former({s for s, r in roles.items() if model.at_least(r, "read")}, former),
                    with_former({s for s, r in roles.items() if model.at_least(r, "admin")}, former))


def former_slugs(snap: Snapshot, ws: str) -> dict[str, str]:
    """Each slug a repository of the workspace was renamed away from, to the slug that repository
    goes by now (renames followed: a→b, b→c gives a→c). The trail files a package's commits under
    the slug its repository had when the package was created, so a renamed repository's history is
    also under its former slugs (which no other repository may take). A listing of retired slugs."""
    renamed = {r.slug: r.renamed_to for r in snap.records(layout.retired_repositories_dir(ws), RetiredRepository)
               if r.renamed_to}
    now = {}
    for old, new in renamed.items():
        seen = {old}
        while new in renamed and new not in seen:
            seen.add(new)
            new = renamed[new]
        now[old] = new
    return now


def with_former(slugs: set[str], former: dict[str, str]) -> frozenset[str]:
    """The slugs, and those they went by before."""
    return frozenset(slugs | {old for old, new in former.items() if new in slugs})
