"""Renaming and deleting workspaces, projects and repositories.

Display names change freely. A repository's slug changes with every package linked to it, in the
one commit (nothing points at the old slug, which then names nothing). A workspace's slug does not
change: it is in every package record of the workspace, its history, and every client's index URL
(pip.conf, uv.toml, the pipelines' settings), so a rename would be neither a cheap move in the
ledger nor safe for its users; a new workspace is the way (see `rename_workspace`).

Deleting is refused while something is inside, naming what is left and the command that removes
it: a repository while packages are linked to it, a project while it has repositories, a workspace
while it has projects, repositories or packages. A deleted workspace takes its own records with it
(the workspace, its pipelines trust, its upstream settings and the files fetched from upstream, its
usage figure, retention policies and webhooks) but
keeps its deleted-files records: the names it once published stay reserved, so that a workspace
made again under that slug never takes them from an upstream index (dependency confusion) nor
accepts their spent filenames again.
"""

from __future__ import annotations

from .. import layout, model, names, visibility
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Conflict, Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, Snapshot
from ..model import Channel, Project, Repository, Webhook, Workspace
from ..permissions import repository_context, require
from ..reads.records import list_packages
from ..webhooks import secrets
from ._common import make_change, refuse_retired_slug, replace, require_workspace_admin
from .pipeline_readers import without

SHOWN = 10  # names a refusal lists of what is left


def rename_workspace(reg: Registry, who: Principal, channel: Channel, ws: str, name: str | None = None,
                     slug: str | None = None) -> Workspace:
    """Change a workspace's display name (its admins'). A new slug is refused, saying why and what
    to do instead."""
    if slug is not None and slug != ws:
        raise Invalid(f"A workspace's slug can't change: {ws!r} is in every client's index URL, in each of its "
                      "package records and in its history. Change its display name with --name; to move to another "
                      "slug, create that workspace and publish or import its packages there (`registry import`).")
    if name is None or not name.strip():
        raise Invalid("Give the workspace's new display name (--name NAME).")
    name = names.display_name(name, "Workspace names")

    def build(snap: Snapshot) -> Change:
        workspace = require_workspace_admin(snap, who, ws, f"rename workspace {ws}")
        if workspace.name == name:
            raise Conflict(f"Workspace {ws} is already called {name!r}.")
        record = replace(workspace, name=name)
        return make_change(who, channel, Action.RENAME_WORKSPACE, f"rename workspace {ws}: {workspace.name!r} -> "
                           f"{name!r}", {layout.workspace(ws): record}, (T.WORKSPACE, ws), result=record)

    return reg.transact(build).result


def rename_project(reg: Registry, who: Principal, channel: Channel, ws: str, key: str, name: str) -> Project:
    """Change a project's display name (its workspace admins'); its key stays."""
    key = names.project_key(key)
    if not name or not name.strip():
        raise Invalid("Give the project's new display name (--name NAME).")
    name = names.display_name(name, "Project names")

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, f"rename project {ws}/{key}")
        project = _project(snap, ws, key)
        if project.name == name:
            raise Conflict(f"Project {ws}/{key} is already called {name!r}.")
        record = replace(project, name=name)
        return make_change(who, channel, Action.RENAME_PROJECT, f"rename project {ws}/{key}: {project.name!r} -> "
                           f"{name!r}", {layout.project(ws, key): record}, (T.WORKSPACE, ws), (T.PROJECT, key),
                           result=record)

    return reg.transact(build).result


def rename_repository(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str,
                      new_slug: str) -> Repository:
    """Give a repository a new slug (its admins'), and relink every package linked to it, in one
    commit: the old slug then names nothing (the repositories its pipelines may read name the new one).
    Its UUID, grants and packages' names stay."""
    new_slug = names.repository_slug(new_slug)

    def build(snap: Snapshot) -> Change:
        visibility.repository(snap, who, ws, slug)  # (one they can't read is as missing, not a refusal)
        require(snap, who, ws, slug, "admin", f"rename repository {ws}/{slug}")
        _, _, repository = repository_context(snap, ws, slug)
        if new_slug == slug:
            raise Conflict(f"Repository {ws}/{slug} is already called {slug}.")
        if snap.exists(layout.repository(ws, new_slug)):
            raise Conflict(f"Repository {ws}/{new_slug} already exists; pick another slug.")
        refuse_retired_slug(snap, ws, new_slug)
        linked = [p for p in list_packages(snap, ws) if p.repository == slug]
        record = replace(repository, slug=new_slug)
        retired = model.RetiredRepository(slug=slug, uuid=repository.uuid, renamed_to=new_slug,
                                          retired=who.provenance(channel))
        writes: dict[str, model.Record | None] = {layout.repository(ws, slug): None,
                                                  layout.repository(ws, new_slug): record,
                                                  layout.retired_repository(ws, slug): retired}
        writes |= {layout.package(ws, p.name): replace(p, repository=new_slug) for p in linked}
        # (a deleted package's name may be created again on publish only from its own repository:
        # that repository keeps its claim under its new slug)
        writes |= {layout.deleted_files(ws, d.package): replace(d, repository=new_slug)
                   for d in snap.records(layout.deleted_files_dir(ws), model.DeletedFiles) if d.repository == slug}
        writes |= without(snap, ws, slug, new_slug)  # (the repositories its pipelines may read know them by it)
        writes |= {layout.retention_policy(ws, p.name): replace(p, repository=new_slug)
                   for p in snap.records(layout.retention_dir(ws), model.RetentionPolicy) if p.repository == slug}
        # (a hook of this repository matches events by its slug: under the old one it would skip them all)
        writes |= {layout.webhook(ws, h.name): replace(h, repository=new_slug) for h in _hooks_of(snap, ws, slug)}
        body = "Relinked packages: " + ", ".join(p.name for p in linked) if linked else ""
        return make_change(who, channel, Action.RENAME_REPOSITORY, f"rename repository {ws}/{slug} to {ws}/{new_slug}"
                           f" ({len(linked)} linked packages)", writes, (T.WORKSPACE, ws), (T.REPOSITORY, new_slug),
                           (T.RENAMED_FROM, slug), (T.REPOSITORY_UUID, repository.uuid), body=body, result=record)

    return reg.transact(build).result


def delete_repository(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str) -> Repository:
    """Delete a repository and its grants (its admins'), the grants of other repositories to its
    pipelines, its retention policies and its webhooks; refused while packages are linked to it."""

    def build(snap: Snapshot) -> Change:
        visibility.repository(snap, who, ws, slug)  # (one they can't read is as missing, not a refusal)
        require(snap, who, ws, slug, "admin", f"delete repository {ws}/{slug}")
        _, _, repository = repository_context(snap, ws, slug)
        linked = [p.name for p in list_packages(snap, ws) if p.repository == slug]
        if linked:
            raise Conflict(f"Repository {ws}/{slug} still has {_count(linked, 'linked package')}: {_some(linked)}. "
                           f"Delete them first (`registry package delete {ws} NAME`, each: their names stay "
                           "reserved), then the repository.")
        retired = model.RetiredRepository(slug=slug, uuid=repository.uuid, retired=who.provenance(channel))
        writes: dict[str, model.Record | None] = {layout.repository(ws, slug): None,
                                                  layout.retired_repository(ws, slug): retired}
        writes |= without(snap, ws, slug)  # (no grant left to its pipelines)
        writes |= {layout.retention_policy(ws, p.name): None  # (its retention policies: nothing left to apply to)
                   for p in snap.records(layout.retention_dir(ws), model.RetentionPolicy) if p.repository == slug}
        hooks = _hooks_of(snap, ws, slug)
        writes |= {layout.webhook(ws, h.name): None for h in hooks}  # (its hooks: nothing left to tell them)
        return make_change(who, channel, Action.DELETE_REPOSITORY, f"delete repository {ws}/{slug}", writes,
                           (T.WORKSPACE, ws), (T.REPOSITORY, slug),
                           (T.REPOSITORY_UUID, repository.uuid), result=(repository, hooks))

    repository, hooks = reg.transact(build).result
    _forget_secrets(reg, ws, hooks)
    return repository


def delete_project(reg: Registry, who: Principal, channel: Channel, ws: str, key: str) -> Project:
    """Delete a project and its grants (its workspace admins'); refused while it has repositories."""
    key = names.project_key(key)

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, f"delete project {ws}/{key}")
        project = _project(snap, ws, key)
        inside = [r.slug for r in snap.records(layout.repositories_dir(ws), Repository) if r.project == key]
        if inside:
            raise Conflict(f"Project {ws}/{key} still has {_count(inside, 'repository', 'repositories')}: "
                           f"{_some(inside)}. Delete them first (`registry repo delete {ws}/REPO`, each, once no "
                           "package is linked to it), then the project.")
        return make_change(who, channel, Action.DELETE_PROJECT, f"delete project {ws}/{key}",
                           {layout.project(ws, key): None}, (T.WORKSPACE, ws), (T.PROJECT, key), result=project)

    return reg.transact(build).result


def delete_workspace(reg: Registry, who: Principal, channel: Channel, ws: str) -> Workspace:
    """Delete a workspace (its admins'), with its trust, upstream settings, files fetched from
    upstream, retention policies and webhooks; its deleted-files records stay (see the module's
    note). Refused while it has packages, repositories or projects, naming them and the commands
    that remove them."""

    def build(snap: Snapshot) -> Change:
        workspace = require_workspace_admin(snap, who, ws, f"delete workspace {ws}")
        left = []
        packages = [p.name for p in list_packages(snap, ws)]
        if packages:
            left.append(f"{_count(packages, 'package')} ({_some(packages)}: `registry package delete {ws} NAME`)")
        repositories = sorted(r.slug for r in snap.records(layout.repositories_dir(ws), Repository))
        if repositories:
            left.append(f"{_count(repositories, 'repository', 'repositories')} ({_some(repositories)}: "
                        f"`registry repo delete {ws}/REPO`)")
        projects = sorted(p.key for p in snap.records(layout.projects_dir(ws), Project))
        if projects:
            left.append(f"{_count(projects, 'project')} ({_some(projects)}: `registry project delete {ws} KEY`)")
        if left:
            raise Conflict(f"Workspace {ws} still has {'; '.join(left)}. Remove them first, in that order, then the "
                           "workspace.")
        writes: dict[str, model.Record | None] = {
            layout.workspace(ws): None, layout.trust(ws): None, layout.trusts_dir(ws): None, layout.upstream(ws): None,
            layout.upstream_projects_dir(ws): None, layout.usage(ws): None, layout.retention_dir(ws): None,
            layout.webhooks_dir(ws): None}
        # (its hooks go too: a workspace made again under this slug, by anyone, must not tell them its events)
        hooks = snap.records(layout.webhooks_dir(ws), Webhook)
        return make_change(who, channel, Action.DELETE_WORKSPACE, f"delete workspace {ws}", writes,
                           (T.WORKSPACE, ws), (T.WORKSPACE_UUID, workspace.uuid), result=(workspace, hooks))

    workspace, hooks = reg.transact(build).result
    _forget_secrets(reg, ws, hooks)
    return workspace


def _hooks_of(snap: Snapshot, ws: str, slug: str) -> list[Webhook]:
    return [h for h in snap.records(layout.webhooks_dir(ws), Webhook) if h.repository == slug]


def _forget_secrets(reg: Registry, ws: str, hooks: list[Webhook]) -> None:
    """Forget the URLs and secrets of hooks a commit removed. Best effort, after the commit: the ledger
    no longer names them, so one left behind (a failed write) is never used; a hook added again
    under that name is given its own."""
    if hooks:
        try:
            secrets.drop(reg.settings, ws, hooks)
        except OSError:
            pass


def _project(snap: Snapshot, ws: str, key: str) -> Project:
    found = snap.get(layout.project(ws, key), Project)
    if found is None:
        raise NotFound(f"Project {key} does not exist in workspace {ws} (`registry project list {ws}` shows them).")
    return found


def _count(items: list[str], one: str, many: str | None = None) -> str:
    return f"{len(items)} {one if len(items) == 1 else many or one + 's'}"


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
