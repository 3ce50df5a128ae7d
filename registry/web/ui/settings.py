"""Administration in the browser: what a workspace's admins do on the command line for their
workspace (its members and their roles, its name, projects and repositories, their Bitbucket UUIDs,
the trusted pipeline issuers, its webhooks, deleting what is empty), a repository's admins for their repository
(its people, its slug, creating packages on publish, deleting it), and a package's admins for its
pipelines (the publish policy). The operator keeps what only the server's host should do
(keys, gc, import).

Each page is a GET (data.py's `*_settings`, which refuses whoever may not administer it: what they
may not read as missing, what they read but don't administer a 403) and each of its forms a POST
that checks its CSRF token, runs one verb of `operations` off the event loop (which checks
permission again, on the commit it makes) and redirects to the page with a flash. A mistake in what
was typed (an unknown email, a bad slug or UUID, what already is so) gives the page back with the
message, next to the form it concerns, and the values typed; a refusal is the error page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Template

from ... import operations
from ...errors import Conflict, Invalid, NotFound, RegistryError
from ...model import ALL_PIPELINES, Repository
from . import data, urls
from .forms import CHANNEL, form
from .render import redirect, render
from .viewer import registry, signed_in, viewer

T = TypeVar("T")
MISTAKES = (Invalid, NotFound, Conflict)  # (what was typed: the form again, saying what to change)


async def _run(request: Request, verb: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``verb`` (an operation) by who is signed in, off the event loop."""
    who = signed_in(request, "administer").who
    return await anyio.to_thread.run_sync(lambda: verb(registry(request), who, CHANNEL, *args, **kwargs))


def _said(exc: RegistryError) -> str:
    """A refusal's words for a person at a form (a missing user is the operator's to create)."""
    if isinstance(exc, NotFound) and exc.message.startswith("User "):
        return f"{exc.message.split(';')[0]}: only the registry's operator creates users; ask them to."
    return exc.message


async def _checked_form(request: Request, doing: str) -> dict[str, str]:
    signed_in(request, doing)
    return await form(request)


def _lines(text: str) -> list[str]:
    """One value per line or comma (a textarea's list)."""
    return [v.strip() for v in text.replace(",", "\n").splitlines() if v.strip()]


# --- a workspace's settings: people and permissions ---------------------------------------------


def _settings(request: Request, ws: str, tab: str, status: int = 200, **context: Any) -> Template:
    """A tab of the workspace's settings (settings_<tab>.html), for its admins."""
    reg, who = registry(request), signed_in(request, f"administer workspace {ws}").who
    found = data.workspace_settings(reg, who, ws)
    return render(request, f"settings_{tab}.html", status=status, ws=ws, place=data.place(reg, who, ws),
                  s=found, current="settings", tab=tab, **context)


def _people(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    return _settings(request, ws, "people", status, **context)


@get(urls.SETTINGS.path, name=urls.SETTINGS.name)
async def people(request: Request, ws: FromPath[str]) -> object:
    return _people(request, ws)


@post(urls.SETTINGS.path)
async def grant(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "grant roles")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"manage permissions in {ws}")
    email, on, role = fields.get("email", "").strip(), fields.get("on", ""), fields.get("role", "")
    try:
        await _run(request, operations.grant, ws, email, role, **data.grant_target(on))
    except MISTAKES as exc:
        return _people(request, ws, status=exc.status, error=_said(exc), failed=fields.get("form", "grant"),
                       email=email, on=on, role=role)
    return redirect(request, urls.SETTINGS.link(ws=ws), flash=f"Granted {role} on {_named(ws, on)} to {email}.")


def _named(ws: str, on: str) -> str:
    kind, _, key = on.partition(":")
    return f"workspace {ws}" if on == "workspace" else f"project {key}" if kind == "project" else f"{ws}/{key}"


def _revoke_consequence(request: Request, ws: str, email: str, on: str, last_admin: bool) -> str:
    yourself = email == viewer(request).email
    if on == "workspace":
        lost = ("You will no longer administer it, nor see these settings" if yourself
                else f"{email} will no longer administer it")
        alone = " It has no other admin: only the operator will manage it then." if last_admin else ""
        return f"{lost}; any role granted on its projects and repositories stays.{alone}"
    where = "the project's repositories" if on.startswith("project:") else "the repository"
    return (f"{'You' if yourself else email} will keep only what other grants give on {where} (a public "
            "repository is read by anyone). Revoking is one commit; you can grant again at any time.")


@get(urls.SETTINGS_REVOKE.path, name=urls.SETTINGS_REVOKE.name)
async def confirm_revoke(request: Request, ws: FromPath[str]) -> object:
    reg, who = registry(request), signed_in(request, "revoke roles").who
    settings = data.workspace_settings(reg, who, ws)
    email, on = request.query_params.get("email", ""), request.query_params.get("on", "")
    group = next((g for g in settings.people if g.on == on), None)
    if group is None or not any(g.user == email for g in group.grants):
        raise NotFound(f"{email or 'No one'} holds no role on {_named(ws, on) if group else 'that'} to revoke: "
                       "the settings page lists who does.")
    return render(request, "confirm.html", ws=ws, place=data.place(reg, who, ws), current="settings",
                  title=f"Revoke {email}'s role on {_named(ws, on)}?", danger=True,
                  consequence=_revoke_consequence(request, ws, email, on, len(group.grants) == 1 and on == "workspace"),
                  lost=[], button="Revoke", action=urls.SETTINGS_REVOKE.link(ws=ws, email=email, on=on),
                  back=urls.SETTINGS.link(ws=ws))


@post(urls.SETTINGS_REVOKE.path)
async def revoke(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "revoke roles")
    email, on = request.query_params.get("email", ""), request.query_params.get("on", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"manage permissions in {ws}")
    await _run(request, operations.grant, ws, email, None, **data.grant_target(on))
    back = urls.SETTINGS.link(ws=ws)
    if on == "workspace" and email == viewer(request).email:
        back = urls.WORKSPACE.link(ws=ws)  # (no longer theirs to see)
    return redirect(request, back, flash=f"Revoked {email}'s role on {_named(ws, on)}.")


def _member(request: Request, ws: str, email: str) -> tuple[data.WorkspaceSettings, data.Member]:
    found = data.workspace_settings(registry(request), signed_in(request, "remove members").who, ws)
    member = found.member(email)
    if member is None:
        raise NotFound(f"{email or 'No one'} holds no grant in workspace {ws} to remove: its settings list its "
                       "members.")
    return found, member


@get(urls.REMOVE_MEMBER.path, name=urls.REMOVE_MEMBER.name)
async def confirm_remove_member(request: Request, ws: FromPath[str]) -> object:
    email = request.query_params.get("email", "")
    _, member = _member(request, ws, email)
    yourself = email == viewer(request).email
    return _confirm(request, ws, title=f"Remove {email} from workspace {ws}?", danger=True,
                    consequence=f"{'You lose' if yourself else f'{email} loses'} every role held in {ws}, in one "
                                "commit (their account, tokens and other workspaces stay; public repositories stay "
                                "readable to anyone). The roles taken away:",
                    lost=[f"{g.role} on {g.shown}" for g in member.grants], button="Remove from workspace",
                    action=urls.REMOVE_MEMBER.link(ws=ws, email=email), back=urls.SETTINGS.link(ws=ws))


@post(urls.REMOVE_MEMBER.path)
async def remove_member(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "remove members")
    email = request.query_params.get("email", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"remove members of {ws}")
    taken = await _run(request, operations.remove_member, ws, email)
    back = urls.WORKSPACE.link(ws=ws) if email == viewer(request).email else urls.SETTINGS.link(ws=ws)
    return redirect(request, back, flash=f"Removed {email} from workspace {ws} ({len(taken)} "
                                         f"{'role' if len(taken) == 1 else 'roles'} taken away).")


def _confirm(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), viewer(request).who
    return render(request, "confirm.html", status=status, ws=ws, place=data.place(reg, who, ws), current="settings",
                  **context)


# --- a workspace's settings: the workspace itself ------------------------------------------------


@post(urls.RENAME_WORKSPACE.path, name=urls.RENAME_WORKSPACE.name)
async def rename_workspace(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "rename workspaces")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"rename workspace {ws}")
    try:
        record = await _run(request, operations.rename_workspace, ws, name=fields.get("name", ""))
    except MISTAKES as exc:
        return _projects(request, ws, status=exc.status, error=_said(exc), failed="workspace-name", values=fields)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws), flash=f"Workspace {ws} is called {record.name!r} "
                                                                       "now (its slug and URLs stay).")


def _delete_workspace_page(request: Request, ws: str, status: int = 200, error: str | None = None) -> Template:
    data.workspace_settings(registry(request), signed_in(request, "delete workspaces").who, ws)
    return _confirm(request, ws, status=status, error=error, title=f"Delete workspace {ws}?", danger=True,
                    consequence="This deletes the workspace, its pipelines' trusted issuers and its upstream "
                                "settings, in one commit; it is refused while it has packages, repositories or "
                                "projects (delete those first). The names it published stay reserved, and the "
                                "ledger keeps its history.",
                    lost=[], button="Delete workspace", action=urls.DELETE_WORKSPACE.link(ws=ws),
                    back=urls.SETTINGS_PROJECTS.link(ws=ws))


@get(urls.DELETE_WORKSPACE.path, name=urls.DELETE_WORKSPACE.name)
async def confirm_delete_workspace(request: Request, ws: FromPath[str]) -> object:
    return _delete_workspace_page(request, ws)


@post(urls.DELETE_WORKSPACE.path)
async def delete_workspace(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "delete workspaces")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, f"delete workspace {ws}")
    try:
        await _run(request, operations.delete_workspace, ws)
    except Conflict as exc:  # (not empty: what is left, and how to remove it)
        return _delete_workspace_page(request, ws, status=exc.status, error=exc.message)
    return redirect(request, urls.HOME.link(), flash=f"Deleted workspace {ws}.")


# --- a workspace's settings: projects and repositories ------------------------------------------


def _projects(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    return _settings(request, ws, "projects", status, **context)


@get(urls.SETTINGS_PROJECTS.path, name=urls.SETTINGS_PROJECTS.name)
async def projects(request: Request, ws: FromPath[str]) -> object:
    return _projects(request, ws)


@post(urls.NEW_PROJECT.path, name=urls.NEW_PROJECT.name)
async def new_project(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "create projects")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "create projects")
    key, name = fields.get("key", "").strip(), fields.get("name", "").strip()
    try:
        project = await _run(request, operations.create_project, ws, key, name or None)
    except MISTAKES as exc:
        return _projects(request, ws, status=exc.status, error=_said(exc), failed="project", values=fields)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws),
                    flash=f"Created project {project.key}: create its repositories below.")


@post(urls.NEW_REPOSITORY.path, name=urls.NEW_REPOSITORY.name)
async def new_repository(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "create repositories")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "create repositories")
    slug, project, uuid = (fields.get(k, "").strip() for k in ("slug", "project", "uuid"))
    public, create_on_publish = fields.get("visibility") == "public", fields.get("create_on_publish") == "on"
    try:
        repo = await _run(request, operations.create_repository, ws, slug, project, public, uuid or None,
                          create_on_publish=create_on_publish)
    except MISTAKES as exc:
        return _projects(request, ws, status=exc.status, error=_said(exc), failed="repository", values=fields)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws),
                    flash=f"Created {'public' if repo.public else 'private'} repository {ws}/{repo.slug} in project "
                          f"{repo.project}: grant people roles on it, and link packages to it"
                          f"{' (or publish them: it creates packages on publish)' if create_on_publish else ''}.")


@post(urls.RENAME_PROJECT.path, name=urls.RENAME_PROJECT.name)
async def rename_project(request: Request, ws: FromPath[str], key: FromPath[str]) -> object:
    fields = await _checked_form(request, "rename projects")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "rename projects")
    try:
        record = await _run(request, operations.rename_project, ws, key, fields.get("name", ""))
    except MISTAKES as exc:
        return _projects(request, ws, status=exc.status, error=_said(exc), failed=f"project-name:{key}", values=fields)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws),
                    flash=f"Project {record.key} is called {record.name!r} now.")


def _delete_project_page(request: Request, ws: str, key: str, status: int = 200, error: str | None = None) -> Template:
    found = data.workspace_settings(registry(request), signed_in(request, "delete projects").who, ws)
    project = next((p for p in found.projects if p.project.key == key), None)
    if project is None:
        raise NotFound(f"Project {key} does not exist in workspace {ws}: its settings list its projects.")
    return _confirm(request, ws, status=status, error=error, title=f"Delete project {key}?", danger=True,
                    consequence=f"This deletes project {key} ({project.project.name}) and the roles granted on it, "
                                "in one commit. It is refused while repositories are in it: delete or move those "
                                "first." + (" Its repositories:" if project.repositories else ""),
                    lost=[r.slug for r in project.repositories], button="Delete project",
                    action=urls.DELETE_PROJECT.link(ws=ws, key=key), back=urls.SETTINGS_PROJECTS.link(ws=ws))


@get(urls.DELETE_PROJECT.path, name=urls.DELETE_PROJECT.name)
async def confirm_delete_project(request: Request, ws: FromPath[str], key: FromPath[str]) -> object:
    return _delete_project_page(request, ws, key)


@post(urls.DELETE_PROJECT.path)
async def delete_project(request: Request, ws: FromPath[str], key: FromPath[str]) -> object:
    await _checked_form(request, "delete projects")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "delete projects")
    try:
        record = await _run(request, operations.delete_project, ws, key)
    except Conflict as exc:  # (repositories are in it: named, with how to remove them)
        return _delete_project_page(request, ws, key, status=exc.status, error=exc.message)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws), flash=f"Deleted project {record.key}.")


@post(urls.SET_UUID.path, name=urls.SET_UUID.name)
async def set_uuid(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "set Bitbucket UUIDs")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "set Bitbucket UUIDs")
    repo, uuid = fields.get("repo", "").strip() or None, fields.get("uuid", "").strip()
    try:
        record = await _run(request, operations.set_uuid, ws, uuid, repo)
    except MISTAKES as exc:
        return _projects(request, ws, status=exc.status, error=_said(exc), failed=f"uuid:{repo or ''}", values=fields)
    return redirect(request, urls.SETTINGS_PROJECTS.link(ws=ws),
                    flash=f"{f'{ws}/{repo}' if repo else f'Workspace {ws}'} has Bitbucket UUID {record.uuid} now.")


# --- a workspace's settings: pipelines ----------------------------------------------------------


def _pipelines(request: Request, ws: str, status: int = 200, **context: Any) -> Template:
    return _settings(request, ws, "pipelines", status, **context)


@get(urls.SETTINGS_PIPELINES.path, name=urls.SETTINGS_PIPELINES.name)
async def pipelines(request: Request, ws: FromPath[str]) -> object:
    return _pipelines(request, ws)


@post(urls.SETTINGS_PIPELINES.path)
async def trust(request: Request, ws: FromPath[str]) -> object:
    fields = await _checked_form(request, "trust pipeline issuers")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "trust pipeline issuers")
    issuer, audiences = fields.get("issuer", "").strip(), _lines(fields.get("audiences", ""))
    try:  # (adds the issuer, or sets again what a trusted one is trusted for; the others stay)
        record = await _run(request, operations.set_trust, ws, issuer, audiences)
    except MISTAKES as exc:
        return _pipelines(request, ws, status=exc.status, error=_said(exc), values=fields)
    return redirect(request, urls.SETTINGS_PIPELINES.link(ws=ws),
                    flash=f"Pipelines of {ws} are trusted from {record.issuer}"
                          f" (audiences: {', '.join(record.audiences) or 'the default'}).")


def _trusted(request: Request, ws: str, issuer: str) -> data.WorkspaceSettings:
    found = data.workspace_settings(registry(request), signed_in(request, "remove trust").who, ws)
    if not any(t.issuer == issuer for t in found.trusts):
        raise NotFound(f"Workspace {ws} doesn't trust issuer {issuer or '(none named)'}: the Pipelines settings "
                       "list the issuers it trusts.")
    return found


@get(urls.UNTRUST.path, name=urls.UNTRUST.name)
async def confirm_untrust(request: Request, ws: FromPath[str]) -> object:
    issuer = request.query_params.get("issuer", "")
    _trusted(request, ws, issuer)
    reg, who = registry(request), viewer(request).who
    return render(request, "confirm.html", ws=ws, place=data.place(reg, who, ws), current="settings",
                  title=f"Stop trusting {issuer}?", danger=True,
                  consequence="Pipelines whose tokens this issuer signs can no longer exchange them for registry "
                              "tokens, so they can't publish (tokens already minted expire within minutes). You "
                              "can trust it again at any time.",
                  lost=[issuer], button="Remove issuer", action=urls.UNTRUST.link(ws=ws, issuer=issuer),
                  back=urls.SETTINGS_PIPELINES.link(ws=ws))


@post(urls.UNTRUST.path)
async def untrust(request: Request, ws: FromPath[str]) -> object:
    await _checked_form(request, "remove trust")
    issuer = request.query_params.get("issuer", "")
    data.require_workspace_admin(registry(request), viewer(request).who, ws, "remove trust")
    await _run(request, operations.remove_trust, ws, issuer=issuer)
    return redirect(request, urls.SETTINGS_PIPELINES.link(ws=ws), flash=f"Pipelines of {ws} are no longer trusted "
                                                                        f"from {issuer}.")


# --- a repository's people, for its admins --------------------------------------------------------


def _repository_people(request: Request, ws: str, repo: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), signed_in(request, f"manage permissions of {ws}/{repo}").who
    found = data.repository_settings(reg, who, ws, repo)
    return render(request, "repository_people.html", status=status, ws=ws, place=data.place(reg, who, ws), s=found,
                  current=f"repo:{found.repository.slug}", **context)


@get(urls.REPOSITORY_PEOPLE.path, name=urls.REPOSITORY_PEOPLE.name)
async def repository_people(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    return _repository_people(request, ws, repo)


@post(urls.REPOSITORY_PEOPLE.path)
async def repository_grant(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    fields = await _checked_form(request, "grant roles")
    data.require_repository_admin(registry(request), viewer(request).who, ws, repo,
                                  f"manage permissions of {ws}/{repo}")
    email, role = fields.get("email", "").strip(), fields.get("role", "")
    try:
        await _run(request, operations.grant, ws, email, role, repository=repo)
    except MISTAKES as exc:
        return _repository_people(request, ws, repo, status=exc.status, error=_said(exc),
                                  failed=fields.get("form", "grant"), email=email, role=role)
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo),
                    flash=f"Granted {role} on {ws}/{repo} to {email}.")


@get(urls.REPOSITORY_REVOKE.path, name=urls.REPOSITORY_REVOKE.name)
async def confirm_repository_revoke(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    reg, who = registry(request), signed_in(request, "revoke roles").who
    found = data.repository_settings(reg, who, ws, repo)
    email = request.query_params.get("email", "")
    if not any(g.user == email for g in found.people.grants):
        raise NotFound(f"{email or 'No one'} holds no role on {ws}/{repo} to revoke: its People page lists who does.")
    return render(request, "confirm.html", ws=ws, place=data.place(reg, who, ws), current=f"repo:{repo}",
                  title=f"Revoke {email}'s role on {ws}/{repo}?", danger=True,
                  consequence=_revoke_consequence(request, ws, email, f"repo:{repo}", False),
                  lost=[], button="Revoke", action=urls.REPOSITORY_REVOKE.link(ws=ws, repo=repo, email=email),
                  back=urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo))


@post(urls.REPOSITORY_REVOKE.path)
async def repository_revoke(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    await _checked_form(request, "revoke roles")
    email = request.query_params.get("email", "")
    data.require_repository_admin(registry(request), viewer(request).who, ws, repo,
                                  f"manage permissions of {ws}/{repo}")
    await _run(request, operations.grant, ws, email, None, repository=repo)
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo), flash=f"Revoked {email}'s role on "
                                                                                 f"{ws}/{repo}.")


# --- which other repositories' pipelines may read a repository, for its admins ---------------------


@post(urls.REPOSITORY_PIPELINES.path, name=urls.REPOSITORY_PIPELINES.name)
async def repository_pipelines_grant(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    fields = await _checked_form(request, "let pipelines read repositories")
    _require_repository_admin(request, ws, repo, f"let other pipelines read {ws}/{repo}")
    source = fields.get("source", "").strip()
    try:
        await _run(request, operations.grant_pipelines, ws, repo, source)
    except MISTAKES as exc:
        return _repository_people(request, ws, repo, status=exc.status, error=_said(exc), failed="pipelines",
                                  source=source)
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo),
                    flash=f"{ws}/{repo} lets {data.whose_pipelines(ws, source)} read it now: their steps install its "
                          "packages with their OIDC token.")


@get(urls.REPOSITORY_PIPELINES_REVOKE.path, name=urls.REPOSITORY_PIPELINES_REVOKE.name)
async def confirm_repository_pipelines_revoke(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    reg, who = registry(request), signed_in(request, "change which pipelines read repositories").who
    found = data.repository_settings(reg, who, ws, repo)
    source = request.query_params.get("source", "")
    if source not in found.pipeline_readers.sources:
        raise NotFound(f"{ws}/{repo} doesn't let {data.whose_pipelines(ws, source or '(none named)')} read it: its "
                       "people and settings page lists the pipelines that may.")
    also = (" Those of the repositories it names stay." if source == ALL_PIPELINES else
            " (If it lets every pipeline of the workspace read it, theirs still do.)")
    return render(request, "confirm.html", ws=ws, place=data.place(reg, who, ws), current=f"repo:{repo}",
                  title=f"Stop {data.whose_pipelines(ws, source)} reading {ws}/{repo}?", danger=True,
                  consequence=f"Their steps can no longer install its packages, from their next request (a token "
                              f"already minted too).{also} Revoking is one commit; you can grant it again at any time.",
                  lost=[], button="Revoke",
                  action=urls.REPOSITORY_PIPELINES_REVOKE.link(ws=ws, repo=repo, source=source),
                  back=urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo))


@post(urls.REPOSITORY_PIPELINES_REVOKE.path)
async def repository_pipelines_revoke(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    await _checked_form(request, "change which pipelines read repositories")
    source = request.query_params.get("source", "")
    _require_repository_admin(request, ws, repo, f"change which pipelines read {ws}/{repo}")
    await _run(request, operations.revoke_pipelines, ws, repo, source)
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo),
                    flash=f"{ws}/{repo} no longer lets {data.whose_pipelines(ws, source)} read it.")


def _require_repository_admin(request: Request, ws: str, repo: str, doing: str) -> Repository:
    return data.require_repository_admin(registry(request), viewer(request).who, ws, repo, doing)


@post(urls.RENAME_REPOSITORY.path, name=urls.RENAME_REPOSITORY.name)
async def rename_repository(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    fields = await _checked_form(request, "rename repositories")
    _require_repository_admin(request, ws, repo, f"rename repository {ws}/{repo}")
    try:
        record = await _run(request, operations.rename_repository, ws, repo, fields.get("slug", "").strip())
    except MISTAKES as exc:
        return _repository_people(request, ws, repo, status=exc.status, error=_said(exc), failed="rename",
                                  values=fields)
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=record.slug),
                    flash=f"Renamed {ws}/{repo} to {ws}/{record.slug}, and relinked its packages: nothing is called "
                          f"{repo} now.")


@post(urls.CREATE_ON_PUBLISH.path, name=urls.CREATE_ON_PUBLISH.name)
async def create_on_publish(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    fields = await _checked_form(request, "change repository options")
    _require_repository_admin(request, ws, repo, f"change the options of {ws}/{repo}")
    on = fields.get("create_on_publish") == "on"
    await _run(request, operations.set_create_on_publish, ws, repo, on)
    said = ("creates a package when a name it doesn't have is first published to it" if on
            else "doesn't create packages on publish: a repository admin creates each one first")
    return redirect(request, urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo), flash=f"{ws}/{repo} {said}.")


def _delete_repository_page(request: Request, ws: str, repo: str, status: int = 200,
                            error: str | None = None) -> Template:
    reg, who = registry(request), signed_in(request, "delete repositories").who
    found = data.repository_settings(reg, who, ws, repo)
    return render(request, "confirm.html", status=status, ws=ws, place=data.place(reg, who, ws), current=f"repo:{repo}",
                  error=error, title=f"Delete repository {ws}/{found.repository.slug}?", danger=True,
                  consequence="This deletes the repository and the roles granted on it, in one commit. It is "
                              "refused while packages are linked to it: delete those first (their names stay "
                              "reserved). The ledger keeps its history.",
                  lost=[], button="Delete repository", action=urls.DELETE_REPOSITORY.link(ws=ws, repo=repo),
                  back=urls.REPOSITORY_PEOPLE.link(ws=ws, repo=repo))


@get(urls.DELETE_REPOSITORY.path, name=urls.DELETE_REPOSITORY.name)
async def confirm_delete_repository(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    return _delete_repository_page(request, ws, repo)


@post(urls.DELETE_REPOSITORY.path)
async def delete_repository(request: Request, ws: FromPath[str], repo: FromPath[str]) -> object:
    await _checked_form(request, "delete repositories")
    _require_repository_admin(request, ws, repo, f"delete repository {ws}/{repo}")
    try:
        await _run(request, operations.delete_repository, ws, repo)
    except Conflict as exc:  # (packages are linked to it: named, with how to delete them)
        return _delete_repository_page(request, ws, repo, status=exc.status, error=exc.message)
    administers = data.administers(registry(request), viewer(request).who, ws)
    back = urls.SETTINGS_PROJECTS.link(ws=ws) if administers else urls.WORKSPACE.link(ws=ws)
    return redirect(request, back, flash=f"Deleted repository {ws}/{repo}.")


# --- a package's publish policy, for its repository's admins -----------------------------------


def _policy(request: Request, ws: str, name: str, status: int = 200, **context: Any) -> Template:
    reg, who = registry(request), signed_in(request, "set publish policies").who
    detail = data.package(reg, who, ws, name, per_page=1)
    data.require(reg, who, ws, detail.name, "admin", "set the publish policy")
    return render(request, "policy.html", status=status, ws=ws, place=data.place(reg, who, ws), p=detail,
                  current="", **context)


@get(urls.PACKAGE_POLICY.path, name=urls.PACKAGE_POLICY.name)
async def policy(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    return _policy(request, ws, name)


@post(urls.PACKAGE_POLICY.path)
async def set_policy(request: Request, ws: FromPath[str], name: FromPath[str]) -> object:
    fields = await _checked_form(request, "set publish policies")
    reg, who = registry(request), viewer(request).who
    data.require(reg, who, ws, data.package(reg, who, ws, name, per_page=1).name, "admin", "set the publish policy")
    branches, environments = _lines(fields.get("branches", "")), _lines(fields.get("environments", ""))
    try:
        package = await _run(request, operations.set_publish_policy, ws, name, branches, environments)
    except MISTAKES as exc:
        return _policy(request, ws, name, status=exc.status, error=_said(exc), values=fields)
    said = "Pipelines of its repository may publish it from anywhere." if package.publish_policy is None else \
        "Pipelines may publish it only as the policy says."
    return redirect(request, urls.PACKAGE.link(ws=ws, name=package.name),
                    flash=f"Set the publish policy of {package.display_name}: {said}")


SETTINGS = [people, grant, confirm_revoke, revoke, confirm_remove_member, remove_member, rename_workspace,
            confirm_delete_workspace, delete_workspace, projects, new_project, new_repository, rename_project,
            confirm_delete_project, delete_project, set_uuid, pipelines, trust, confirm_untrust, untrust,
            repository_people, repository_grant, confirm_repository_revoke, repository_revoke,
            repository_pipelines_grant, confirm_repository_pipelines_revoke, repository_pipelines_revoke,
            rename_repository,
            create_on_publish, confirm_delete_repository, delete_repository, policy, set_policy]
