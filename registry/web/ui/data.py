"""What the web UI's pages show, as plain functions of (registry, principal, ...) returning small
dataclasses. Every question is asked of the read layer (registry/reads/), which decides who may
see what: what a caller may not read raises exactly what a missing thing raises. What is here is
the UI's own shaping (rows of a package list, sorted and paged; publishers; a commit's records as a
diff). Page controllers and templates use only this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from packaging.utils import canonicalize_name

from ... import model, retention, retention_runs
from ...audit import Action, action
from ...datadir import Registry
from ...errors import Denied, Invalid, RegistryError
from ...identity import Principal
from ...ledger import Commit
from ...model import DistFile, PipelineRun, Project, Provenance, Repository, Role, Workspace
from ...operations.retention import describe
from ...permissions import require_scope
from ...reads import Reader, Summary
from ...reads.members import Grant, ReadersSeen
from ...reads.usage import Usage, workspace_usage
from . import present

PER_PAGE = 50
SORTS = ("name", "published")


# --- who published ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Publisher:
    kind: model.PublisherKind  # "person", "api-token" or "pipeline" (model.publisher_kind)
    by: str  # an email, or "pipeline:<repository uuid>"
    at: datetime
    channel: str
    token_id: str | None = None
    token_label: str | None = None
    pipeline: PipelineRun | None = None
    pipeline_repository: str | None = None  # the slug of the pipeline's repository, when registered here


def _publisher(read: Reader, ws: str, p: Provenance) -> Publisher:
    label = read.token_label(p.token) if p.token else None
    repo = read.pipeline_repository(ws, p.pipeline.repository_uuid) if p.pipeline else None
    return Publisher(model.publisher_kind(p), p.by, p.at, p.channel, p.token, label, p.pipeline, repo)


# --- workspaces, projects, repositories -------------------------------------------------------
@dataclass(frozen=True)
class Place:  # a workspace, with the projects and repositories the viewer may read in it
    slug: str
    name: str
    admin: bool
    projects: list[tuple[Project, list[Repository]]]


def workspaces(reg: Registry, who: Principal) -> list[Workspace]:
    return Reader(reg, who).workspaces()


def place(reg: Registry, who: Principal, ws: str) -> Place:
    read = Reader(reg, who)
    record = read.workspace(ws)
    readable = read.repositories(ws)
    projects = []
    for key in sorted({r.project for r in readable}):
        projects.append((read.project(ws, key), [r for r in readable if r.project == key]))
    return Place(ws, record.name, read.administers(ws), projects)


def upstream(reg: Registry, who: Principal, ws: str) -> model.UpstreamPolicy | None:
    """The workspace's upstream indexes and rules, for its members (who read upstream projects)."""
    return Reader(reg, who).upstream_for(ws)


def creatable_repositories(reg: Registry, who: Principal, ws: str) -> list[Repository]:
    """The repositories ``who`` may link a new package to: those they administer (all of them, for a
    workspace admin)."""
    read = Reader(reg, who)
    read.workspace(ws)
    return read.repositories(ws, at_least="admin")


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


def _row(read: Reader, ws: str, s: Summary) -> PackageRow:
    newest = s.newest
    return PackageRow(s.package.name, s.package.display_name, s.package.repository, s.latest, s.versions,
                      newest.uploaded.at if newest else None, _publisher(read, ws, newest.uploaded) if newest else None)


def _latest(versions: list[model.Version]) -> str | None:
    found = model.latest_release(versions)
    return found.version if found else None


def packages(reg: Registry, who: Principal, ws: str, *, project: str | None = None, repository: str | None = None,
             q: str = "", sort: str = "name", page: int = 1, per_page: int = PER_PAGE) -> Listing:
    """The packages of a workspace, a project or a repository that ``who`` may read."""
    read = Reader(reg, who)
    summaries = read.summaries(ws, project=project, repository=repository)
    if sort not in SORTS:
        raise Invalid(f"Sort by {' or '.join(SORTS)}, not {sort!r}.")
    needle = canonicalize_name(q.strip()) if q.strip() else ""
    found = [s for s in summaries if needle in s.package.name]
    if sort == "published":
        found.sort(key=lambda s: (s.newest is None, -(s.newest.uploaded.at.timestamp() if s.newest else 0)))
    else:
        found.sort(key=lambda s: s.package.name)
    pages = max(1, -(-len(found) // per_page))
    page = min(max(page, 1), pages)
    shown = [_row(read, ws, s) for s in found[(page - 1) * per_page:page * per_page]]
    projects = {r.slug: r.project for r in read.repositories(ws)}
    return Listing(shown, len(found), page, pages, q.strip(), sort,
                   {r.repository: projects[r.repository] for r in shown})


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
    bytes: int = 0  # what all its versions' files take (counted from the versions the page loads anyway)
    files: int = 0


def package(reg: Registry, who: Principal, ws: str, name: str, page: int = 1, per_page: int = 100) -> PackageDetail:
    read = Reader(reg, who)
    found = read.package(ws, name)
    pkg, repo, role = found.package, found.repository, found.role
    all_versions = read.versions(ws, pkg.name)
    pages = max(1, -(-len(all_versions) // per_page))
    page = min(max(page, 1), pages)
    newest_first = all_versions[::-1][(page - 1) * per_page:page * per_page]
    rows = [VersionRow(v.version, v.yanked, v.yanked_reason, len(v.files), sum(f.size for f in v.files),
                       v.created.at, _publisher(read, ws, v.files[0].uploaded if v.files else v.created))
            for v in newest_first]
    return PackageDetail(ws, pkg.name, pkg.display_name, pkg.repository, repo.project, repo.public, role,
                         _publisher(read, ws, pkg.created), pkg.publish_policy,
                         _latest(all_versions), rows, len(all_versions),
                         page, pages, model.at_least(role, "write"), model.at_least(role, "admin"),
                         sum(f.size for v in all_versions for f in v.files), sum(len(v.files) for v in all_versions))


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


def require(reg: Registry, who: Principal, ws: str, name: str, need: Role, doing: str) -> None:
    """Refuse (as the operations would) unless ``who`` holds ``need`` on the package's repository."""
    Reader(reg, who).require(ws, name, need, doing)


def file(reg: Registry, who: Principal, ws: str, name: str, version_: str,
         filename: str) -> tuple[Path | None, DistFile]:
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
    _, record = read.version(ws, detail.name, version_)
    events = read.history(ws, detail.name, record.version, limit=10_000)
    by_file = {e.trailer("File"): e.id for e in events if action(e) is Action.PUBLISH}
    publishes = [e.id for e in events if action(e) is Action.PUBLISH]
    files = [FileRow(f.filename, f.packagetype, f.python_version, f.size, f.sha256, f.upload_time_served,
                     f.requires_python, _publisher(read, ws, f.uploaded), by_file.get(f.filename), f.warnings)
             for f in record.files]
    first = _publisher(read, ws, record.files[0].uploaded if record.files else record.created)
    return VersionDetail(detail, record.version, record.summary, record.yanked, record.yanked_reason,
                         _publisher(read, ws, record.yank) if record.yank else None, first,
                         publishes[-1] if publishes else None, files, _changed(read, ws, detail.name, record, first))


def _changed(read: Reader, ws: str, name: str, record: model.Version, now: Publisher) -> PublisherChange | None:
    """Whether this version came from another pipeline or branch than the release before it."""
    ordered = read.versions(ws, name)
    at = [v.version for v in ordered].index(record.version)
    if at == 0:
        return None
    before = ordered[at - 1]
    was = _publisher(read, ws, before.files[0].uploaded if before.files else before.created)
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
    newer: str | None  # the commit a page of newer rows follows (the first row's), if there are any
    older: str | None  # the commit a page of older rows follows (the last row's), if there are any
    catching_up: bool = False  # the index lacks the newest commits yet: the page says so


def _history_row(c: Commit) -> HistoryRow:
    return HistoryRow(c.id, c.time, c.summary, c.author_name, c.author_email, present.how(c.trailers),
                      c.trailer("Version"))


def _page(commits_of, per_page: int, before: str | None,
          after: str | None) -> tuple[list[Commit], str | None, str | None]:
    """A page of commits (newest first) from ``commits_of(limit, before, after)``, and its Newer and
    Older cursors: each page an index range, however far back it is."""
    found = commits_of(per_page + 1, before, after if before is None else None)
    if after is not None and before is None:
        more_newer, shown = len(found) > per_page, found[-per_page:]
        more_older = bool(shown) and bool(commits_of(1, shown[-1].id, None))
    else:
        more_older, shown = len(found) > per_page, found[:per_page]
        more_newer = bool(shown) and bool(commits_of(1, None, shown[0].id))
    return shown, shown[0].id if more_newer else None, shown[-1].id if more_older else None


def package_history(reg: Registry, who: Principal, ws: str, name: str, version_: str | None = None,
                    before: str | None = None, after: str | None = None, per_page: int = PER_PAGE) -> HistoryPage:
    """The commits that touched a package (or one of its versions), newest first."""
    read = Reader(reg, who)
    shown, newer, older = _page(lambda limit, b, a: read.history(ws, name, version_, limit=limit, before=b, after=a),
                                per_page, before, after)
    return HistoryPage([_history_row(e) for e in shown], newer, older)


def workspace_history(reg: Registry, who: Principal, ws: str, repository: str | None = None,
                      before: str | None = None, after: str | None = None, per_page: int = PER_PAGE) -> HistoryPage:
    """The audit trail of a workspace (or a repository) as ``who`` may see it, newest first."""
    read = Reader(reg, who)
    shown, newer, older = _page(lambda limit, b, a: [e.commit for e in read.trail(ws, repository, limit=limit,
                                                                                         before=b, after=a)],
                                per_page, before, after)
    return HistoryPage([_history_row(e) for e in shown], newer, older, read.trail_catching_up())


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
    found = Reader(reg, who).commit_changes(ws, commit_id)
    records = []
    for r in found.records:
        old, new = present.record_lines(r.old, r.path), present.record_lines(r.new, r.path)
        records.append(RecordDiff(r.path, present.what(r.path), *present.diff(old, new)))
    return CommitDetail(_history_row(found.filed.commit), found.parent, list(found.filed.commit.trailers), records)


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
    for t in read.tokens(who.email or ""):  # (a person always has one)
        state = "revoked" if t.revoked else "expired" if t.expires and t.expires <= now else "active"
        rows.append(TokenRow(t.id, t.label, t.scope, t.created.at, t.expires, state, t.id == who.token_id))
    return rows[::-1]


@dataclass(frozen=True)
class SessionRow:
    id: str
    via: str  # "token" or "link"
    scope: str
    token_id: str | None  # the API token it was signed in with
    token_label: str
    created: datetime
    expires: datetime
    current: bool  # the session looking at the page

    @property
    def short(self) -> str:
        return self.id[:12]


def your_name(reg: Registry, who: Principal) -> str:
    """The signed-in person's display name (their commits' author name)."""
    user = Reader(reg, who).user(who.email or "") if who.kind == "user" else None
    return user.name if user else ""


def default_workspace(reg: Registry, who: Principal) -> str | None:
    """The workspace the person's root index takes a name several workspaces hold from (None: none)."""
    return Reader(reg, who).default_workspace()


def sessions(reg: Registry, who: Principal) -> list[SessionRow]:
    """The person's web sessions that are on, this one first, then the newest."""
    read = Reader(reg, who)
    if who.kind != "user":
        raise read.hidden(None, "Only a signed-in person has sessions.")
    rows = [SessionRow(s.id, s.via, s.scope, t.id if t else None, t.label if t else "", s.created.at, s.expires,
                       s.id == who.session) for s, t in read.sessions(who.email or "")]
    return sorted(rows, key=lambda r: (not r.current, -r.created.timestamp()))


# --- administration: people, projects and repositories, pipelines ------------------------------
# (Each settings page is a function below and each of its forms one verb: a new verb, say renaming a
# repository, is one more form on the page whose data is already here.)
@dataclass(frozen=True)
class Grants:
    """Who holds a role on one thing: the workspace (its admins), a project or a repository."""

    on: str  # what the forms post: "workspace", "project:<KEY>" or "repo:<slug>" (see `grant_target`)
    kind: str  # "workspace", "project" or "repository"
    key: str  # the workspace's slug, the project's key or the repository's slug
    label: str  # how the page names it
    roles: tuple[Role, ...]  # what may be granted on it
    grants: list[Grant]  # (reads/members.py's: `user` holds `role`)


@dataclass(frozen=True)
class Member:
    """A person with a grant in the workspace, and every grant of theirs there (what removing them
    takes away)."""

    email: str
    grants: list[Grant]


WORKSPACE_ROLES: tuple[Role, ...] = ("admin",)
ROLES: tuple[Role, ...] = ("read", "write", "admin")


def _held(grants: list[Grant], where: str, target: str) -> list[Grant]:
    return sorted((g for g in grants if (g.where, g.target) == (where, target)), key=lambda g: g.user)


def _workspace_group(ws: str, grants: list[Grant]) -> Grants:
    return Grants("workspace", "workspace", ws, f"Workspace {ws} (its admins)", WORKSPACE_ROLES,
                  _held(grants, "workspace", ""))


def _project_group(key: str, grants: list[Grant]) -> Grants:
    return Grants(f"project:{key}", "project", key, f"Project {key} (every repository in it)", ROLES,
                  _held(grants, "project", key))


def _repository_group(slug: str, grants: list[Grant]) -> Grants:
    return Grants(f"repo:{slug}", "repository", slug, f"Repository {slug}", ROLES, _held(grants, "repository", slug))


def grant_target(on: str) -> dict[str, str]:
    """What a form's ``on`` names, as `operations.grant` takes it: {} for the workspace, else
    {"project": KEY} or {"repository": slug}; Invalid for anything else."""
    kind, _, key = on.partition(":")
    if on == "workspace":
        return {}
    if kind in ("project", "repo") and key:
        return {"project" if kind == "project" else "repository": key}
    raise Invalid(f"Grant on the workspace, a project or a repository (choose one in the list), not {on!r}.")


def require_workspace_admin(reg: Registry, who: Principal, ws: str, doing: str) -> Workspace:
    """The workspace, if ``who`` administers it; one they don't see is `hidden` (as missing), one
    they see but don't administer a 403 that says whom to ask."""
    _may_change(who, doing)
    read = Reader(reg, who)
    record = read.workspace(ws)
    if not read.administers(ws):
        raise _denied(who, doing, f"admin permission on workspace {ws}; ask one of its admins")
    return record


def require_repository_admin(reg: Registry, who: Principal, ws: str, repo: str, doing: str) -> Repository:
    """The repository, if ``who`` administers it (a workspace admin does); one they may not read is
    `hidden`, one they read but don't administer a 403."""
    _may_change(who, doing)
    read = Reader(reg, who)
    record = read.repository(ws, repo)
    if not model.at_least(read.role(ws, repo), "admin"):
        raise _denied(who, doing, f"admin permission on repository {ws}/{repo}; ask a repository or workspace admin")
    return record


def administers(reg: Registry, who: Principal, ws: str) -> bool:
    """Whether ``who`` administers a workspace (where its settings are theirs to go back to)."""
    return Reader(reg, who).administers(ws)


def administers_repository(reg: Registry, who: Principal, ws: str, repo: str) -> bool:
    """Whether ``who`` administers a repository they may read (what its page offers them)."""
    return model.at_least(Reader(reg, who).role(ws, repo), "admin")


def _may_change(who: Principal, doing: str) -> None:
    """A read-scoped session administers nothing (`Reader.administers` says so): refused first, in the
    verbs' words (the scope, and to sign in with a write-scoped token), whatever it asks about, so
    the answer says nothing of what exists."""
    if who.kind == "user" and who.scope != "write":
        require_scope(who, doing)


def _denied(who: Principal, doing: str, needs: str) -> Denied:
    return Denied(f"{who.actor} may not {doing}: it needs {needs}.")


@dataclass(frozen=True)
class ProjectSettings:
    project: Project
    repositories: list[Repository]


@dataclass(frozen=True)
class WorkspaceSettings:
    workspace: Workspace
    projects: list[ProjectSettings]
    people: list[Grants]  # the workspace's admins, then each project's, then each repository's
    members: list[Member]  # everyone with a grant there, by email
    trusts: list[model.PipelinesTrust]  # the issuers its pipelines are trusted from, by issuer

    def member(self, email: str) -> Member | None:
        return next((m for m in self.members if m.email == email), None)


def workspace_settings(reg: Registry, who: Principal, ws: str) -> WorkspaceSettings:
    """All a workspace admin manages of it; refused (`require_workspace_admin`) to anyone else. Its
    grants are read once: the tables by what they are on, and the members, come from them."""
    workspace = require_workspace_admin(reg, who, ws, f"administer workspace {ws}")
    read = Reader(reg, who)
    projects = [ProjectSettings(p, repositories) for p, repositories in read.projects(ws)]
    grants = read.grants(ws)
    people = [_workspace_group(ws, grants)]
    for p in projects:
        people.append(_project_group(p.project.key, grants))
        people.extend(_repository_group(r.slug, grants) for r in p.repositories)
    by_user: dict[str, list[Grant]] = {}
    for g in grants:
        by_user.setdefault(g.user, []).append(g)
    members = [Member(email, held) for email, held in sorted(by_user.items())]
    return WorkspaceSettings(workspace, projects, people, members, [t for _, t in read.trusts(ws)])


@dataclass(frozen=True)
class RepositorySettings:
    workspace: str
    repository: Repository
    people: Grants
    workspace_admin: bool  # (they also see the workspace's settings)
    pipeline_readers: ReadersSeen  # the repositories whose pipelines may read it (`*`: every pipeline)
    pipeline_sources: list[str]  # the workspace's other repositories they read, not yet among those


def whose_pipelines(ws: str, source: str) -> str:
    """A pipeline reader, for a person: `*` is every pipeline of the workspace; `{UUID}`, a repository
    they can't read (`ReadersSeen.hidden`)."""
    if source.startswith("{"):
        return f"the pipelines of a repository of {ws} you can't read ({source})"
    return f"every pipeline of workspace {ws}" if source == model.ALL_PIPELINES else f"the pipelines of {ws}/{source}"


def pipeline_readers(reg: Registry, who: Principal, ws: str, repo: str) -> ReadersSeen:
    """The repositories whose pipelines may read ``ws/repo``, as ``who`` may know them (its page)."""
    return Reader(reg, who).pipeline_readers(ws, repo)


def repository_settings(reg: Registry, who: Principal, ws: str, repo: str) -> RepositorySettings:
    """What a repository's admins manage of it (its grants, its name, its options); refused to anyone
    else."""
    record = require_repository_admin(reg, who, ws, repo, f"manage repository {ws}/{repo}")
    read = Reader(reg, who)
    readers = read.pipeline_readers(ws, record.slug)
    sources = [r.slug for r in read.repositories(ws) if r.slug != record.slug and r.slug not in readers.named]
    return RepositorySettings(ws, record, _repository_group(record.slug, read.grants(ws, repository=record.slug)),
                              read.administers(ws), readers, sorted(sources))


LARGEST = 10  # packages a storage page lists by size


@dataclass(frozen=True)
class StorageSettings:
    """A workspace's storage: its usage against its quota, where it goes, its retention policies and
    what applying them would delete now (the dry run: the plan `registry retention apply` carries out)."""

    usage: Usage
    percent: int | None  # of the quota used (None: no quota)
    largest: list[tuple[str, int]]  # the biggest packages, bytes
    policies: list[tuple[model.RetentionPolicy, str]]  # each, and in words
    plan: retention.Plan
    repositories: list[str]  # the workspace's, for the policy form
    runs: retention_runs.Schedule  # the server's own runs (REGISTRY_RETENTION_APPLY), the last one's and the next
    last_run: retention_runs.Tally | None  # what the last run did in this workspace (None: it never ran)


def storage_settings(reg: Registry, who: Principal, ws: str) -> StorageSettings:
    """For the workspace's admins (refused to anyone else). It counts every version of the workspace
    twice (the usage by package, the plan): a settings page's cost, never an index's."""
    require_workspace_admin(reg, who, ws, f"see the storage of {ws}")
    read = Reader(reg, who)
    usage = workspace_usage(read.snapshot, ws)
    percent = None if usage.quota_bytes is None else (
        100 if usage.quota_bytes == 0 else min(100, usage.bytes * 100 // usage.quota_bytes))
    runs = retention_runs.schedule(reg.settings)
    largest = sorted(((n, b) for n, b in usage.packages.items() if b), key=lambda kv: (-kv[1], kv[0]))[:LARGEST]
    return StorageSettings(usage, percent, largest,
                           [(p, describe(p)) for p in retention.policies(read.snapshot, ws)],
                           retention.plan(read.snapshot, ws, model.now()),
                           sorted(r.slug for r in read.repositories(ws)), runs,
                           None if runs.last_run is None else runs.last_run.workspaces.get(ws, retention_runs.Tally()))
