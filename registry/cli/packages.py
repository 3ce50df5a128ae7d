"""Packages and their versions: `registry package` and `registry version`; and whether publishing a
new name creates its package (`registry repo set`)."""

from __future__ import annotations

from .. import model, operations
from ..errors import RegistryError
from .command import CHANNEL, Opened, known_workspace, opened, split_repo


@opened
def repo_set(cx: Opened) -> int:
    ws, slug = split_repo(cx.args.target)
    on = cx.args.create_on_publish
    r = operations.set_create_on_publish(cx.reg, cx.who, CHANNEL, ws, slug, on)
    print(f"repository {ws}/{r.slug}: publishing a name the workspace has no package of "
          + ("creates it, linked here" if on else
             f"is refused (a repository admin creates packages: registry package create {ws} NAME --repo {r.slug})"))
    return 0


@opened
def package_create(cx: Opened) -> int:
    pkg = operations.create_package(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name, cx.args.repo)
    print(f"created package {pkg.display_name} ({pkg.name}) in {pkg.workspace}, "
          f"linked to {pkg.workspace}/{pkg.repository}")
    return 0


@opened
def package_delete(cx: Opened) -> int:
    pkg, _ = operations.delete_package(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name)
    print(f"deleted package {pkg.name} from {pkg.workspace}; the running server frees its files once the grace "
          "period has passed (REGISTRY_GC_GRACE_SECONDS, default an hour), `registry gc` frees them now")
    return 0


@opened
def package_list(cx: Opened) -> int:
    known_workspace(cx.read, cx.args.workspace)
    for pkg in cx.read.all_packages(cx.args.workspace):
        print(f"{pkg.name}\t{pkg.display_name}\t{pkg.workspace}/{pkg.repository}")
    return 0


@opened
def package_policy(cx: Opened) -> int:
    """Shows the policy, or sets it (--branch, --environment) or clears it (--clear)."""
    args = cx.args
    if args.clear and (args.branch or args.environment):
        raise RegistryError("Use --clear alone, or give --branch / --environment.")
    if args.clear or args.branch or args.environment:
        pkg = operations.set_publish_policy(cx.reg, cx.who, CHANNEL, args.workspace, args.name, args.branch,
                                            args.environment)
    else:
        pkg = cx.read.package(args.workspace, args.name).package
    print(f"publish policy of {pkg.name}: {_policy_text(pkg.publish_policy)}")
    return 0


def _policy_text(policy: model.PublishPolicy | None) -> str:
    if policy is None:
        return "any pipeline of the linked repository may publish"
    parts = []
    if policy.branches:
        parts.append(f"branches {', '.join(policy.branches)}")
    if policy.environments:
        parts.append(f"deployment environments {', '.join(policy.environments)}")
    return "pipelines may publish from " + " and ".join(parts)


@opened
def version_delete(cx: Opened) -> int:
    v, _ = operations.delete_version(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name, cx.args.version)
    print(f"deleted {v.package} {v.version} ({len(v.files)} files)")
    return 0


@opened
def version_yank(cx: Opened) -> int:
    """`registry version yank` and `unyank` (the same change, undone)."""
    args = cx.args
    v = operations.yank(cx.reg, cx.who, CHANNEL, args.workspace, args.name, args.version, getattr(args, "reason", ""),
                        undo=args.action == "unyank")
    print(f"{'yanked' if v.yanked else 'un-yanked'} {v.package} {v.version}")
    return 0
