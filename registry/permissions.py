"""What a role allows: a principal's effective role on a repository or workspace, and refusals that
name the missing permission."""

from __future__ import annotations

from . import layout, model
from .errors import Denied, NotFound, Unauthorized
from .identity import Principal
from .ledger import Snapshot
from .model import Project, Repository, Role, Workspace


def repository_context(snap: Snapshot, ws: str, repo: str) -> tuple[Workspace, Project | None, Repository]:
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist.")
    repository = snap.get(layout.repository(ws, repo), Repository)
    if repository is None:
        raise NotFound(f"Repository {ws}/{repo} does not exist.")
    project = snap.get(layout.project(ws, repository.project), Project)
    return workspace, project, repository


def role_on(snap: Snapshot, who: Principal, ws: str, repo: str) -> Role | None:
    """The principal's effective role on a repository, capped by its token's scope."""
    workspace, project, repository = repository_context(snap, ws, repo)
    if who.kind == "operator":
        return "admin"
    if who.kind in ("witness", "replica") or who.scope in ("witness", "replica"):  # (such tokens hold no role)
        return "read" if repository.public else None
    if who.kind == "pipeline" or who.repository is not None:
        # A pipeline acts for its own repository only, and never administers it.
        own = (who.workspace, who.repository) == (ws, repo)
        role: Role | None = "write" if own else ("read" if repository.public else None)
    else:
        role = model.effective_role(who.email, workspace, project, repository)
    if who.scope == "read" and model.ROLE_RANK[role] > model.ROLE_RANK["read"]:
        role = "read"
    return role


def role_on_workspace(snap: Snapshot, who: Principal, ws: str) -> Role | None:
    if who.kind == "operator":
        return "admin"
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist.")
    if who.kind == "user" and who.email in workspace.admins and who.scope != "read":
        return "admin"
    return None


def require(snap: Snapshot, who: Principal, ws: str, repo: str, need: Role, doing: str) -> None:
    """Refuse unless ``who`` holds ``need`` on the repository; the message names what is missing."""
    have = role_on(snap, who, ws, repo)
    if model.at_least(have, need):
        return
    if who.kind == "anonymous":
        raise Unauthorized(f"Authentication required to {doing}: use your email and an API token.")
    scope_note = " (your token has read scope only)" if who.scope == "read" and need != "read" else ""
    raise Denied(
        f"{who.actor} may not {doing}: it needs {need} permission on repository {ws}/{repo}"
        f"{scope_note}; ask a repository or workspace admin."
    )
