"""What every part of the Reader stands on: one caller, one commit, and the registry's things as
that caller may see them (workspaces, projects, repositories, packages, versions, files).

`Catalog` holds the state (the data directory, the caller, the snapshot read, and the snapshot whose
permissions apply) and answers for single things; the other parts of the Reader (lists.py,
summaries.py, trail.py, people.py, ledger.py) extend it, so each sees these attributes and lookups
typed, and `Reader` (reader.py) is all of them at once.

Visibility, for every method here and in the parts: something the caller may not see answers
exactly as a missing one (`hidden`: 401 to a stranger, so that pip and uv retry with stored
credentials; 404 to anyone signed in; the same words either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import layout, model, names, permissions, visibility
from ..cache import Cache, weight
from ..datadir import Registry
from ..errors import NotFound, RegistryError
from ..identity import ANONYMOUS, Principal
from ..layout import version_key
from ..ledger import Snapshot
from ..model import DistFile, Package, Project, Repository, Role, Version, Workspace
from ..permissions import role_on, role_on_workspace
from . import records, timeline

project_name = visibility.project_name  # the normalised name, or a 404 that says what a name is


@dataclass(frozen=True)
class PackageRead:
    package: Package
    repository: Repository
    role: Role | None  # the caller's


class Catalog:
    """The registry as one caller may see it, at one commit: its single things. A Catalog made for
    the past reads an older commit (``snapshot``) with the caller's permissions of today (``now``):
    what the index held then, shown to whoever may read it now.

    Costs: "a lookup" is one record read by its path (O(1) in the registry's size); a workspace's
    visibility is decided from its repositories (a lookup each, for a caller who doesn't administer
    it); nothing here walks the ledger's past."""

    def __init__(self, reg: Registry, who: Principal = ANONYMOUS, snapshot: Snapshot | None = None,
                 now: Snapshot | None = None) -> None:
        self.reg = reg
        self.who = who
        self.snapshot = snapshot if snapshot is not None else reg.snapshot()
        self.now = now if now is not None else self.snapshot
        self._past = now is not None  # (the snapshot is older than the permissions applied to it)

    @property
    def past(self) -> bool:
        """Whether this reads an older commit than today's (`Reader.at`)."""
        return self._past

    @property
    def commit(self) -> str:
        """The id of the commit read."""
        return self.snapshot.commit_id

    def hidden(self, ws: str | None, missing: str) -> RegistryError:
        """The refusal (returned, for the caller to raise) for something this caller may not see, or
        that doesn't exist: the same one (401 asking for credentials to a stranger, 404 with
        ``missing`` to anyone else)."""
        return visibility.hidden(self.who, ws, missing)

    # --- workspaces, projects, repositories ------------------------------------------------------

    def existed(self, ws: str) -> bool:
        """Whether the workspace existed at the commit read, whoever may see it (ask `sees_workspace`
        first). One lookup."""
        return self.snapshot.exists(layout.workspace(ws))

    def sees_workspace(self, ws: str) -> bool:
        """Whether the workspace exists for this caller (today's permissions): it exists and they
        administer it or may read one of its repositories. Never raises. A lookup per repository of
        the workspace (one, for its admins)."""
        return visibility.sees_workspace(self.now, self.who, ws)

    def workspace(self, ws: str) -> Workspace:
        """The workspace, if the caller sees it (`sees_workspace`); otherwise `hidden`. Costs what
        `sees_workspace` does."""
        return visibility.workspace(self.snapshot, self.who, ws)

    def workspaces(self) -> list[Workspace]:
        """The workspaces the caller sees, by name (none, rather than a refusal, for a stranger who
        sees none). A `sees_workspace` per workspace of the registry."""
        snap, found = self.snapshot, []
        for ws in snap.names("workspaces"):
            record = snap.get(layout.workspace(ws), Workspace)
            if record is not None and self.sees_workspace(ws):
                found.append(record)
        return found

    def administers(self, ws: str) -> bool:
        """Whether the caller administers the workspace (and so sees all of it). One lookup; raises
        NotFound for a workspace that doesn't exist (ask `workspace` first)."""
        return role_on_workspace(self.now, self.who, ws) == "admin"

    def project(self, ws: str, key: str) -> Project:
        """A project of the workspace, if the caller administers the workspace or may read one of the
        project's repositories; otherwise `hidden`. A lookup per repository of the workspace."""
        return visibility.project(self.snapshot, self.who, ws, names.project_key(key))

    def repository(self, ws: str, repo: str) -> Repository:
        """A repository the caller may read; otherwise `hidden`. A few lookups."""
        return visibility.repository(self.snapshot, self.who, ws, repo)

    def repositories(self, ws: str, *, at_least: Role = "read") -> list[Repository]:
        """The workspace's repositories on which the caller holds ``at_least``, by slug (an empty list
        for a workspace they see none of, or that doesn't exist). The workspace's repositories come
        from a cache keyed by their directory's git id; then a role check each."""
        return [r for r in self._all_repositories(ws)
                if model.at_least(role_on(self.snapshot, self.who, ws, r.slug), at_least)]

    def pipeline_repository(self, ws: str, repository_uuid: str) -> str | None:
        """The slug of the workspace's repository with this Bitbucket uuid (a pipeline's, as a file's
        provenance names it), if one is registered and the caller may read it today (one they can't
        is as missing: its uuid is all they see, as the pipeline's claims gave it). Cached as
        `repositories` is; a role check."""
        slug = next((r.slug for r in self._all_repositories(ws) if r.uuid == repository_uuid), None)
        return slug if slug is not None and visibility.can_read_now(self.now, self.who, ws, slug) else None

    def _all_repositories(self, ws: str) -> list[Repository]:
        """Every repository of the workspace, by slug, cached by the git id of their directory."""
        tree_id = self.snapshot.tree_id(layout.repositories_dir(ws))
        found = _repositories.get(tree_id)
        if found is None:
            found = sorted(self.snapshot.records(layout.repositories_dir(ws), Repository), key=lambda r: r.slug)
            _repositories.put(tree_id, found, weight(found))
        return found

    def role(self, ws: str, repo: str) -> Role | None:
        """The caller's role on a repository today (None: none), capped by their token's scope. A few
        lookups; raises NotFound for a workspace or repository that doesn't exist."""
        return role_on(self.now, self.who, ws, repo)

    # --- packages, versions, files ---------------------------------------------------------------

    def package(self, ws: str, name: str) -> PackageRead:
        """A package the caller may read (by any spelling of its name), its repository and their role
        on it; otherwise `hidden` (for a workspace they don't see, a message that names neither as
        missing). A NotFound that says what a name is for one that can't be a project name. A few
        lookups."""
        package, repository = visibility.package(self.snapshot, self.who, ws, visibility.project_name(name),
                                                 self.now if self._past else None)
        return PackageRead(package, repository, self.role(ws, package.repository))

    def require(self, ws: str, name: str, need: Role, doing: str) -> PackageRead:
        """A readable package, if the caller also holds ``need`` on its repository; otherwise the
        refusal the verbs would give (Unauthorized, Forbidden or Denied), naming what is missing.
        A package the caller may not read is `hidden`, as in `package`."""
        read = self.package(ws, name)
        permissions.require(self.now, self.who, ws, read.package.repository, need, f"{doing} of {read.package.name!r}")
        return read

    def package_state(self, ws: str, name: str) -> str | None:
        """A token that changes exactly when anything under the package changes (a version, a file, a
        yank): the git id of its directory; None if there is none. Whoever asks: check visibility
        first (`package`). One lookup."""
        return self.snapshot.tree_id(layout.package_dir(ws, name))

    def versions(self, ws: str, name: str) -> list[Version]:
        """Every version of a readable package, oldest release first (PEP 440 order); the package is
        `hidden` as in `package`. A lookup per version."""
        self.package(ws, name)
        return records.versions(self.snapshot, ws, name)

    def version(self, ws: str, name: str, version: str) -> tuple[PackageRead, Version]:
        """A version of a readable package, by any spelling of it (1.0 is 1.0.0). NotFound if the
        package has no such version; the package is `hidden` as in `package`. A few lookups."""
        read = self.package(ws, name)
        record = records.get_version(self.snapshot, ws, read.package.name, version)
        if record is None:
            raise NotFound(f"Package {read.package.name!r} has no version {version!r}.")
        return read, record

    def file(self, ws: str, name: str, version: str, filename: str, *,
             metadata: bool = False) -> tuple[PackageRead, Version, DistFile]:
        """A file of a version of a readable package; ``metadata``: its core metadata is asked for
        (PEP 658: wheels only), as ``filename``.metadata. NotFound names what is missing (the version
        and the file alike); the package is `hidden` as in `package`. A few lookups."""
        read = self.package(ws, name)
        record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
        found = next((f for f in record.files if f.filename == filename), None) if record else None
        if record is None or found is None or (metadata and found.packagetype != "bdist_wheel"):
            asked = f"{filename}.metadata" if metadata else filename
            raise NotFound(f"{read.package.name} {version} has no file {asked!r}.")
        return read, record, found

    def deleted_by(self, ws: str, name: str, version: Version, f: DistFile) -> str | None:
        """For a file of the past (a file `file` answered on an older commit): the commit that has
        deleted it since ("" while the history index is catching up), or None if it is still
        published. Two lookups (today's deleted files, the history index's deletions)."""
        return timeline.deleted_by(self.reg, self.now, ws, name, self.commit, f.filename, f.sha256)

    def blob_path(self, sha256: str) -> Path | None:
        """The local path of a file's bytes, by their sha256 (a file `file` answered: no check of who
        asks here); None if they aren't on this machine (a remote blob store, or missing). One stat."""
        return self.reg.blobs.local_path(sha256)


_repositories = Cache("repositories", "a workspace's repositories, by the git id of their directory")
