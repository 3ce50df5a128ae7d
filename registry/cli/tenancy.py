"""Workspaces, their projects and repositories: `registry workspace`, `project`, `repo`."""

from __future__ import annotations

from .. import operations
from .command import CHANNEL, Opened, opened, print_table, split_repo


@opened
def workspace_create(cx: Opened) -> int:
    ws = operations.create_workspace(cx.reg, cx.who, CHANNEL, cx.args.slug, cx.args.name, cx.args.uuid,
                                     admins=cx.args.admin)
    print(f"created workspace {ws.slug} {ws.uuid}, administered by {', '.join(ws.admins)}" if ws.admins else
          f"created workspace {ws.slug} {ws.uuid}; it has no admin yet (only the operator, here, manages it): "
          f"`registry grant {ws.slug} EMAIL admin` names one")
    return 0


@opened
def workspace_list(cx: Opened) -> int:
    for ws in cx.read.workspaces():
        print(f"{ws.slug}\t{ws.uuid}\t{ws.name}")
    return 0


@opened
def project_create(cx: Opened) -> int:
    pr = operations.create_project(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.key, cx.args.name)
    print(f"created project {cx.args.workspace}/{pr.key}")
    return 0


@opened
def repo_create(cx: Opened) -> int:
    ws, slug = split_repo(cx.args.target)
    r = operations.create_repository(cx.reg, cx.who, CHANNEL, ws, slug, cx.args.project, cx.args.public, cx.args.uuid,
                                     create_on_publish=cx.args.create_on_publish)
    print(f"created repository {ws}/{r.slug} {r.uuid} ({'public' if r.public else 'private'}"
          f"{'; publishing a new name creates its package, linked here' if r.create_packages_on_publish else ''})")
    return 0


@opened
def workspace_uuid(cx: Opened) -> int:
    ws = operations.set_uuid(cx.reg, cx.who, CHANNEL, cx.args.slug, cx.args.uuid)
    print(f"workspace {cx.args.slug} is Bitbucket workspace {ws.uuid}")
    return 0


@opened
def repo_uuid(cx: Opened) -> int:
    ws, slug = split_repo(cx.args.target)
    r = operations.set_uuid(cx.reg, cx.who, CHANNEL, ws, cx.args.uuid, repository=slug)
    print(f"repository {ws}/{slug} is Bitbucket repository {r.uuid}")
    return 0


@opened
def workspace_rename(cx: Opened) -> int:
    ws = operations.rename_workspace(cx.reg, cx.who, CHANNEL, cx.args.slug, cx.args.name, cx.args.new_slug)
    print(f"workspace {ws.slug} is now called {ws.name!r}")
    return 0


@opened
def workspace_delete(cx: Opened) -> int:
    ws = operations.delete_workspace(cx.reg, cx.who, CHANNEL, cx.args.slug)
    print(f"deleted workspace {ws.slug} (the names its deleted packages held stay reserved)")
    return 0


@opened
def project_list(cx: Opened) -> int:
    rows = [("KEY", "NAME", "REPOSITORIES")]
    for p, repos in cx.read.projects(cx.args.workspace):
        rows.append((p.key, p.name, str(len(repos))))
    print_table(rows)
    return 0


@opened
def project_rename(cx: Opened) -> int:
    pr = operations.rename_project(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.key, cx.args.name)
    print(f"project {cx.args.workspace}/{pr.key} is now called {pr.name!r}")
    return 0


@opened
def project_delete(cx: Opened) -> int:
    pr = operations.delete_project(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.key)
    print(f"deleted project {cx.args.workspace}/{pr.key}")
    return 0


@opened
def repo_list(cx: Opened) -> int:
    rows = [("SLUG", "PROJECT", "VISIBILITY", "UUID")]
    for r in cx.read.repositories(cx.args.workspace):
        rows.append((r.slug, r.project, "public" if r.public else "private", r.uuid))
    print_table(rows)
    return 0


@opened
def repo_rename(cx: Opened) -> int:
    ws, slug = split_repo(cx.args.target)
    r = operations.rename_repository(cx.reg, cx.who, CHANNEL, ws, slug, cx.args.new_slug)
    print(f"renamed repository {ws}/{slug} to {ws}/{r.slug}")
    return 0


@opened
def repo_delete(cx: Opened) -> int:
    ws, slug = split_repo(cx.args.target)
    r = operations.delete_repository(cx.reg, cx.who, CHANNEL, ws, slug)
    print(f"deleted repository {ws}/{r.slug}")
    return 0
