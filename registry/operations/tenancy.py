"""Workspaces, projects, repositories, users, API tokens and grants."""

from __future__ import annotations

from datetime import timedelta

from .. import bounds, layout, model, names
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..identity import TOKEN_PREFIX, Principal, new_token
from ..ledger import Change, Snapshot
from ..model import ApiToken, Channel, Project, Repository, Role, User, Workspace
from ..permissions import repository_context, require, require_scope
from ..reads.records import find_token
from ._common import (
    enabled_user,
    existing_user,
    make_change,
    refuse_retired_slug,
    replace,
    require_operator,
    require_workspace_admin,
)


def create_workspace(reg: Registry, who: Principal, channel: Channel, slug: str,
                     name: str | None = None, uuid: str | None = None, admins: list[str] | None = None) -> Workspace:
    """A workspace, administered from its first commit by ``admins`` (users), or, if none is named,
    by whoever creates it when that is a user (the operator acting as one, with `--actor EMAIL`)."""
    slug, uuid = names.workspace_slug(slug), model.brace_uuid(uuid)
    name = names.display_name(name, "Workspace names") if name and name.strip() else slug
    admins = [names.email(a) for a in admins or []]
    require_operator(who, "create workspaces")

    def build(snap: Snapshot) -> Change:
        if snap.exists(layout.workspace(slug)):
            raise Conflict(f"Workspace {slug!r} already exists.")
        for other in snap.names("workspaces"):
            existing = snap.get(layout.workspace(other), Workspace)
            if existing and existing.uuid == uuid:
                raise Conflict(f"UUID {uuid} already belongs to workspace {other!r}.")
        for email in admins:
            existing_user(snap, email)
        chosen = admins or ([who.email] if who.email and snap.exists(layout.user(who.email)) else [])
        record = Workspace(slug=slug, uuid=uuid, name=name, admins=sorted(set(chosen)), created=who.provenance(channel))
        return make_change(who, channel, Action.CREATE_WORKSPACE, f"create workspace {slug}",
                           {layout.workspace(slug): record}, (T.WORKSPACE, slug), (T.WORKSPACE_UUID, uuid),
                           *((T.USER, a) for a in record.admins), result=record)

    return reg.transact(build).result  # (the record written)


def create_project(reg: Registry, who: Principal, channel: Channel, ws: str, key: str,
                   name: str | None = None) -> Project:
    key = names.project_key(key)
    name = names.display_name(name, "Project names") if name and name.strip() else key

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, "create projects")
        if snap.exists(layout.project(ws, key)):
            raise Conflict(f"Project {key} already exists in workspace {ws}.")
        record = Project(key=key, name=name, created=who.provenance(channel))
        return make_change(who, channel, Action.CREATE_PROJECT, f"create project {ws}/{key}",
                           {layout.project(ws, key): record}, (T.WORKSPACE, ws), (T.PROJECT, key), result=record)

    return reg.transact(build).result  # (the record written)


def create_repository(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str, project: str,
                      public: bool = False, uuid: str | None = None, create_on_publish: bool = False) -> Repository:
    slug, project, uuid = names.repository_slug(slug), names.project_key(project), model.brace_uuid(uuid)

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, "create repositories")
        if not snap.exists(layout.project(ws, project)):
            raise NotFound(f"Project {project} does not exist in workspace {ws}; create it with "
                           f"`registry project create {ws} {project}`.")
        if snap.exists(layout.repository(ws, slug)):
            raise Conflict(f"Repository {ws}/{slug} already exists.")
        refuse_retired_slug(snap, ws, slug)
        for other in snap.records(layout.repositories_dir(ws), Repository):
            if other.uuid == uuid:
                raise Conflict(f"UUID {uuid} already belongs to repository {ws}/{other.slug}.")
        record = Repository(slug=slug, uuid=uuid, project=project, public=public, created=who.provenance(channel),
                            create_packages_on_publish=create_on_publish)
        visibility = "public" if public else "private"
        visibility += ", creates packages on publish" if create_on_publish else ""
        return make_change(who, channel, Action.CREATE_REPOSITORY,
                           f"create repository {ws}/{slug} in project {project} ({visibility})",
                           {layout.repository(ws, slug): record},
                           (T.WORKSPACE, ws), (T.REPOSITORY, slug), (T.REPOSITORY_UUID, uuid), result=record)

    return reg.transact(build).result  # (the record written)


def set_uuid(reg: Registry, who: Principal, channel: Channel, ws: str, uuid: str,
             repository: str | None = None) -> Workspace | Repository:
    """Bind a workspace (or one of its repositories) to its Bitbucket UUID afterwards: the quick
    start's `default` is created with a random one, and a pipeline's token must name the real one.
    A workspace admin's to change; refused if another workspace (or repository of it) has it."""
    uuid = model.brace_uuid(uuid)
    what = f"{ws}/{repository}" if repository else f"workspace {ws}"

    def build(snap: Snapshot) -> Change:
        workspace = require_workspace_admin(snap, who, ws, f"set the Bitbucket UUID of {what}")
        if repository is None:
            for other in snap.names("workspaces"):
                found = snap.get(layout.workspace(other), Workspace)
                if found and found.uuid == uuid and other != ws:
                    raise Conflict(f"UUID {uuid} already belongs to workspace {other!r}.")
            record: Workspace | Repository = replace(workspace, uuid=uuid)
            path = layout.workspace(ws)
            facts: tuple[tuple[str, str], ...] = ((T.WORKSPACE, ws), (T.WORKSPACE_UUID, uuid))
        else:
            current = snap.get(layout.repository(ws, repository), Repository)
            if current is None:
                raise NotFound(f"Repository {ws}/{repository} does not exist; create it with "
                               f"`registry repo create {ws}/{repository} --project KEY --uuid {uuid}`.")
            for sibling in snap.records(layout.repositories_dir(ws), Repository):
                if sibling.uuid == uuid and sibling.slug != repository:
                    raise Conflict(f"UUID {uuid} already belongs to repository {ws}/{sibling.slug}.")
            record = replace(current, uuid=uuid)
            path = layout.repository(ws, repository)
            facts = ((T.WORKSPACE, ws), (T.REPOSITORY, repository), (T.REPOSITORY_UUID, uuid))
        if record == (snap.get(path, type(record))):
            raise Conflict(f"{what} already has UUID {uuid}.")
        return make_change(who, channel, Action.SET_UUID, f"set the Bitbucket UUID of {what} to {uuid}",
                           {path: record}, *facts, result=record)

    return reg.transact(build).result


def create_user(reg: Registry, who: Principal, channel: Channel, email: str, name: str | None = None) -> User:
    email = names.email(email)
    name = bounds.person_name(name) if name and name.strip() else email
    require_operator(who, "create users")

    def build(snap: Snapshot) -> Change:
        if snap.exists(layout.user(email)):
            raise Conflict(f"User {email} already exists.")
        record = User(email=email, name=name, created=who.provenance(channel))
        return make_change(who, channel, Action.CREATE_USER, f"create user {email}", {layout.user(email): record},
                           (T.USER, email), result=record)

    return reg.transact(build).result  # (the record written)


def create_token(reg: Registry, who: Principal, channel: Channel, email: str, scope: model.Scope = "write",
                 expires_days: int | None = None, label: str = "") -> tuple[str, ApiToken]:
    """A new API token for ``email``: returns the secret (shown once) and its stored record."""
    email = names.email(email)
    if scope not in ("read", "write", "witness", "replica"):
        raise Invalid(f"Invalid token scope {scope!r}: use read, write, witness or replica.")
    if expires_days is not None and not 0 < expires_days <= bounds.TOKEN_DAYS:
        raise Invalid(f"--expires-days must be a positive number of days, at most {bounds.TOKEN_DAYS} (ten years); "
                      "leave it out for a token that never expires.")
    label = names.token_label(label)
    if scope in ("witness", "replica"):  # (it reads every workspace's names: only the operator hands one out)
        require_operator(who, f"create {scope} tokens")
    if who.kind != "operator" and who.email != email:
        raise Forbidden("You can only create tokens for yourself.")
    require_scope(who, "create tokens")
    secret, digest = new_token()
    provenance = who.provenance(channel)
    record = ApiToken(
        id=digest[:16], user=email, sha256=digest, scope=scope, label=label, created=provenance,
        expires=provenance.at + timedelta(days=expires_days) if expires_days else None,
    )

    def build(snap: Snapshot) -> Change:
        enabled_user(snap, email, "be given API tokens")
        return make_change(who, channel, Action.CREATE_TOKEN, f"create {scope} token {record.id} for {email}",
                       {layout.token(digest): record}, (T.USER, email), (T.TOKEN, record.id), (T.SCOPE, scope))

    reg.transact(build)
    return secret, record


def revoke_token(reg: Registry, who: Principal, channel: Channel, email: str, token_id: str) -> ApiToken:
    email = names.email(email)
    if who.kind != "operator" and who.email != email:
        raise Forbidden("You can only revoke your own tokens.")

    def build(snap: Snapshot) -> Change:
        found = find_token(snap, token_id)
        if found is None or found[1].user != email:
            named = "with that secret" if token_id.strip().startswith(TOKEN_PREFIX) else token_id.strip().lower()
            raise NotFound(f"User {email} has no token {named} (`registry token list {email}` shows them).")
        path, record = found
        if record.revoked is not None:
            raise Conflict(f"Token {record.id} is already revoked.")
        revoked = replace(record, revoked=who.provenance(channel))
        return make_change(who, channel, Action.REVOKE_TOKEN, f"revoke token {record.id} of {email}", {path: revoked},
                           (T.USER, email), (T.TOKEN, record.id), provenance=revoked.revoked, result=revoked)

    return reg.transact(build).result


def grant(reg: Registry, who: Principal, channel: Channel, ws: str, email: str, role: Role | None,
          *, repository: str | None = None, project: str | None = None) -> None:
    """Give (or with ``role=None`` take away) ``email``'s role on a repository, a project, or the
    workspace (admin only). Repository admins manage their repository; workspace admins the rest."""
    email = names.email(email)
    if role is not None:
        role = names.role(role)
    if repository and project:
        raise Invalid("Grant on a repository or on a project, not both.")

    def build(snap: Snapshot) -> Change:
        if role is not None:
            existing_user(snap, email)
        verb = f"grant {role}" if role else "revoke grants"
        prep = "to" if role else "from"
        action = Action.GRANT if role else Action.REVOKE_GRANT
        if repository:
            require(snap, who, ws, repository, "admin", f"manage permissions of {ws}/{repository}")
            _, _, record = repository_context(snap, ws, repository)
            grants = _set_grant(record.grants, email, role, f"{ws}/{repository}")
            new = replace(record, grants=grants)
            return make_change(who, channel, action, f"{verb} on {ws}/{repository} {prep} {email}",
                           {layout.repository(ws, repository): new},
                           (T.WORKSPACE, ws), (T.REPOSITORY, repository), (T.USER, email), (T.ROLE, role or "none"))
        if project:
            key = names.project_key(project)
            require_workspace_admin(snap, who, ws, f"manage permissions of project {ws}/{key}")
            found = snap.get(layout.project(ws, key), Project)
            if found is None:
                raise NotFound(f"Project {key} does not exist in workspace {ws}.")
            new = replace(found, grants=_set_grant(found.grants, email, role, f"project {ws}/{key}"))
            return make_change(who, channel, action, f"{verb} on project {ws}/{key} {prep} {email}",
                           {layout.project(ws, key): new},
                           (T.WORKSPACE, ws), (T.PROJECT, key), (T.USER, email), (T.ROLE, role or "none"))
        if role not in (None, "admin"):
            raise Invalid("On a workspace only the admin role can be granted; grant read or write on a "
                          "project (--project KEY) or a repository (WS/REPO).")
        workspace = require_workspace_admin(snap, who, ws, f"manage admins of workspace {ws}")
        admins = set(workspace.admins)
        if role and email in admins:
            raise Conflict(f"{email} is already an admin of workspace {ws}.")
        if not role and email not in admins:
            raise NotFound(f"{email} is not an admin of workspace {ws}.")
        admins = admins | {email} if role else admins - {email}
        new = replace(workspace, admins=sorted(admins))
        return make_change(who, channel, action, f"{verb} on workspace {ws} {prep} {email}",
                           {layout.workspace(ws): new}, (T.WORKSPACE, ws), (T.USER, email), (T.ROLE, role or "none"))

    reg.transact(build)


def _set_grant(grants: dict[str, Role], email: str, role: Role | None, where: str) -> dict[str, Role]:
    if role is None:
        if email not in grants:
            raise NotFound(f"{email} has no grant on {where}.")
        return {k: v for k, v in grants.items() if k != email}
    if grants.get(email) == role:
        raise Conflict(f"{email} already has {role} on {where}.")
    return {**grants, email: role}
