"""Every read the web UI makes, as plain functions of (registry, principal, ...) returning small
dataclasses. Who may see what is decided by the read layer (registry/reads.py), never here: what
a caller may not read raises exactly what a missing thing raises. What is here is the UI's own
shaping (summaries of a workspace's packages, cached by shard; a commit's records as a diff; the
audit trail by workspace). Page controllers and templates use only this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from packaging.utils import canonicalize_name

from ... import layout, model, operations, permissions
from ...audit import Action, action
from ...errors import Invalid, RegistryError
from ...identity import Principal
from ...ledger import Snapshot
from ...model import DistFile, Package, PipelineRun, Project, Provenance, Repository, Workspace
from ...operations import Registry
from ...permissions import role_on, role_on_workspace
from ...reads import Reader
from . import present
from .trail import Entry, trail_for

PER_PAGE = 50
SORTS = ("name", "published")


# --- who published ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Publisher:
    kind: str  # "person", "api-token" or "pipeline"
    by: str  # an email, or "pipeline:<repository uuid>"
    at: datetime
    channel: str
    token_id: str | None = None
    token_label: str | None = None
    pipeline: PipelineRun | None = None
    pipeline_repository: str | None = None  # the slug of the pipeline's repository, when registered here


def _publisher(snap: Snapshot, ws: str, p: Provenance) -> Publisher:
    label = repo = None
    if p.token:
        found = operations.find_token(snap, p.token)
        label = found[1].label if found else None
    if p.pipeline:
        repo = next((r.slug for r in _repositories(snap, ws) if r.uuid == p.pipeline.repository_uuid), None)
    kind = "pipeline" if p.pipeline else "api-token" if p.token else "person"
    return Publisher(kind, p.by, p.at, p.channel, p.token, label or None, p.pipeline, repo)


# --- workspaces, projects, repositories -------------------------------------------------------
@dataclass(frozen=True)
class Place:  # a workspace, with the projects and repositories the viewer may read in it
    slug: str
    name: str
    admin: bool
    projects: list[tuple[Project, list[Repository]]]


_repos: dict[str | None, list[Repository]] = {}  # by the git id of a repositories directory


def _repositories(snap: Snapshot, ws: str) -> list[Repository]:
    tree_id = snap.tree_id(layout.repositories_dir(ws))
    found = _repos.get(tree_id)
    if found is None:
        if len(_repos) > 1024:
            _repos.clear()
        found = _repos[tree_id] = sorted(snap.records(layout.repositories_dir(ws), Repository), key=lambda r: r.slug)
    return found


def workspaces(reg: Registry, who: Principal) -> list[Workspace]:
    return Reader(reg, who).workspaces()


def place(reg: Registry, who: Principal, ws: str) -> Place:
    read = Reader(reg, who)
    snap, record = read.snapshot, read.workspace(ws)
    readable = sorted(read.repositories(ws), key=lambda r: r.slug)
    projects = []
    for key in sorted({r.project for r in readable}):
        projects.append((read.project(ws, key), [r for r in readable if r.project == key]))
    return Place(ws, record.name, role_on_workspace(snap, who, ws) == "admin", projects)


def creatable_repositories(reg: Registry, who: Principal, ws: str) -> list[Repository]:
    """The repositories ``who`` may link a new package to: those they administer (all of them, for a
    workspace admin)."""
    read = Reader(reg, who)
    read.workspace(ws)
    return sorted(read.repositories(ws, at_least="admin"), key=lambda r: r.slug)


# --- package lists ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PackageRow:
    name: str
    display_name: str
    repository: str
    latest: str | None
    versions: int
    last_published: datetime | None
    publisher: Publisher | None


@dataclass(frozen=True)
class Listing:
    rows: list[PackageRow]
    total: int
    page: int
    pages: int
    q: str
    sort: str
    projects: dict[str, str]  # repository -> project key, for the rows shown


_shards: dict[str, tuple[PackageRow, ...]] = {}  # by the git id of a shard of a packages directory


def _row(snap: Snapshot, ws: str, package: Package) -> PackageRow:
    all_versions = operations.versions(snap, ws, package.name)
    latest = _latest(all_versions)
    files = [f for v in all_versions for f in v.files]
    newest = max(files, key=lambda f: f.uploaded.at, default=None)
    return PackageRow(package.name, package.display_name, package.repository, latest, len(all_versions),
                      newest.uploaded.at if newest else None, _publisher(snap, ws, newest.uploaded) if newest else None)


def _latest(versions: list[model.Version]) -> str | None:
    found = model.latest_release(versions)
    return found.version if found else None


def _all_rows(snap: Snapshot, ws: str) -> list[PackageRow]:
    """Every package of the workspace, summarised; a summary is remade only when its shard changed."""
    root, rows = layout.packages_dir(ws), []
    for shard in snap.names(root):
        tree_id = snap.tree_id(f"{root}/{shard}")
        found = _shards.get(tree_id)
        if found is None:
            if len(_shards) > 20_000:
                _shards.clear()
            packages = (snap.get(f"{root}/{shard}/{name}/package.json", Package) for name in snap.names(f"{root}/{shard}"))
            found = _shards[tree_id] = tuple(_row(snap, ws, p) for p in packages if p is not None)
        rows += found
    return rows


def warm(reg: Registry) -> None:
    """Build what first page views would (package summaries, the audit trail) off the request path."""
    snap = reg.snapshot()
    for ws in snap.names("workspaces"):
        _all_rows(snap, ws)
    trail_for(reg).sync()


def packages(reg: Registry, who: Principal, ws: str, *, project: str | None = None, repository: str | None = None,
             q: str = "", sort: str = "name", page: int = 1, per_page: int = PER_PAGE) -> Listing:
    """The packages of a workspace, a project or a repository that ``who`` may read."""
    read = Reader(reg, who)
    snap = read.snapshot
    read.workspace(ws)
    if project is not None:
        read.project(ws, project)
    if repository is not None:
        read.repository(ws, repository)
    if sort not in SORTS:
        raise Invalid(f"Sort by {' or '.join(SORTS)}, not {sort!r}.")
    repos = {r.slug: r for r in _repositories(snap, ws)}
    readable = {r.slug for r in read.repositories(ws)}
    needle = canonicalize_name(q.strip()) if q.strip() else ""
    rows = [r for r in _all_rows(snap, ws) if r.repository in readable and needle in r.name
            and (repository is None or r.repository == repository)
            and (project is None or repos[r.repository].project == project)]
    if sort == "published":
        rows.sort(key=lambda r: (r.last_published is None, -(r.last_published.timestamp() if r.last_published else 0)))
    else:
        rows.sort(key=lambda r: r.name)
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * per_page:page * per_page]
    return Listing(shown, len(rows), page, pages, q.strip(), sort, {r.repository: repos[r.repository].project for r in shown})


# --- a package, a version ---------------------------------------------------------------------
@dataclass(frozen=True)
class VersionRow:
    version: str
    yanked: bool
    yanked_reason: str
    files: int
    size: int
    published: datetime
    publisher: Publisher


@dataclass(frozen=True)
class PackageDetail:
    workspace: str
    name: str
    display_name: str
    repository: str
    project: str
    public: bool
    role: str | None
    created: Publisher
    policy: model.PublishPolicy | None
    latest: str | None
    versions: list[VersionRow]  # this page, newest first
    total: int
    page: int
    pages: int
    can_write: bool = False  # (from the role: what the page offers)
    can_admin: bool = False


def package(reg: Registry, who: Principal, ws: str, name: str, page: int = 1, per_page: int = 100) -> PackageDetail:
    read = Reader(reg, who)
    snap, found = read.snapshot, read.package(ws, name)
    pkg, repo, role = found.package, found.repository, found.role
    all_versions = read.versions(ws, pkg.name)
    pages = max(1, -(-len(all_versions) // per_page))
    page = min(max(page, 1), pages)
    newest_first = all_versions[::-1][(page - 1) * per_page:page * per_page]
    rows = [VersionRow(v.version, v.yanked, v.yanked_reason, len(v.files), sum(f.size for f in v.files),
                       v.created.at, _publisher(snap, ws, v.files[0].uploaded if v.files else v.created))
            for v in newest_first]
    return PackageDetail(ws, pkg.name, pkg.display_name, pkg.repository, repo.project, repo.public, role,
                         _publisher(snap, ws, pkg.created), pkg.publish_policy,
                         _latest(all_versions), rows, len(all_versions),
                         page, pages, model.at_least(role, "write"), model.at_least(role, "admin"))


@dataclass(frozen=True)
class FileRow:
    filename: str
    packagetype: str
    python_version: str
    size: int
    sha256: str
    upload_time: datetime
    requires_python: str | None
    publisher: Publisher
    commit: str | None
    warnings: list[str]


def require(reg: Registry, who: Principal, ws: str, name: str, need: str, doing: str) -> None:
    """Refuse (as the operations would) unless ``who`` holds ``need`` on the package's repository."""
    read = Reader(reg, who)
    pkg = read.package(ws, name).package
    permissions.require(read.snapshot, who, ws, pkg.repository, need, f"{doing} of {pkg.name!r}")


def file(reg: Registry, who: Principal, ws: str, name: str, version_: str, filename: str) -> tuple[Path | None, DistFile]:
    """Where a file's bytes are, for a download (None: in the store's bucket)."""
    read = Reader(reg, who)
    _, _, found = read.file(ws, name, version_, filename)
    path = read.blob_path(found.sha256)
    if path is None and not reg.blobs.remote:
        raise RegistryError(f"The content of {filename!r} is missing from the blob store; the operator should run "
                            "`registry verify`.", status=500)
    return path, found


@dataclass(frozen=True)
class PublisherChange:
    previous: str  # the previous version
    was: str
    now: str


@dataclass(frozen=True)
class VersionDetail:
    package: PackageDetail  # (without its versions)
    version: str
    summary: str
    yanked: bool
    yanked_reason: str
    yank: Publisher | None
    created: Publisher
    created_commit: str | None
    files: list[FileRow]
    publisher_changed: PublisherChange | None


def version(reg: Registry, who: Principal, ws: str, name: str, version_: str) -> VersionDetail:
    detail = package(reg, who, ws, name, per_page=1)
    read = Reader(reg, who)
    snap = read.snapshot
    _, record = read.version(ws, detail.name, version_)
    events = read.history(ws, detail.name, record.version, limit=10_000)
    by_file = {e.trailer("File"): e.id for e in events if action(e) is Action.PUBLISH}
    publishes = [e.id for e in events if action(e) is Action.PUBLISH]
    files = [FileRow(f.filename, f.packagetype, f.python_version, f.size, f.sha256, f.upload_time_served,
                     f.requires_python, _publisher(snap, ws, f.uploaded), by_file.get(f.filename), f.warnings)
             for f in record.files]
    first = _publisher(snap, ws, record.files[0].uploaded if record.files else record.created)
    return VersionDetail(detail, record.version, record.summary, record.yanked, record.yanked_reason,
                         _publisher(snap, ws, record.yank) if record.yank else None, first,
                         publishes[-1] if publishes else None, files, _changed(read, ws, detail.name, record, first))


def _changed(read: Reader, ws: str, name: str, record: model.Version, now: Publisher) -> PublisherChange | None:
    """Whether this version came from another pipeline or branch than the release before it."""
    ordered = read.versions(ws, name)
    at = [v.version for v in ordered].index(record.version)
    if at == 0:
        return None
    before = ordered[at - 1]
    was = _publisher(read.snapshot, ws, before.files[0].uploaded if before.files else before.created)
    if "pipeline" not in (was.kind, now.kind) or present.identity(was) == present.identity(now):
        return None
    return PublisherChange(before.version, present.describe(was), present.describe(now))


# --- history ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryRow:
    commit: str
    at: datetime
    summary: str
    author_name: str
    author_email: str
    how: str
    version: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    page: int
    has_next: bool


def _history_row(e) -> HistoryRow:
    return HistoryRow(getattr(e, "commit", None) or e.id, e.time, e.summary, e.author_name, e.author_email, present.how(e.trailers),
                      e.trailer("Version"))


def package_history(reg: Registry, who: Principal, ws: str, name: str, version_: str | None = None,
                    page: int = 1, per_page: int = PER_PAGE) -> HistoryPage:
    """The commits that touched a package (or one of its versions), newest first."""
    page = max(page, 1)
    events = Reader(reg, who).history(ws, name, version_, limit=page * per_page + 1)
    rows = [_history_row(e) for e in events[(page - 1) * per_page:page * per_page]]
    return HistoryPage(rows, page, len(events) > page * per_page)


def _audience(snap: Snapshot, who: Principal, ws: str) -> tuple[set[str] | None, set[str]]:
    """(repositories whose package commits, repositories whose own commits) ``who`` may see; None:
    all of the workspace's commits (a workspace admin)."""
    if role_on_workspace(snap, who, ws) == "admin":
        return None, set()
    roles = {r.slug: role_on(snap, who, ws, r.slug) for r in _repositories(snap, ws)}
    return ({s for s, r in roles.items() if model.at_least(r, "read")},
            {s for s, r in roles.items() if model.at_least(r, "admin")})


def visible(snap: Snapshot, who: Principal, entry: Entry) -> bool:
    readable, administered = _audience(snap, who, entry.workspace)
    if readable is None:
        return True
    if entry.kind == "package":
        return entry.repository in readable
    return entry.kind == "repository" and entry.repository in administered


def workspace_history(reg: Registry, who: Principal, ws: str, repository: str | None = None,
                      page: int = 1, per_page: int = PER_PAGE) -> HistoryPage:
    read = Reader(reg, who)
    read.workspace(ws)
    if repository is not None:
        read.repository(ws, repository)
    readable, administered = _audience(read.snapshot, who, ws)
    page = max(page, 1)
    entries = trail_for(reg).page(ws, repository=repository, readable=readable, administered=administered,
                                  limit=per_page + 1, offset=(page - 1) * per_page)
    return HistoryPage([_history_row(e) for e in entries[:per_page]], page, len(entries) > per_page)


# --- one commit -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordDiff:
    path: str
    what: str  # e.g. "version acme-utils 1.0"
    change: str  # "added", "removed" or "changed"
    lines: list[tuple[str, str]]  # (" ", "+" or "-", a line of the record's JSON)


@dataclass(frozen=True)
class CommitDetail:
    row: HistoryRow
    parent: str | None
    trailers: list[tuple[str, str]]
    records: list[RecordDiff]


def commit(reg: Registry, who: Principal, ws: str, commit_id: str) -> CommitDetail:
    """A commit of the workspace and the records it changed, if ``who`` may see what it concerns."""
    read = Reader(reg, who)
    read.workspace(ws)
    entry = trail_for(reg).find(commit_id.strip().lower()) if len(commit_id) == 40 else None
    if entry is None or entry.workspace != ws or not visible(read.snapshot, who, entry):
        raise read.hidden(ws, f"Workspace {ws} has no commit {commit_id!r}.")
    repo = reg.ledger.repo()
    current = repo[entry.commit]
    parent = current.parents[0] if current.parents else None
    records = []
    for patch in (parent.tree.diff_to_tree(current.tree) if parent else current.tree.diff_to_tree(swap=True)):
        delta = patch.delta
        path = delta.new_file.path or delta.old_file.path
        old = present.record_lines(_blob(repo, parent.tree, delta.old_file.path) if parent else None, path)
        new = present.record_lines(_blob(repo, current.tree, delta.new_file.path), path)
        records.append(RecordDiff(path, present.what(path), *present.diff(old, new)))
    return CommitDetail(_history_row(entry), str(parent.id) if parent else None, list(entry.trailers), records)


def _blob(repo, tree, path: str) -> bytes | None:
    return repo[tree[path].id].data if path in tree else None


# --- your tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenRow:
    id: str
    label: str
    scope: str
    created: datetime
    expires: datetime | None
    state: str  # "active", "revoked" or "expired"
    current: bool  # the token this session rests on


def tokens(reg: Registry, who: Principal) -> list[TokenRow]:
    read = Reader(reg, who)
    if who.kind != "user":
        raise read.hidden(None, "Only a signed-in person has tokens.")
    now = model.now()
    rows = []
    for t in read.tokens(who.email):
        state = "revoked" if t.revoked else "expired" if t.expires and t.expires <= now else "active"
        rows.append(TokenRow(t.id, t.label, t.scope, t.created.at, t.expires, state, t.id == who.token_id))
    return rows[::-1]
