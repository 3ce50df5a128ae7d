"""The Reader: the registry as one caller may see it, at one commit. Workspaces, projects,
repositories, packages, versions and files are answered here; lists, history, credentials and the
ledger's own questions in the modules beside this one (its mixins)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import layout, model, permissions, visibility
from ..cache import Cache, weight
from ..datadir import Registry
from ..errors import NotFound, RegistryError
from ..identity import ANONYMOUS, Principal
from ..layout import version_key
from ..ledger import Snapshot
from ..model import DistFile, Package, Project, Repository, Role, Version, Workspace
from ..permissions import role_on, role_on_workspace
from . import timeline
from .ledger import LedgerReads
from .lists import Lists, sorted_versions
from .people import People
from .records import core_metadata
from .summaries import Summaries, all_summaries
from .trail import Trail

project_name = visibility.project_name  # the normalised name, or a 404 that says what a name is


@dataclass(frozen=True)
class PackageRead:
    package: Package
    repository: Repository
    role: Role | None  # the caller's


class Reader(Lists, Summaries, Trail, People, LedgerReads):
    """The registry as one caller may see it, at one commit. A Reader made by `at` reads an
    older commit (``snapshot``) with the caller's permissions of today (``now``): what the index
    held then, shown to whoever may read it now."""

    def __init__(self, reg: Registry, who: Principal = ANONYMOUS, snapshot: Snapshot | None = None,
                 now: Snapshot | None = None) -> None:
        self.reg = reg
        self.who = who
        self.snapshot = snapshot if snapshot is not None else reg.snapshot()
        self.now = now if now is not None else self.snapshot
        self._past = now is not None

    def as_(self, who: Principal) -> Reader:
        """The same commit, another caller."""
        return Reader(self.reg, who, self.snapshot, self.now if self._past else None)

    def resolve(self, ref: str) -> str:
        """The commit of main (as of this Reader's present) that ``ref`` names: a commit id, or an
        ISO 8601 time (the last commit made by then). Blocking (the history index and git): a
        server calls it from a worker thread."""
        return timeline.resolve(self.reg, ref, self.now.commit_id)

    def at(self, commit: str) -> Reader:
        """The registry at an earlier commit of main (one `resolve` answered), with this Reader's
        permissions."""
        return Reader(self.reg, self.who, self.reg.snapshot_at(commit), self.now)

    @property
    def commit(self) -> str:
        return self.snapshot.commit_id

    def existed(self, ws: str) -> bool:
        """Whether the workspace existed at this commit (ask `sees_workspace` first)."""
        return self.snapshot.exists(layout.workspace(ws))

    def hidden(self, ws: str | None, missing: str) -> RegistryError:
        """The answer for something this caller may not see, or that doesn't exist: the same one."""
        return visibility.hidden(self.who, ws, missing)

    def warm(self) -> None:
        """Fill the package-list and summary caches for every workspace (a server does it at start)."""
        for ws in self.snapshot.names("workspaces"):
            self.all_packages(ws)
            all_summaries(self.snapshot, ws)

    # --- workspaces, projects, repositories ------------------------------------------------------

    def sees_workspace(self, ws: str) -> bool:
        return visibility.sees_workspace(self.now, self.who, ws)

    def workspace(self, ws: str) -> Workspace:
        return visibility.workspace(self.snapshot, self.who, ws)

    def workspaces(self) -> list[Workspace]:
        snap = self.snapshot
        return [snap.get(layout.workspace(ws), Workspace) for ws in snap.names("workspaces") if self.sees_workspace(ws)]

    def administers(self, ws: str) -> bool:
        """Whether the caller administers the workspace (and so sees all of it)."""
        return role_on_workspace(self.now, self.who, ws) == "admin"

    def project(self, ws: str, key: str) -> Project:
        return visibility.project(self.snapshot, self.who, ws, model.project_key(key))

    def repository(self, ws: str, repo: str) -> Repository:
        return visibility.repository(self.snapshot, self.who, ws, repo)

    def repositories(self, ws: str, *, at_least: Role = "read") -> list[Repository]:
        """The workspace's repositories on which the caller holds ``at_least``, by slug."""
        return [r for r in self._all_repositories(ws) if model.at_least(role_on(self.snapshot, self.who, ws, r.slug), at_least)]

    def pipeline_repository(self, ws: str, repository_uuid: str) -> str | None:
        """The slug of the workspace's repository with this Bitbucket uuid (a pipeline's), if it is registered."""
        return next((r.slug for r in self._all_repositories(ws) if r.uuid == repository_uuid), None)

    def _all_repositories(self, ws: str) -> list[Repository]:
        """Every repository of the workspace, by slug, cached by the git id of their directory."""
        tree_id = self.snapshot.tree_id(layout.repositories_dir(ws))
        found = _repositories.get(tree_id)
        if found is None:
            found = sorted(self.snapshot.records(layout.repositories_dir(ws), Repository), key=lambda r: r.slug)
            _repositories.put(tree_id, found, weight(found))
        return found

    def role(self, ws: str, repo: str) -> Role | None:
        return role_on(self.now, self.who, ws, repo)

    # --- packages and versions -------------------------------------------------------------------

    def package(self, ws: str, name: str) -> PackageRead:
        package, repository = visibility.package(self.snapshot, self.who, ws, visibility.project_name(name),
                                                 self.now if self._past else None)
        return PackageRead(package, repository, self.role(ws, package.repository))

    def require(self, ws: str, name: str, need: Role, doing: str) -> PackageRead:
        """A readable package, if the caller also holds ``need`` on its repository (otherwise the
        refusal the verbs would give, naming what is missing)."""
        read = self.package(ws, name)
        permissions.require(self.now, self.who, ws, read.package.repository, need, f"{doing} of {read.package.name!r}")
        return read

    def package_state(self, ws: str, name: str) -> str | None:
        """Changes exactly when anything under the package changes (a version, a file, a yank)."""
        return self.snapshot.tree_id(layout.package_dir(ws, name))

    def versions(self, ws: str, name: str) -> list[Version]:
        """Every version of a readable package, oldest release first (PEP 440 order)."""
        self.package(ws, name)
        return sorted_versions(self.snapshot, ws, name)

    def version(self, ws: str, name: str, version: str) -> tuple[PackageRead, Version]:
        read = self.package(ws, name)
        record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
        if record is None:
            raise NotFound(f"Package {read.package.name!r} has no version {version!r}.")
        return read, record

    def file(self, ws: str, name: str, version: str, filename: str, *,
             metadata: bool = False) -> tuple[PackageRead, Version, DistFile]:
        """A file of a readable package; ``metadata``: its core metadata is asked for (PEP 658:
        wheels only), as ``filename``.metadata."""
        read = self.package(ws, name)
        record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
        found = next((f for f in record.files if f.filename == filename), None) if record else None
        if found is None or (metadata and found.packagetype != "bdist_wheel"):
            asked = f"{filename}.metadata" if metadata else filename
            raise NotFound(f"{read.package.name} {version} has no file {asked!r}.")
        return read, record, found

    def core_metadata(self, f: DistFile) -> bytes:
        return core_metadata(self.reg, f)

    def deleted_by(self, ws: str, name: str, version: Version, f: DistFile) -> str | None:
        """For a file of the past: the commit that has deleted it since ("" while the history index
        is catching up), or None if it is still published."""
        return timeline.deleted_by(self.reg, self.now, ws, name, self.commit, f.filename, f.sha256)

    def blob_path(self, sha256: str):
        return self.reg.blobs.local_path(sha256)


_repositories = Cache("repositories", "a workspace's repositories, by the git id of their directory")
