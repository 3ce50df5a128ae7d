"""The read layer: every question the web, the CLI and the UI ask of the registry, answered for one
caller at one commit. Nothing else reads records: visibility is decided here (through
visibility.py) and only here, so every surface hides the same things the same way.

A `Reader` is cheap (a snapshot and a principal); each answer costs what it returns: a record
lookup per thing shown, never a walk of the ledger's past (history comes from its index, kept up to
date by whoever commits). Lists of a workspace's packages are cached by the git id of their
directory, in a cache of a fixed size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Literal

from packaging.version import InvalidVersion
from packaging.version import Version as PkgVersion

from pipelines.verify import Verifier, is_jwt, unverified_issuer

from . import layout, model, visibility
from .audit import Action, T, action
from .errors import Invalid, NotFound, RegistryError
from .identity import (
    ANONYMOUS,
    Principal,
    check_token,
    pipeline_principal,
    trusts_for,
    verify_pipeline_token,
)
from .ledger import Commit, Snapshot
from .model import (
    ApiToken,
    DistFile,
    Package,
    Project,
    Repository,
    Role,
    User,
    Version,
    Workspace,
)
from .operations import Registry, core_metadata, list_packages, version_key
from .permissions import role_on

project_name = visibility.project_name  # the normalised name, or a 404 that says what a name is
MAX_PER_PAGE = 500
LISTS_CACHED = 64  # workspaces' package lists kept, each keyed by its directory's git id
Sort = Literal["name", "published"]


@dataclass(frozen=True)
class PackageRead:
    package: Package
    repository: Repository
    role: Role | None  # the caller's


@dataclass(frozen=True)
class Listed:
    package: Package
    repository: Repository
    latest: Version | None = None  # when asked for (the UI shows it)


@dataclass(frozen=True)
class Page:
    items: list[Listed]
    total: int
    page: int
    per_page: int

    @property
    def more(self) -> bool:
        return self.page * self.per_page < self.total


class Reader:
    """The registry as one caller may see it, at one commit."""

    def __init__(self, reg: Registry, who: Principal = ANONYMOUS, snapshot: Snapshot | None = None) -> None:
        self.reg = reg
        self.who = who
        self.snapshot = snapshot if snapshot is not None else reg.snapshot()

    def as_(self, who: Principal) -> Reader:
        """The same commit, another caller."""
        return Reader(self.reg, who, self.snapshot)

    @property
    def commit(self) -> str:
        return self.snapshot.commit_id

    def principal_for(self, username: str, secret: str, verifier: Verifier) -> Principal:
        """Who these credentials are, at this commit: an API token's user (or pipeline), or a pipeline
        step by its OIDC token (blocking: the issuer's keys may have to be fetched)."""
        if not is_jwt(secret):
            return check_token(self.snapshot, username, secret)
        return self.pipeline_for(secret, verifier)

    def pipeline_for(self, token: str, verifier: Verifier) -> Principal:
        """The pipeline step a Bitbucket Pipelines OIDC token stands for (TokenRejected says why
        not; blocking: the issuer's keys may have to be fetched)."""
        ws, claims = verify_pipeline_token(verifier, token, trusts_for(self.snapshot, unverified_issuer(token)))
        return pipeline_principal(self.snapshot, ws, claims)

    def hidden(self, ws: str | None, missing: str) -> RegistryError:
        """The answer for something this caller may not see, or that doesn't exist: the same one."""
        return visibility.hidden(self.who, ws, missing)

    # --- workspaces, projects, repositories ------------------------------------------------------

    def sees_workspace(self, ws: str) -> bool:
        return visibility.sees_workspace(self.snapshot, self.who, ws)

    def workspace(self, ws: str) -> Workspace:
        return visibility.workspace(self.snapshot, self.who, ws)

    def workspaces(self) -> list[Workspace]:
        snap = self.snapshot
        return [snap.get(layout.workspace(ws), Workspace) for ws in snap.names("workspaces") if self.sees_workspace(ws)]

    def project(self, ws: str, key: str) -> Project:
        return visibility.project(self.snapshot, self.who, ws, model.project_key(key))

    def repository(self, ws: str, repo: str) -> Repository:
        return visibility.repository(self.snapshot, self.who, ws, repo)

    def repositories(self, ws: str, *, at_least: Role = "read") -> list[Repository]:
        """The workspace's repositories on which the caller holds ``at_least``."""
        snap = self.snapshot
        return [r for r in snap.records(layout.repositories_dir(ws), Repository)
                if model.at_least(role_on(snap, self.who, ws, r.slug), at_least)]

    def role(self, ws: str, repo: str) -> Role | None:
        return role_on(self.snapshot, self.who, ws, repo)

    # --- packages and versions -------------------------------------------------------------------

    def package(self, ws: str, name: str) -> PackageRead:
        package, repository = visibility.package(self.snapshot, self.who, ws, visibility.project_name(name))
        return PackageRead(package, repository, self.role(ws, package.repository))

    def package_state(self, ws: str, name: str) -> str | None:
        """Changes exactly when anything under the package changes (a version, a file, a yank)."""
        return self.snapshot.tree_id(layout.package_dir(ws, name))

    def versions(self, ws: str, name: str) -> list[Version]:
        """Every version of a readable package, oldest release first (PEP 440 order)."""
        self.package(ws, name)
        return _versions(self.snapshot, ws, name)

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

    def blob_path(self, sha256: str):
        return self.reg.blobs.local_path(sha256)

    # --- lists -------------------------------------------------------------------------------------

    def packages(self, ws: str, *, project: str | None = None, repository: str | None = None, q: str | None = None,
                 sort: Sort = "name", page: int = 1, per_page: int = 50, with_latest: bool = False) -> Page:
        """The readable packages of a workspace, a project or a repository: filtered by part of the
        name, sorted, one page. The scope itself answers as missing to whoever may not see it."""
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise Invalid(f"page starts at 1 and per_page is 1 to {MAX_PER_PAGE}.")
        if sort not in ("name", "published"):
            raise Invalid(f"Unknown sort {sort!r}: use name or published.")
        self.workspace(ws)
        if project is not None:
            project = self.project(ws, project).key
        if repository is not None:
            self.repository(ws, repository)
        needle = visibility.project_name(q) if q else None
        snap, readable, repos = self.snapshot, {}, {}
        items = []
        for package in self.all_packages(ws):
            if needle and needle not in package.name:
                continue
            slug = package.repository
            if slug not in readable:
                repos[slug] = snap.get(layout.repository(ws, slug), Repository)
                readable[slug] = repos[slug] is not None and visibility.can_read(snap, self.who, ws, slug)
            r = repos[slug]
            if readable[slug] and (project is None or r.project == project) and (repository is None or r.slug == repository):
                items.append((package, r))
        if sort == "published":  # (needs every package's versions: the UI's choice, paged after)
            latest = {p.name: model.latest_release(_versions(snap, ws, p.name)) for p, _ in items}
            items.sort(key=lambda i: (latest[i[0].name].created.at if latest[i[0].name] else i[0].created.at), reverse=True)
        start = (page - 1) * per_page
        chosen = items[start:start + per_page]
        return Page([Listed(p, r, model.latest_release(_versions(snap, ws, p.name)) if with_latest else None) for p, r in chosen],
                    total=len(items), page=page, per_page=per_page)

    def all_packages(self, ws: str) -> list[Package]:
        """Every package of a workspace, by name, whoever may read them (callers filter)."""
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        return [] if tree_id is None else _LISTS.get(tree_id, lambda: list_packages(self.snapshot, ws))

    def warm(self) -> None:
        """Fill the package-list cache for every workspace (a server does it at start)."""
        for ws in self.snapshot.names("workspaces"):
            self.all_packages(ws)

    def index(self, ws: str) -> tuple[str | None, list[Package]] | None:
        """A workspace's Simple index: (what it depends on, the readable packages), or None if the
        caller may not see the workspace (the URL then names no workspace, for them)."""
        if not self.sees_workspace(ws):
            return None
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        packages = self.all_packages(ws)
        readable = {r: visibility.can_read(self.snapshot, self.who, ws, r) for r in {p.repository for p in packages}}
        return tree_id, [p for p in packages if readable[p.repository]]

    def everywhere(self) -> list[tuple[str, str | None, list[Package]]]:
        """Every workspace's readable packages: (workspace, state, packages)."""
        out = []
        for ws in self.snapshot.names("workspaces"):
            found = self.index(ws)
            if found is not None:
                out.append((ws, *found))
        return out

    def named_everywhere(self, name: str) -> list[Package]:
        """The readable packages called ``name``, in whichever workspace they are."""
        canonical, snap, found = visibility.project_name(name), self.snapshot, []
        for ws in snap.names("workspaces"):
            package = snap.get(layout.package(ws, canonical), Package)
            if package is not None and visibility.can_read(snap, self.who, ws, package.repository):
                found.append(package)
        return found

    # --- history -------------------------------------------------------------------------------

    def history(self, ws: str, name: str, version: str | None = None, *, limit: int = 100,
                before: int | None = None) -> list[Commit]:
        """The commits that touched a readable package (or one of its versions), newest first. A
        deleted version's history still answers, while its package exists."""
        read = self.package(ws, name)
        label = version
        if version is not None:
            record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
            label = record.version if record else version
        commits = self.reg.history.package(ws, read.package.name, label, limit=limit, before=before)
        if version is not None and not commits and label == version and record is None:
            raise NotFound(f"Package {read.package.name!r} has no version {version!r}, and never had.")
        return commits

    def version_label(self, ws: str, name: str, version: str) -> str:
        """How a version is spelt in the records (and the history): as published, if it still is."""
        record = self.snapshot.get(layout.version(ws, name, version_key(version)), Version)
        return record.version if record else version

    def created_by(self, ws: str, name: str) -> str | None:
        """The commit that created the package (its latest creation, if it was deleted and made again)."""
        commits = self.reg.history.package(ws, name, limit=1_000_000)
        return next((c.id for c in commits if action(c) is Action.CREATE_PACKAGE), None)

    def serial(self) -> int:
        return self.reg.history.serial()

    def log(self, ws: str | None = None, package: str | None = None, *, limit: int = 100) -> list[Commit]:
        """The audit trail as the operator reads it (deleted packages included): the commits that
        touched a package, from the history index, or the newest commits of a workspace or of the
        whole ledger, from git (``limit`` 0: all)."""
        if self.who.kind != "operator":
            raise NotFound("The audit log is the operator's.")
        if ws is not None:
            self.workspace(ws)
        if package:
            name = visibility.project_name(package)
            found = self.reg.history.package(ws, name, limit=limit or 1_000_000_000)
            if not found:
                raise NotFound(f"Package {name!r} does not exist in workspace {ws}, and never did.")
            return found
        found = []
        for commit in self.reg.ledger.walk():
            if ws is None or commit.trailer(T.WORKSPACE) == ws:
                found.append(commit)
                if limit and len(found) >= limit:
                    break
        return found

    # --- people --------------------------------------------------------------------------------

    def user(self, email: str) -> User | None:
        return self.snapshot.get(layout.user(model.email(email)), User)

    def tokens(self, email: str) -> list[ApiToken]:
        """A user's tokens: for the operator, and for the user themself."""
        email = model.email(email)
        if self.who.kind != "operator" and self.who.email != email:
            raise NotFound(f"There is no user {email}.")
        if self.snapshot.get(layout.user(email), User) is None:
            raise NotFound(f"There is no user {email}.")
        found = (t for t in self.snapshot.records("tokens", ApiToken) if t.user == email)
        return sorted(found, key=lambda t: t.created.at)

    def publish_policy(self, ws: str, name: str) -> model.PublishPolicy | None:
        return self.package(ws, name).package.publish_policy

    def trusts(self, ws: str | None = None) -> list[tuple[str, model.PipelinesTrust]]:
        snap = self.snapshot
        names = [ws] if ws else snap.names("workspaces")
        if ws:
            self.workspace(ws)
        return [(w, t) for w in names if (t := snap.get(layout.trust(w), model.PipelinesTrust)) is not None]


def _versions(snap: Snapshot, ws: str, name: str) -> list[Version]:
    return sorted(snap.records(layout.versions_dir(ws, name), Version), key=_release)


def _release(v: Version):
    try:
        return (0, PkgVersion(v.version))
    except InvalidVersion:  # (never stored: every version is checked at upload; but never a 500)
        return (1, v.version)


class _Lists:
    """Package lists by the git id of their directory: a fixed number, the least recently used dropped."""

    def __init__(self, size: int) -> None:
        self._lists: OrderedDict[str, list[Package]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, key: str, build) -> list[Package]:
        with self._lock:
            hit = self._lists.get(key)
            if hit is not None:
                self._lists.move_to_end(key)
                return hit
        found = build()
        with self._lock:
            self._lists[key] = found
            while len(self._lists) > self._size:
                self._lists.popitem(last=False)
        return found


_LISTS = _Lists(LISTS_CACHED)
__all__ = ["Listed", "Page", "PackageRead", "Reader", "project_name"]
