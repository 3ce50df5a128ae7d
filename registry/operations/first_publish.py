"""Creating a package on its first publish, as PyPI, GitLab and devpi do, where a repository allows
it (`Repository.create_packages_on_publish`, off by default: Bitbucket's way is that a repository
admin creates each package first). Here: the option's verb, and which repository a new name is
linked to, or the refusal that says how the package gets created.

An upload to `/<ws>/` names no repository. A pipeline's is its own (its token names it). A
person's is the one repository of the workspace they may write to that has the option on; with
several, the upload can't guess, and they are named. A name the workspace still reserves is never
taken by a publish: one whose package was deleted from *another* repository (its filenames stay
spent, and its users may still pin it), and one its installs get from an upstream index (a publish
would replace the public project for everyone); a repository admin who means it creates it.
"""

from __future__ import annotations

from .. import layout, model, names, visibility
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Conflict, Forbidden
from ..identity import Principal
from ..ledger import Change, NoChange, Snapshot
from ..model import Channel, DeletedFiles, Package, Repository
from ..permissions import require, role_on
from ._common import make_change, replace


def set_create_on_publish(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str,
                          on: bool) -> Repository:
    """Turn creating packages on publish on or off for a repository (its admin's, or the
    workspace's): one commit, or none if it already is so."""

    def build(snap: Snapshot) -> Change | NoChange:
        if who.kind == "pipeline":
            raise Forbidden("A pipeline may publish and read its repository's packages, but not change the "
                            "repository's options; a repository admin must do it.")
        repository = visibility.repository(snap, who, ws, slug)
        state = "creates packages on publish" if on else "doesn't create packages on publish"
        require(snap, who, ws, slug, "admin", f"change whether {ws}/{slug} creates packages on publish")
        if repository.create_packages_on_publish == on:
            return NoChange(repository)
        updated = replace(repository, create_packages_on_publish=on, option_set=who.provenance(channel))
        return make_change(who, channel, Action.SET_REPOSITORY_OPTION, f"repository {ws}/{slug} now {state}",
                           {layout.repository(ws, slug): updated}, (T.WORKSPACE, ws), (T.REPOSITORY, slug),
                           provenance=updated.option_set, result=updated)

    return reg.transact(build).result


def how_to_create(ws: str, name: str, repository: str = "REPO") -> str:
    return (f"a repository admin creates it with `registry package create {ws} {name} --repo {repository}` (or on "
            f"the web UI's page /-/{ws}/new)")


def new_package(snap: Snapshot, who: Principal, ws: str, name: str, display: str, taken: bool,
                provenance: model.Provenance | None = None) -> Package:
    """The package a publish of ``name`` creates (the workspace has none ``who`` may read; ``taken``:
    it has one they may not), linked to the repository it belongs to; or the refusal, a 403 that
    names the package and what creates it. A listing of the workspace's repositories for a person's
    upload; a lookup for a pipeline's."""
    missing = f"Package {name!r} does not exist in workspace {ws}"
    if who.kind == "pipeline":
        own = snap.get(layout.repository(ws, who.repository or ""), Repository) if who.workspace == ws else None
        options = [own] if own is not None and own.create_packages_on_publish else []
        if not options:
            slug = own.slug if own else "REPO"
            raise Forbidden(f"{missing}, and this pipeline's repository doesn't create packages on publish: "
                            f"{how_to_create(ws, name, slug)}, or turns that on with "
                            f"`registry repo set {ws}/{slug} --create-on-publish`.")
    else:
        options = [r for r in snap.records(layout.repositories_dir(ws), Repository)
                   if r.create_packages_on_publish and model.at_least(role_on(snap, who, ws, r.slug), "write")]
        if not options:
            raise Forbidden(f"{missing}, and no repository you may publish to creates packages on publish: "
                            f"{how_to_create(ws, name)}, or lets publishing create them with "
                            f"`registry repo set {ws}/REPO --create-on-publish`.")
        if len(options) > 1:
            listed = ", ".join(f"{ws}/{r.slug}" for r in options)
            raise Forbidden(f"{missing}, and several repositories you may publish to create packages on publish "
                            f"({listed}): an upload to /{ws}/ can't say which one it belongs to. "
                            f"A{how_to_create(ws, name)[1:]} linked to one of them, then publish again.")
    repository = options[0].slug
    if taken:  # (names are unique in a workspace: taken is taken, as when an admin creates it)
        raise Conflict(f"Package name {name!r} is taken in workspace {ws} by a package of a repository you may not "
                       "read: publish under another name.")
    names.unreserved_package(name)
    deleted = snap.get(layout.deleted_files(ws, name), DeletedFiles)
    if deleted is not None and deleted.repository != repository:
        raise Forbidden(f"{missing}: it was deleted, and was not {ws}/{repository}'s, so publishing doesn't create it "
                        f"again (whoever installs it may still pin its name); if it should be "
                        f"{ws}/{repository}'s now, {how_to_create(ws, name, repository)}.")
    if snap.exists(layout.upstream_files_dir(ws, name)):
        raise Forbidden(f"{missing}: workspace {ws} installs {name!r} from an upstream index, and publishing it here "
                        f"would replace that project for every install. If that is what you mean, "
                        f"{how_to_create(ws, name, repository)}.")
    require(snap, who, ws, repository, "write", f"publish to {name!r}")
    return Package(name=name, display_name=display, workspace=ws, repository=repository,
                   created=provenance or who.provenance("upload"))
