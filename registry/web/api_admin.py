"""Administering people and tenancy over the API: what the operator does with `registry user`,
`grant`, `revoke`, `grants`, `workspace`, `project` and `repo`, for workspace admins (and repository
admins, on their repository) with their own tokens. Each change is the verb's one commit; each
refusal the verb's (a problem document). Who may read what is `reads/members.py`'s.

Disabling and enabling an account are the operator's, on the server (`registry user disable`,
`enable`): the API has no operator (every caller over HTTP is a person or a pipeline), so it has no
route for them; the verbs are there for one."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import anyio
import msgspec
from litestar import Request, Router, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery

from .. import operations
from ..errors import Invalid, Unauthorized
from ..model import Channel, Project, Repository, Role, User, Workspace
from ..reads import Reader
from ..reads.members import Grant, Person, ReadersSeen, Where, seen_readers
from .answers import refusals
from .api_types import View
from .bodies import json_value
from .state import reader

WS = "/workspaces/{ws:str}"
CH: Channel = "api"
READ = refusals(400, 401, 403, 404)
CHANGE = refusals(400, 401, 403, 404, 409, 503)
B = TypeVar("B", bound=View)


# --- requests ------------------------------------------------------------------------------------


class SetRole(View, frozen=True, kw_only=True):
    role: Role


class Rename(View, frozen=True, kw_only=True):
    name: str


class WorkspaceChange(View, frozen=True, kw_only=True):
    name: str | None = None
    slug: str | None = None  # (refused unless it is the workspace's own: a slug doesn't change)


class CreateProject(View, frozen=True, kw_only=True):
    key: str
    name: str | None = None


class CreateRepository(View, frozen=True, kw_only=True):
    slug: str
    project: str
    public: bool = False
    uuid: str | None = None
    create_packages_on_publish: bool = False


class RepositoryChange(View, frozen=True, kw_only=True):
    slug: str | None = None  # a new slug: the packages linked to it follow
    uuid: str | None = None  # its Bitbucket UUID
    create_packages_on_publish: bool | None = None  # whether publishing a new name creates its package


NAME, ROLE = '{"name": NAME}', '{"role": "read" | "write" | "admin"}'


# --- responses -----------------------------------------------------------------------------------


class GrantView(View, frozen=True, kw_only=True):
    workspace: str
    where: Where  # the workspace itself (its admins), a project or a repository
    target: str  # the project's key or the repository's slug; "" for the workspace
    user: str
    role: Role | None  # None: taken away


class GrantList(View, frozen=True, kw_only=True):
    items: list[GrantView]


class UserView(View, frozen=True, kw_only=True):
    email: str
    name: str
    state: str  # "active" or "disabled"
    created_at: datetime
    created_by: str
    disabled_at: datetime | None
    disabled_by: str | None
    disabled_reason: str
    grants: list[GrantView]  # where the caller may see them
    tokens: int | None  # API tokens that hold: shown to the person and the operator


class UserList(View, frozen=True, kw_only=True):
    items: list[UserView]


class WorkspaceView(View, frozen=True, kw_only=True):
    slug: str
    name: str
    uuid: str
    admins: list[str]


class ProjectView(View, frozen=True, kw_only=True):
    workspace: str
    key: str
    name: str
    repositories: list[str]  # those the caller may read
    created_at: datetime
    created_by: str


class ProjectList(View, frozen=True, kw_only=True):
    items: list[ProjectView]


class RepositoryView(View, frozen=True, kw_only=True):
    workspace: str
    slug: str
    project: str
    public: bool
    uuid: str
    create_packages_on_publish: bool
    created_at: datetime
    created_by: str


class RepositoryList(View, frozen=True, kw_only=True):
    items: list[RepositoryView]


class PipelineReaders(View, frozen=True, kw_only=True):
    """The repositories of the workspace whose pipelines may read ``repository`` ("*": every pipeline
    of the workspace); its own pipelines always do. ``readers``: their slugs, of those the caller
    reads (all of them, to the workspace's admins); ``hidden``: to the repository's admins, the UUIDs
    of the others (a repository they can't read is never named: revoke it by its UUID)."""

    workspace: str
    repository: str
    readers: list[str]
    hidden: list[str] = []

    @classmethod
    def seen(cls, ws: str, repo: str, seen: ReadersSeen) -> PipelineReaders:
        return cls(workspace=ws, repository=repo, readers=seen.named, hidden=seen.hidden)


class NoFields(View, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a route that the path says everything for takes: no body, or `{}`."""


class Removed(View, frozen=True, kw_only=True):
    kind: str  # "workspace", "project", "repository" or "member"
    workspace: str
    name: str  # the project's key, the repository's slug, the member's email; the workspace's slug
    grants: list[GrantView] = []  # a member's grants that went


def grant_view(g: Grant) -> GrantView:
    return GrantView(workspace=g.workspace, where=g.where, target=g.target, user=g.user, role=g.role)


def user_view(p: Person | User) -> UserView:
    person = p if isinstance(p, Person) else Person(p, [])
    u = person.user
    off = u.disabled
    return UserView(email=u.email, name=u.name, state=person.state, created_at=u.created.at, created_by=u.created.by,
                    disabled_at=off.at if off else None, disabled_by=off.by if off else None,
                    disabled_reason=u.disabled_reason, grants=[grant_view(g) for g in person.grants],
                    tokens=person.tokens)


def workspace_view(w: Workspace) -> WorkspaceView:
    return WorkspaceView(slug=w.slug, name=w.name, uuid=w.uuid, admins=w.admins)


def project_view(ws: str, p: Project, repositories: list[Repository]) -> ProjectView:
    return ProjectView(workspace=ws, key=p.key, name=p.name, repositories=[r.slug for r in repositories],
                       created_at=p.created.at, created_by=p.created.by)


def repository_view(ws: str, r: Repository) -> RepositoryView:
    return RepositoryView(workspace=ws, slug=r.slug, project=r.project, public=r.public, uuid=r.uuid,
                          create_packages_on_publish=r.create_packages_on_publish, created_at=r.created.at,
                          created_by=r.created.by)


async def _signed_in(request: Request, doing: str) -> Reader:
    r = await reader(request)
    if r.who.kind == "anonymous":
        raise Unauthorized(f"Authentication required to {doing}: use your email and an API token.")
    return r


async def _body(request: Request, type_: type[B], shape: str, *, optional: bool = False) -> B | None:
    """The request's JSON body as ``type_``, read only once the caller is known (whoever may not
    change a thing learns nothing of what it takes); Invalid names the ``shape`` to send."""
    raw = await request.body()
    if optional and not raw.strip():
        return None
    try:
        return json_value(raw, type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(f"The body is not what this takes ({exc}): send one JSON object, {shape}.") from None


async def _required(request: Request, type_: type[B], shape: str) -> B:
    found = await _body(request, type_, shape)
    assert found is not None  # (only an optional body may be missing)
    return found


# --- people --------------------------------------------------------------------------------------


@get("/users", responses=READ, summary="Users: every one (the operator), or the members of the workspaces you "
                                       "administer, with their grants there")
async def list_users(request: Request) -> UserList:
    r = await _signed_in(request, "list users")
    return UserList(items=[user_view(p) for p in r.people()])


@get("/users/{email:str}", responses=READ,
     summary="A user and their grants (yourself, the operator, or an admin of a workspace they are in)")
async def show_user(request: Request, email: FromPath[str]) -> UserView:
    r = await _signed_in(request, "see users")
    return user_view(r.person(email))


@patch("/users/{email:str}", status_code=200, responses=CHANGE,
       summary="Change a user's display name (yourself, or the operator)", description=f"Body: {NAME}.")
async def rename_user(request: Request, email: FromPath[str]) -> UserView:
    r = await _signed_in(request, "rename users")
    data = await _required(request, Rename, NAME)
    await anyio.to_thread.run_sync(operations.rename_user, r.reg, r.who, CH, email, data.name)
    return user_view((await reader(request)).person(email))


# --- grants and members --------------------------------------------------------------------------


@get(WS + "/members", responses=READ,
     summary="People with a grant in the workspace, each with their roles there (workspace admin)")
async def list_members(request: Request, ws: FromPath[str]) -> UserList:
    r = await reader(request)
    return UserList(items=[user_view(p) for p in r.members(ws)])


@delete(WS + "/members/{email:str}", status_code=200, responses=CHANGE,
        summary="Remove a person from the workspace: every grant of theirs there, in one commit (workspace admin)")
async def remove_member(request: Request, ws: FromPath[str], email: FromPath[str]) -> Removed:
    r = await _signed_in(request, "remove members")
    held = await anyio.to_thread.run_sync(operations.remove_member, r.reg, r.who, CH, ws, email)
    return Removed(kind="member", workspace=ws, name=email.strip().lower(), grants=[grant_view(g) for g in held])


@get(WS + "/grants", responses=READ, summary="Grants in the workspace: its admins, projects' and repositories' "
     "roles (workspace admin; a repository admin, with ?repository=)")
async def list_grants(request: Request, ws: FromPath[str], project: FromQuery[str | None] = None,
                      repository: FromQuery[str | None] = None, user: FromQuery[str | None] = None) -> GrantList:
    r = await reader(request)
    return GrantList(items=[grant_view(g) for g in r.grants(ws, project=project, repository=repository, user=user)])


async def _grant(request: Request, ws: str, email: str, role: Role | None, where: Where, target: str) -> GrantView:
    r = await _signed_in(request, "manage permissions")
    await anyio.to_thread.run_sync(lambda: operations.grant(
        r.reg, r.who, CH, ws, email, role, repository=target if where == "repository" else None,
        project=target if where == "project" else None))
    shown_target = target.upper() if where == "project" else target
    return GrantView(workspace=ws, where=where, target=shown_target, user=email.strip().lower(), role=role)


@put(WS + "/admins/{email:str}", status_code=200, responses=CHANGE, summary="Make a user a workspace admin "
     "(workspace admin); no body, or {\"role\": \"admin\"}")
async def add_admin(request: Request, ws: FromPath[str], email: FromPath[str]) -> GrantView:
    await _signed_in(request, "manage permissions")
    data = await _body(request, SetRole, ROLE, optional=True)
    if data is not None and data.role != "admin":  # (no body, or the one role a workspace grants)
        raise Invalid("On a workspace only the admin role can be granted; grant read or write on one of its projects "
                      "or repositories (PUT .../projects/KEY/grants/EMAIL or .../repositories/REPO/grants/EMAIL).")
    return await _grant(request, ws, email, "admin", "workspace", "")


@delete(WS + "/admins/{email:str}", status_code=200, responses=CHANGE, summary="Take a workspace admin's role "
        "away (workspace admin)")
async def remove_admin(request: Request, ws: FromPath[str], email: FromPath[str]) -> GrantView:
    return await _grant(request, ws, email, None, "workspace", "")


@put(WS + "/projects/{key:str}/grants/{email:str}", status_code=200, responses=CHANGE,
     summary="Give a user a role on a project and its repositories (workspace admin)", description=f"Body: {ROLE}.")
async def set_project_grant(request: Request, ws: FromPath[str], key: FromPath[str],
                            email: FromPath[str]) -> GrantView:
    await _signed_in(request, "manage permissions")
    data = await _required(request, SetRole, ROLE)
    return await _grant(request, ws, email, data.role, "project", key)


@delete(WS + "/projects/{key:str}/grants/{email:str}", status_code=200, responses=CHANGE,
        summary="Take a user's role on a project away (workspace admin)")
async def remove_project_grant(request: Request, ws: FromPath[str], key: FromPath[str],
                               email: FromPath[str]) -> GrantView:
    return await _grant(request, ws, email, None, "project", key)


@put(WS + "/repositories/{repo:str}/grants/{email:str}", status_code=200, responses=CHANGE,
     summary="Give a user a role on a repository (repository or workspace admin)", description=f"Body: {ROLE}.")
async def set_repository_grant(request: Request, ws: FromPath[str], repo: FromPath[str],
                               email: FromPath[str]) -> GrantView:
    await _signed_in(request, "manage permissions")
    data = await _required(request, SetRole, ROLE)
    return await _grant(request, ws, email, data.role, "repository", repo)


@delete(WS + "/repositories/{repo:str}/grants/{email:str}", status_code=200, responses=CHANGE,
        summary="Take a user's role on a repository away (repository or workspace admin)")
async def remove_repository_grant(request: Request, ws: FromPath[str], repo: FromPath[str],
                                  email: FromPath[str]) -> GrantView:
    return await _grant(request, ws, email, None, "repository", repo)


# --- which other repositories' pipelines may read a repository -----------------------------------

READERS = WS + "/repositories/{repo:str}/pipeline-readers"


@get(READERS, responses=READ, summary="The repositories whose pipelines may read this one ('*': every pipeline of "
                                      "the workspace)")
async def list_pipeline_readers(request: Request, ws: FromPath[str], repo: FromPath[str]) -> PipelineReaders:
    r = await reader(request)
    return PipelineReaders.seen(ws, repo, r.pipeline_readers(ws, repo))


@put(READERS + "/{source:str}", status_code=200, responses=CHANGE,
     summary="Let the pipelines of repository SOURCE of the same workspace ('*': every one) read this repository "
             "(repository or workspace admin)")
async def add_pipeline_reader(request: Request, ws: FromPath[str], repo: FromPath[str],
                              source: FromPath[str]) -> PipelineReaders:
    r = await _signed_in(request, "let pipelines read repositories")
    await _body(request, NoFields, "{} (or none: the path names the repositories)", optional=True)
    done = await anyio.to_thread.run_sync(operations.grant_pipelines, r.reg, r.who, CH, ws, repo, source)
    return PipelineReaders.seen(ws, repo, seen_readers(r.reg.snapshot(), r.who, ws, done))


@delete(READERS + "/{source:str}", status_code=200, responses=CHANGE,
        summary="Stop the pipelines of SOURCE ('*': the grant to every one; '{UUID}': a hidden one) reading this "
                "repository (repository or "
                "workspace admin)")
async def remove_pipeline_reader(request: Request, ws: FromPath[str], repo: FromPath[str],
                                 source: FromPath[str]) -> PipelineReaders:
    r = await _signed_in(request, "change which pipelines read repositories")
    done = await anyio.to_thread.run_sync(operations.revoke_pipelines, r.reg, r.who, CH, ws, repo, source)
    return PipelineReaders.seen(ws, repo, seen_readers(r.reg.snapshot(), r.who, ws, done))


# --- workspaces, projects, repositories ----------------------------------------------------------


@patch(WS, status_code=200, responses=CHANGE,
       summary="Change a workspace's display name (workspace admin; its slug can't change)",
       description=f"Body: {NAME}.")
async def change_workspace(request: Request, ws: FromPath[str]) -> WorkspaceView:
    r = await _signed_in(request, "rename workspaces")
    data = await _required(request, WorkspaceChange, NAME)
    return workspace_view(await anyio.to_thread.run_sync(
        operations.rename_workspace, r.reg, r.who, CH, ws, data.name, data.slug))


@delete(WS, status_code=200, responses=CHANGE,
        summary="Delete a workspace with no projects, repositories or packages left (workspace admin)")
async def delete_workspace(request: Request, ws: FromPath[str]) -> Removed:
    r = await _signed_in(request, "delete workspaces")
    await anyio.to_thread.run_sync(operations.delete_workspace, r.reg, r.who, CH, ws)
    return Removed(kind="workspace", workspace=ws, name=ws)


@get(WS + "/projects", responses=READ, summary="The workspace's projects you see, with their repositories you read")
async def list_projects(request: Request, ws: FromPath[str]) -> ProjectList:
    r = await reader(request)
    return ProjectList(items=[project_view(ws, p, repos) for p, repos in r.projects(ws)])


@post(WS + "/projects", status_code=201, responses=CHANGE, summary="Create a project (workspace admin)",
      description='Body: {"key": KEY, "name": NAME (optional)}.')
async def create_project(request: Request, ws: FromPath[str]) -> ProjectView:
    r = await _signed_in(request, "create projects")
    data = await _required(request, CreateProject, '{"key": KEY, "name": NAME (optional)}')
    made = await anyio.to_thread.run_sync(operations.create_project, r.reg, r.who, CH, ws, data.key, data.name)
    return project_view(ws, made, [])


@patch(WS + "/projects/{key:str}", status_code=200, responses=CHANGE,
       summary="Change a project's display name (workspace admin)", description=f"Body: {NAME}.")
async def rename_project(request: Request, ws: FromPath[str], key: FromPath[str]) -> ProjectView:
    r = await _signed_in(request, "rename projects")
    data = await _required(request, Rename, NAME)
    done = await anyio.to_thread.run_sync(operations.rename_project, r.reg, r.who, CH, ws, key, data.name)
    return project_view(ws, done, [x for x in (await reader(request)).repositories(ws) if x.project == done.key])


@delete(WS + "/projects/{key:str}", status_code=200, responses=CHANGE,
        summary="Delete a project with no repositories left (workspace admin)")
async def delete_project(request: Request, ws: FromPath[str], key: FromPath[str]) -> Removed:
    r = await _signed_in(request, "delete projects")
    done = await anyio.to_thread.run_sync(operations.delete_project, r.reg, r.who, CH, ws, key)
    return Removed(kind="project", workspace=ws, name=done.key)


@get(WS + "/repositories", responses=READ, summary="The workspace's repositories you may read")
async def list_repositories(request: Request, ws: FromPath[str]) -> RepositoryList:
    r = await reader(request)
    r.workspace(ws)  # (hidden as a missing workspace from whoever doesn't see it)
    return RepositoryList(items=[repository_view(ws, x) for x in r.repositories(ws)])


@post(WS + "/repositories", status_code=201, responses=CHANGE, summary="Create a repository (workspace admin)",
      description='Body: {"slug": SLUG, "project": KEY, "public": false (optional), "uuid": UUID (optional), '
                  '"create_packages_on_publish": false (optional)}.')
async def create_repository(request: Request, ws: FromPath[str]) -> RepositoryView:
    r = await _signed_in(request, "create repositories")
    data = await _required(request, CreateRepository, '{"slug": SLUG, "project": KEY, "public": false, "uuid": UUID '
                                                      '(optional)}')
    made = await anyio.to_thread.run_sync(lambda: operations.create_repository(
        r.reg, r.who, CH, ws, data.slug, data.project, data.public, data.uuid,
        create_on_publish=data.create_packages_on_publish))
    return repository_view(ws, made)


@patch(WS + "/repositories/{repo:str}", status_code=200, responses=CHANGE,
       summary="Give a repository a new slug (its linked packages follow), bind its Bitbucket UUID, or say whether "
               "publishing a new name creates its package (repository admin; workspace admin for the UUID); one "
               "commit per field")
async def change_repository(request: Request, ws: FromPath[str], repo: FromPath[str]) -> RepositoryView:
    r = await _signed_in(request, "change repositories")
    data = await _required(request, RepositoryChange,
                           '{"slug": NEW}, {"uuid": UUID} and/or {"create_packages_on_publish": true|false}')
    if data.slug is None and data.uuid is None and data.create_packages_on_publish is None:
        raise Invalid("Give what to change: {\"slug\": NEW} (a rename), {\"uuid\": UUID} and/or "
                      "{\"create_packages_on_publish\": true|false}.")
    found: Repository = r.repository(ws, repo)
    if data.uuid is not None:
        bound = await anyio.to_thread.run_sync(lambda: operations.set_uuid(
            r.reg, r.who, CH, ws, data.uuid or "", repository=repo))
        assert isinstance(bound, Repository)  # (set_uuid with a repository binds that repository)
        found = bound
    if data.create_packages_on_publish is not None:
        on = data.create_packages_on_publish
        found = await anyio.to_thread.run_sync(lambda: operations.set_create_on_publish(
            r.reg, r.who, CH, ws, repo, on))
    if data.slug is not None:
        found = await anyio.to_thread.run_sync(operations.rename_repository, r.reg, r.who, CH, ws, repo, data.slug)
    return repository_view(ws, found)


@delete(WS + "/repositories/{repo:str}", status_code=200, responses=CHANGE,
        summary="Delete a repository no package is linked to (repository admin)")
async def delete_repository(request: Request, ws: FromPath[str], repo: FromPath[str]) -> Removed:
    r = await _signed_in(request, "delete repositories")
    done = await anyio.to_thread.run_sync(operations.delete_repository, r.reg, r.who, CH, ws, repo)
    return Removed(kind="repository", workspace=ws, name=done.slug)


router = Router(path="/api", route_handlers=[
    list_users, show_user, rename_user,
    list_members, remove_member, list_grants, add_admin, remove_admin, set_project_grant, remove_project_grant,
    set_repository_grant, remove_repository_grant, list_pipeline_readers, add_pipeline_reader, remove_pipeline_reader,
    change_workspace, delete_workspace, list_projects, create_project, rename_project, delete_project,
    list_repositories, create_repository, change_repository, delete_repository,
], tags=["administration"])
