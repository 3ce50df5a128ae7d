"""What a role allows: a principal's effective role on a repository or workspace, and refusals that
name the missing permission; and what a token's scope allows, whatever the roles (`require_scope`)."""

from __future__ import annotations

from . import layout, model
from .audit import Action
from .errors import Denied, Forbidden, NotFound, Unauthorized
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
        # A pipeline acts for its own repository only, and never administers it; it reads another of
        # its workspace's that names it (or every pipeline) among its pipeline readers.
        own = (who.workspace, who.repository) == (ws, repo)
        role: Role | None = "write" if own else (
            "read" if repository.public or granted_pipeline(snap, who, ws, repository) else None)
    else:
        role = model.effective_role(who.email, workspace, project, repository)
    if who.scope == "read" and model.ROLE_RANK[role] > model.ROLE_RANK["read"]:
        role = "read"
    return role


def granted_pipeline(snap: Snapshot, who: Principal, ws: str, repository: Repository) -> bool:
    """Whether ``repository`` lets ``who``'s pipeline read it: it names the pipeline's repository, or
    every pipeline, and the pipeline's repository is one of the same workspace (that still exists)."""
    readers = repository.pipeline_readers
    if who.workspace != ws or who.repository is None or not readers:
        return False
    named = who.repository in readers or model.ALL_PIPELINES in readers
    return named and snap.exists(layout.repository(ws, who.repository))


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
    if need != "read":
        require_scope(who, doing)
    raise Denied(
        f"{who.actor} may not {doing}: it needs {need} permission on repository {ws}/{repo}; "
        "ask a repository or workspace admin."
    )


# What a token's scope lets its holder commit, whatever their roles: a read-scoped token (or a web
# session signed in with one) may start and end its own web session, and change nothing else;
# witness and replica tokens, and anonymous callers, commit nothing. `operations` applies this to
# every commit it builds (`_common.make_change`), so no verb, form or route can forget it; the
# checks before it (`require`, the upload path) refuse the same way, only earlier.
# (a download that fetches a file from upstream records it, whoever downloads: reading causes it)
READ_SCOPE_COMMITS = frozenset({Action.SIGN_IN, Action.SIGN_OUT, Action.FETCH_UPSTREAM})


def require_scope(who: Principal, doing: str, action: Action | None = None) -> None:
    """Refuse unless ``who``'s token scope allows ``action`` (None: any change); the message names the
    scope and says what to use instead."""
    if who.kind == "operator" or (who.kind in ("user", "pipeline") and who.scope == "write"):
        return
    if who.kind == "user" and who.scope == "read" and action in READ_SCOPE_COMMITS:
        return
    if who.kind == "anonymous":
        raise Unauthorized(f"Authentication required to {doing}: use your email and a write-scoped API token.")
    token = f"API token {who.token_id}" if who.token_id else "Its API token"
    if who.scope == "read" and who.session:
        raise Forbidden(f"This session was signed in with {token}, which has read scope: it may look, not {doing}. "
                        "Sign out, and sign in with a write-scoped API token to do that.")
    if who.scope == "read":
        raise Forbidden(f"{token} has read scope: it may read and install, not {doing}. Use a write-scoped API "
                        "token (create one with `registry token create EMAIL`, or under Your tokens in the web UI).")
    raise Forbidden(f"{token} has {who.scope or 'no'} scope: it may fetch the ledger"
                    f"{' and files' if who.scope == 'replica' else ''}, not {doing}.")
