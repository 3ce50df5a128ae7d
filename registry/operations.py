"""The registry's verbs. Each checks permission against the snapshot it commits on, and is one commit.

Callers (the CLI, the web controllers) parse input, call a verb with a `Principal` and a channel,
and render the result. Nothing here knows about HTTP or argv.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta

import jwt
import msgspec
from packaging.utils import canonicalize_version
from packaging.version import Version as PkgVersion

from . import model
from .auth import Principal, new_token, repository_context, require, role_on_workspace
from .blobs import FileBlobStore, Staged
from .config import Settings
from .dists import DistInfo
from .errors import Conflict, Forbidden, Invalid, NotFound
from .ledger import Change, Commit, Ledger, Snapshot, layout
from .model import (
    ApiToken,
    Channel,
    DeletedFile,
    DeletedFiles,
    DistFile,
    Package,
    Project,
    Repository,
    Role,
    User,
    Version,
    Workspace,
)

log = logging.getLogger("registry.operations")


class Registry:
    """An opened data directory: the ledger, the blob store and the settings they were opened with."""

    def __init__(self, settings: Settings, ledger: Ledger, blobs: FileBlobStore) -> None:
        self.settings = settings
        self.ledger = ledger
        self.blobs = blobs

    @classmethod
    def open(cls, settings: Settings, *, create: bool = False) -> Registry:
        kwargs = dict(committer=(settings.committer_name, settings.committer_email), cache_dir=settings.cache_path)
        if create and not Ledger.exists_at(settings.ledger_path):
            ledger = Ledger.create(settings.ledger_path, **kwargs)
        else:
            ledger = Ledger.open(settings.ledger_path, **kwargs)
        return cls(settings, ledger, FileBlobStore(settings.blobs_path))

    def snapshot(self) -> Snapshot:
        return self.ledger.snapshot()

    def snapshot_at(self, commit_id: str) -> Snapshot:
        return self.ledger.snapshot_at(commit_id)


def version_key(version: str) -> str:
    """Releases are identified like on the public index: 1.0 and 1.0.0 are the same release."""
    return canonicalize_version(version)


def _change(who: Principal, channel: Channel, summary: str, writes, *facts: tuple[str, str], body: str = "") -> Change:
    return Change(summary=summary, provenance=who.provenance(channel), author=who.author,
                  writes=writes, facts=tuple(facts), body=body)


def _require_operator(who: Principal, doing: str) -> None:
    if who.kind != "operator":
        raise Forbidden(f"Only the registry operator can {doing}.")


def _require_workspace_admin(snap: Snapshot, who: Principal, ws: str, doing: str) -> Workspace:
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist; create it with `registry workspace create {ws}`.")
    if role_on_workspace(snap, who, ws) != "admin":
        raise Forbidden(f"{who.actor} may not {doing}: it needs admin permission on workspace {ws}.")
    return workspace


def _user(snap: Snapshot, email: str) -> User:
    user = snap.get(layout.user(email), User)
    if user is None:
        raise NotFound(f"User {email} does not exist; create it with `registry user create {email}`.")
    return user


# --- workspaces, projects, repositories ----------------------------------------------------------


def create_workspace(reg: Registry, who: Principal, channel: Channel, slug: str,
                     name: str | None = None, uuid: str | None = None) -> Workspace:
    slug, uuid = model.workspace_slug(slug), model.brace_uuid(uuid)
    _require_operator(who, "create workspaces")

    def build(snap: Snapshot) -> Change:
        if snap.exists(layout.workspace(slug)):
            raise Conflict(f"Workspace {slug!r} already exists.")
        for other in snap.names("workspaces"):
            existing = snap.get(layout.workspace(other), Workspace)
            if existing and existing.uuid == uuid:
                raise Conflict(f"UUID {uuid} already belongs to workspace {other!r}.")
        record = Workspace(slug=slug, uuid=uuid, name=name or slug, created=who.provenance(channel))
        return _change(who, channel, f"create workspace {slug}", {layout.workspace(slug): record},
                       ("Workspace", slug), ("Workspace-Uuid", uuid))

    reg.ledger.transact(build)
    return reg.snapshot().get(layout.workspace(slug), Workspace)


def create_project(reg: Registry, who: Principal, channel: Channel, ws: str, key: str,
                   name: str | None = None) -> Project:
    key = model.project_key(key)

    def build(snap: Snapshot) -> Change:
        _require_workspace_admin(snap, who, ws, "create projects")
        if snap.exists(layout.project(ws, key)):
            raise Conflict(f"Project {key} already exists in workspace {ws}.")
        record = Project(key=key, name=name or key, created=who.provenance(channel))
        return _change(who, channel, f"create project {ws}/{key}", {layout.project(ws, key): record},
                       ("Workspace", ws), ("Project", key))

    reg.ledger.transact(build)
    return reg.snapshot().get(layout.project(ws, key), Project)


def create_repository(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str, project: str,
                      public: bool = False, uuid: str | None = None) -> Repository:
    slug, project, uuid = model.repository_slug(slug), model.project_key(project), model.brace_uuid(uuid)

    def build(snap: Snapshot) -> Change:
        _require_workspace_admin(snap, who, ws, "create repositories")
        if not snap.exists(layout.project(ws, project)):
            raise NotFound(f"Project {project} does not exist in workspace {ws}; create it with "
                           f"`registry project create {ws} {project}`.")
        if snap.exists(layout.repository(ws, slug)):
            raise Conflict(f"Repository {ws}/{slug} already exists.")
        for other in snap.records(layout.repositories_dir(ws), Repository):
            if other.uuid == uuid:
                raise Conflict(f"UUID {uuid} already belongs to repository {ws}/{other.slug}.")
        record = Repository(slug=slug, uuid=uuid, project=project, public=public, created=who.provenance(channel))
        visibility = "public" if public else "private"
        return _change(who, channel, f"create repository {ws}/{slug} in project {project} ({visibility})",
                       {layout.repository(ws, slug): record},
                       ("Workspace", ws), ("Repository", slug), ("Repository-Uuid", uuid))

    reg.ledger.transact(build)
    return reg.snapshot().get(layout.repository(ws, slug), Repository)


# --- users and tokens ----------------------------------------------------------------------------


def create_user(reg: Registry, who: Principal, channel: Channel, email: str, name: str | None = None) -> User:
    email = model.email(email)
    _require_operator(who, "create users")

    def build(snap: Snapshot) -> Change:
        if snap.exists(layout.user(email)):
            raise Conflict(f"User {email} already exists.")
        record = User(email=email, name=name or email, created=who.provenance(channel))
        return _change(who, channel, f"create user {email}", {layout.user(email): record}, ("User", email))

    reg.ledger.transact(build)
    return reg.snapshot().get(layout.user(email), User)


def create_token(reg: Registry, who: Principal, channel: Channel, email: str, scope: model.Scope = "write",
                 expires_days: int | None = None, label: str = "") -> tuple[str, ApiToken]:
    """A new API token for ``email``: returns the secret (shown once) and its stored record."""
    email = model.email(email)
    if scope not in ("read", "write"):
        raise Invalid(f"Invalid token scope {scope!r}: use read or write.")
    if expires_days is not None and expires_days <= 0:
        raise Invalid("--expires-days must be a positive number of days.")
    if who.kind != "operator" and (who.email != email or who.scope != "write"):
        raise Forbidden("You can only create tokens for yourself, with a write-scoped token.")
    secret, digest = new_token()
    provenance = who.provenance(channel)
    record = ApiToken(
        id=digest[:16], user=email, sha256=digest, scope=scope, label=label, created=provenance,
        expires=provenance.at + timedelta(days=expires_days) if expires_days else None,
    )

    def build(snap: Snapshot) -> Change:
        _user(snap, email)
        return _change(who, channel, f"create {scope} token {record.id} for {email}",
                       {layout.token(digest): record}, ("User", email), ("Token", record.id), ("Scope", scope))

    reg.ledger.transact(build)
    return secret, record


def find_token(snap: Snapshot, token_id: str) -> tuple[str, ApiToken] | None:
    token_id = token_id.strip().lower()
    if len(token_id) < 8 or not all(c in "0123456789abcdef" for c in token_id):
        raise Invalid(f"Invalid token id {token_id!r}: use the id printed when the token was created.")
    shard = layout.token_shard(token_id)
    for name in snap.names(shard):
        if name.startswith(token_id):
            path = f"{shard}/{name}"
            return path, snap.get(path, ApiToken)
    return None


def list_tokens(snap: Snapshot, email: str) -> list[ApiToken]:
    email = model.email(email)
    return sorted((t for t in snap.records("tokens", ApiToken) if t.user == email), key=lambda t: t.created.at)


def revoke_token(reg: Registry, who: Principal, channel: Channel, email: str, token_id: str) -> ApiToken:
    email = model.email(email)
    if who.kind != "operator" and who.email != email:
        raise Forbidden("You can only revoke your own tokens.")

    def build(snap: Snapshot) -> Change:
        found = find_token(snap, token_id)
        if found is None or found[1].user != email:
            raise NotFound(f"User {email} has no token {token_id}.")
        path, record = found
        if record.revoked is not None:
            raise Conflict(f"Token {record.id} is already revoked.")
        revoked = _replace(record, revoked=who.provenance(channel))
        return _change(who, channel, f"revoke token {record.id} of {email}", {path: revoked},
                       ("User", email), ("Token", record.id))

    reg.ledger.transact(build)
    return find_token(reg.snapshot(), token_id)[1]


# --- grants --------------------------------------------------------------------------------------


def grant(reg: Registry, who: Principal, channel: Channel, ws: str, email: str, role: Role | None,
          *, repository: str | None = None, project: str | None = None) -> None:
    """Give (or with ``role=None`` take away) ``email``'s role on a repository, a project, or the
    workspace (admin only). Repository admins manage their repository; workspace admins the rest."""
    email = model.email(email)
    if role is not None:
        role = model.role(role)
    if repository and project:
        raise Invalid("Grant on a repository or on a project, not both.")

    def build(snap: Snapshot) -> Change:
        if role is not None:
            _user(snap, email)
        verb = f"grant {role}" if role else "revoke grants"
        prep = "to" if role else "from"
        if repository:
            require(snap, who, ws, repository, "admin", f"manage permissions of {ws}/{repository}")
            _, _, record = repository_context(snap, ws, repository)
            grants = _set_grant(record.grants, email, role, f"{ws}/{repository}")
            new = _replace(record, grants=grants)
            return _change(who, channel, f"{verb} on {ws}/{repository} {prep} {email}",
                           {layout.repository(ws, repository): new},
                           ("Workspace", ws), ("Repository", repository), ("User", email), ("Role", role or "none"))
        if project:
            key = model.project_key(project)
            _require_workspace_admin(snap, who, ws, f"manage permissions of project {ws}/{key}")
            record = snap.get(layout.project(ws, key), Project)
            if record is None:
                raise NotFound(f"Project {key} does not exist in workspace {ws}.")
            new = _replace(record, grants=_set_grant(record.grants, email, role, f"project {ws}/{key}"))
            return _change(who, channel, f"{verb} on project {ws}/{key} {prep} {email}",
                           {layout.project(ws, key): new},
                           ("Workspace", ws), ("Project", key), ("User", email), ("Role", role or "none"))
        if role not in (None, "admin"):
            raise Invalid("On a workspace only the admin role can be granted; grant read or write on a "
                          "project (--project KEY) or a repository (WS/REPO).")
        workspace = _require_workspace_admin(snap, who, ws, f"manage admins of workspace {ws}")
        admins = set(workspace.admins)
        if role and email in admins:
            raise Conflict(f"{email} is already an admin of workspace {ws}.")
        if not role and email not in admins:
            raise NotFound(f"{email} is not an admin of workspace {ws}.")
        admins = admins | {email} if role else admins - {email}
        new = _replace(workspace, admins=sorted(admins))
        return _change(who, channel, f"{verb} on workspace {ws} {prep} {email}", {layout.workspace(ws): new},
                       ("Workspace", ws), ("User", email), ("Role", role or "none"))

    reg.ledger.transact(build)


def _set_grant(grants: dict[str, Role], email: str, role: Role | None, where: str) -> dict[str, Role]:
    if role is None:
        if email not in grants:
            raise NotFound(f"{email} has no grant on {where}.")
        return {k: v for k, v in grants.items() if k != email}
    if grants.get(email) == role:
        raise Conflict(f"{email} already has {role} on {where}.")
    return {**grants, email: role}


def _replace(record, **changes):
    return msgspec.structs.replace(record, **changes)


# --- packages ------------------------------------------------------------------------------------


def get_package(snap: Snapshot, ws: str, name: str) -> Package | None:
    return snap.get(layout.package(ws, name), Package)


def list_packages(snap: Snapshot, ws: str) -> list[Package]:
    """Every package of a workspace, by name."""
    root = layout.packages_dir(ws)
    found = []
    for shard in snap.names(root):
        for name in snap.names(f"{root}/{shard}"):
            package = snap.get(f"{root}/{shard}/{name}/package.json", Package)
            if package is not None:
                found.append(package)
    return sorted(found, key=lambda p: p.name)


def create_package(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, repository: str) -> Package:
    canonical, display = model.package_name(name)
    repository = model.repository_slug(repository)

    def build(snap: Snapshot) -> Change:
        if who.kind == "pipeline":
            raise Forbidden("A pipeline may publish and read its repository's packages, but not create packages.")
        require(snap, who, ws, repository, "admin", f"create packages linked to {ws}/{repository}")
        existing = get_package(snap, ws, canonical)
        if existing is not None:
            raise Conflict(f"Package {existing.display_name!r} already exists in workspace {ws}, "
                           f"linked to repository {ws}/{existing.repository}.")
        record = Package(name=canonical, display_name=display, workspace=ws, repository=repository,
                         created=who.provenance(channel))
        return _change(who, channel, f"create package {canonical} in {ws}, linked to {ws}/{repository}",
                       {layout.package(ws, canonical): record},
                       ("Workspace", ws), ("Package", canonical), ("Repository", repository))

    reg.ledger.transact(build)
    return get_package(reg.snapshot(), ws, canonical)


def _package_for(snap: Snapshot, who: Principal, ws: str, name: str, need: Role, doing: str,
                 pipelines_may: bool = False) -> Package:
    """The package, if ``who`` holds ``need`` on its repository. Pipelines publish and read; they
    never delete, yank or administer, whatever their repository role."""
    if who.kind == "pipeline" and not pipelines_may:
        raise Forbidden(f"A pipeline may publish and read its repository's packages, but not {doing}; "
                        "a person with the right permission must do it.")
    if not snap.exists(layout.workspace(ws)):
        raise NotFound(f"Workspace {ws!r} does not exist.")
    package = get_package(snap, ws, name)
    if package is None:
        raise NotFound(
            f"Package {name!r} does not exist in workspace {ws}. A repository admin must create it and link "
            f"it to a repository first: `registry package create {ws} {name} --repo REPO`."
        )
    require(snap, who, ws, package.repository, need, doing)
    return package


def versions(snap: Snapshot, ws: str, name: str) -> list[Version]:
    """Every version of a package, oldest release first (PEP 440 order)."""
    found = list(snap.records(layout.versions_dir(ws, name), Version))
    return sorted(found, key=lambda v: PkgVersion(v.version))


def get_version(snap: Snapshot, ws: str, name: str, version: str) -> Version | None:
    return snap.get(layout.version(ws, name, version_key(version)), Version)


@dataclass
class Published:
    package: Package
    version: Version
    file: DistFile
    commit: Commit | None  # None: the identical file was already there, nothing changed
    existing: bool = field(default=False)


def publish_file(reg: Registry, who: Principal, channel: Channel, ws: str, dist: DistInfo, staged: Staged) -> Published:
    """Record an uploaded, inspected distribution as one commit; its bytes become durable first."""
    digests = staged.finish()
    canonical = dist.canonical_name
    metadata_sha256 = hashlib.sha256(dist.metadata).hexdigest()
    provenance = who.provenance(channel)
    new_file = DistFile(
        filename=dist.filename, size=digests.size, sha256=digests.sha256, blake2b_256=digests.blake2b_256,
        md5=digests.md5, packagetype=dist.packagetype, python_version=dist.python_version,
        requires_python=dist.requires_python, metadata_version=dist.metadata_version,
        metadata_sha256=metadata_sha256, uploaded=provenance,
    )
    outcome: dict[str, object] = {}

    def build(snap: Snapshot) -> Change | None:
        package = _package_for(snap, who, ws, canonical, "write", f"publish to {canonical!r}", pipelines_may=True)
        if who.kind == "pipeline":
            check_publish_policy(package, who.pipeline)
        key = version_key(dist.version)
        path = layout.version(ws, canonical, key)
        current = snap.get(path, Version)
        outcome["package"] = package
        for existing in current.files if current else ():
            if existing.filename == dist.filename:
                if (existing.sha256, existing.blake2b_256) == (digests.sha256, digests.blake2b_256):
                    outcome.update(version=current, file=existing)
                    return None  # the byte-identical file again: success, and nothing changes
                raise Invalid(
                    f"File already exists ({dist.filename!r}, with blake2_256 hash {existing.blake2b_256!r}). "
                    "A published file can't be replaced: bump the version and upload again."
                )
            if dist.packagetype == "sdist" and existing.packagetype == "sdist":
                raise Invalid(f"Only one sdist may be uploaded per release: {existing.filename!r} is already there.")
        tombstones = snap.get(layout.deleted_files(ws, canonical), DeletedFiles)
        if tombstones and dist.filename in tombstones.files:
            raise Invalid(
                f"This filename was previously used by a file that has since been deleted: {dist.filename!r}. "
                "Filenames are never reused; use a different version."
            )
        reg.blobs.put_bytes(dist.metadata)
        reg.blobs.adopt(staged)  # durable before the commit that references it
        if current is None:
            current = Version(package=canonical, version=dist.version, summary=dist.summary, created=provenance)
        files = sorted([*current.files, new_file], key=lambda f: f.filename)
        version = _replace(current, files=files, summary=current.summary or dist.summary)
        outcome.update(version=version, file=new_file)
        return _change(
            who, channel, f"publish {canonical} {version.version}: {dist.filename}", {path: version},
            ("Workspace", ws), ("Package", canonical), ("Version", version.version),
            ("File", dist.filename), ("Sha256", digests.sha256), ("Size", str(digests.size)),
        )

    commit = reg.ledger.transact(build)
    return Published(package=outcome["package"], version=outcome["version"], file=outcome["file"],
                     commit=commit, existing=commit is None)


def _tombstones(snap: Snapshot, ws: str, name: str, gone: list[Version], provenance: model.Provenance) -> DeletedFiles:
    record = snap.get(layout.deleted_files(ws, name), DeletedFiles) or DeletedFiles(package=name)
    files = dict(record.files)
    for version in gone:
        for f in version.files:
            files[f.filename] = DeletedFile(version=version.version, sha256=f.sha256,
                                            metadata_sha256=f.metadata_sha256, deleted=provenance)
    return _replace(record, files=files)


def delete_version(reg: Registry, who: Principal, channel: Channel, ws: str, name: str,
                   version: str) -> tuple[Version, Commit]:
    canonical, _ = model.package_name(name)
    gone: list[Version] = []

    def build(snap: Snapshot) -> Change:
        _package_for(snap, who, ws, canonical, "write", f"delete versions of {canonical!r}")
        record = get_version(snap, ws, canonical, version)
        if record is None:
            raise NotFound(f"Package {canonical!r} has no version {version!r}.")
        gone[:] = [record]
        provenance = who.provenance(channel)
        return _change(
            who, channel, f"delete {canonical} {record.version} ({len(record.files)} files)",
            {layout.version(ws, canonical, version_key(record.version)): None,
             layout.deleted_files(ws, canonical): _tombstones(snap, ws, canonical, [record], provenance)},
            ("Workspace", ws), ("Package", canonical), ("Version", record.version),
            *(("Sha256", f.sha256) for f in record.files),
        )

    commit = reg.ledger.transact(build)
    return gone[0], commit


def delete_package(reg: Registry, who: Principal, channel: Channel, ws: str, name: str) -> tuple[Package, Commit]:
    canonical, _ = model.package_name(name)
    gone: list[Package] = []

    def build(snap: Snapshot) -> Change:
        package = _package_for(snap, who, ws, canonical, "admin", f"delete package {canonical!r}")
        all_versions = versions(snap, ws, canonical)
        gone[:] = [package]
        provenance = who.provenance(channel)
        return _change(
            who, channel, f"delete package {canonical} ({len(all_versions)} versions)",
            {layout.package_dir(ws, canonical): None,
             layout.deleted_files(ws, canonical): _tombstones(snap, ws, canonical, all_versions, provenance)},
            ("Workspace", ws), ("Package", canonical), ("Repository", package.repository),
            *(("Version", v.version) for v in all_versions),
            *(("Sha256", f.sha256) for v in all_versions for f in v.files),
        )

    commit = reg.ledger.transact(build)
    return gone[0], commit


def yank(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, version: str,
         reason: str = "", *, undo: bool = False) -> Version:
    canonical, _ = model.package_name(name)
    reason = " ".join(reason.split())[:512]

    def build(snap: Snapshot) -> Change:
        _package_for(snap, who, ws, canonical, "write", f"yank versions of {canonical!r}")
        record = get_version(snap, ws, canonical, version)
        if record is None:
            raise NotFound(f"Package {canonical!r} has no version {version!r}.")
        if record.yanked != undo:
            raise Conflict(f"{canonical} {record.version} is {'not ' if undo else 'already '}yanked.")
        new = _replace(record, yanked=not undo, yanked_reason="" if undo else reason, yank=who.provenance(channel))
        summary = f"un-yank {canonical} {record.version}" if undo else f"yank {canonical} {record.version}"
        if reason and not undo:
            summary += f": {reason}"
        return _change(who, channel, summary, {layout.version(ws, canonical, version_key(record.version)): new},
                       ("Workspace", ws), ("Package", canonical), ("Version", record.version))

    commit = reg.ledger.transact(build)
    return get_version(reg.snapshot_at(commit.id), ws, canonical, version)


# --- pipelines -----------------------------------------------------------------------------------

MINTED_TOKEN_LIFETIME = timedelta(minutes=15)


def check_publish_policy(package: Package, run: model.PipelineRun | None) -> None:
    """Refuse a pipeline publish the package's policy doesn't allow, saying what it allows."""
    policy = package.publish_policy
    if policy is None or run is None:
        return
    if policy.branches and not (run.branch and any(fnmatch.fnmatchcase(run.branch, g) for g in policy.branches)):
        raise Forbidden(f"Package {package.name!r} may be published by pipelines on branches "
                        f"{', '.join(policy.branches)} only; this run is on {run.branch or 'no branch (a tag?)'}.")
    if policy.environments and run.environment_uuid not in policy.environments:
        where = f"deployment environment {run.environment_uuid}" if run.environment_uuid else "no deployment environment"
        raise Forbidden(f"Package {package.name!r} may be published by pipelines deploying to "
                        f"{', '.join(policy.environments)} only; this step has {where}.")


def set_publish_policy(reg: Registry, who: Principal, channel: Channel, ws: str, name: str,
                       branches: list[str], environments: list[str]) -> Package:
    canonical, _ = model.package_name(name)
    environments = [model.brace_uuid(e) for e in environments]
    for glob in branches:
        if not glob.strip() or any(c in glob for c in "\n\r"):
            raise Invalid(f"Invalid branch pattern {glob!r}.")

    def build(snap: Snapshot) -> Change:
        package = _package_for(snap, who, ws, canonical, "admin", f"set the publish policy of {canonical!r}")
        policy = None
        if branches or environments:
            policy = model.PublishPolicy(branches=sorted(set(branches)), environments=sorted(set(environments)),
                                         updated=who.provenance(channel))
        rules = "; ".join(filter(None, [
            f"branches {', '.join(policy.branches)}" if policy and policy.branches else "",
            f"environments {', '.join(policy.environments)}" if policy and policy.environments else "",
        ])) or "any pipeline of the repository"
        return _change(who, channel, f"set publish policy of {canonical} in {ws}: {rules}",
                       {layout.package(ws, canonical): _replace(package, publish_policy=policy)},
                       ("Workspace", ws), ("Package", canonical))

    reg.ledger.transact(build)
    return get_package(reg.snapshot(), ws, canonical)


def set_trust(reg: Registry, who: Principal, channel: Channel, ws: str, issuer: str,
              audiences: list[str] | None = None, jwks: dict | None = None) -> model.PipelinesTrust:
    issuer = _issuer_url(issuer)
    audiences = sorted({a.strip() for a in audiences or [] if a.strip()})
    if any(len(a) > 150 for a in audiences):
        raise Invalid("An audience is at most 150 characters (Bitbucket's limit).")
    if jwks is not None:
        _check_jwks(jwks)

    def build(snap: Snapshot) -> Change:
        workspace = _require_workspace_admin(snap, who, ws, f"configure pipeline trust for {ws}")
        record = model.PipelinesTrust(issuer=issuer, audiences=audiences, jwks=jwks, updated=who.provenance(channel))
        accepted = ", ".join(audiences) or f"the default audience of workspace {workspace.uuid}"
        keys = "keys given inline" if jwks else "keys from the issuer's discovery document"
        return _change(who, channel, f"trust pipelines of {ws} from {issuer} ({keys}; audiences: {accepted})",
                       {layout.trust(ws): record}, ("Workspace", ws), ("Issuer", issuer))

    reg.ledger.transact(build)
    return reg.snapshot().get(layout.trust(ws), model.PipelinesTrust)


def remove_trust(reg: Registry, who: Principal, channel: Channel, ws: str) -> None:
    def build(snap: Snapshot) -> Change:
        _require_workspace_admin(snap, who, ws, f"configure pipeline trust for {ws}")
        record = snap.get(layout.trust(ws), model.PipelinesTrust)
        if record is None:
            raise NotFound(f"Workspace {ws} trusts no pipeline issuer.")
        return _change(who, channel, f"stop trusting pipelines of {ws} from {record.issuer}",
                       {layout.trust(ws): None}, ("Workspace", ws), ("Issuer", record.issuer))

    reg.ledger.transact(build)


def _issuer_url(value: str) -> str:
    parsed = urllib.parse.urlsplit(value.strip())
    loopback = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise Invalid(f"Invalid issuer {value!r}: use an https:// URL (http:// only for a local issuer on loopback).")
    if parsed.query or parsed.fragment or not parsed.hostname:
        raise Invalid(f"Invalid issuer {value!r}: the issuer is a plain URL, e.g. "
                      "https://api.bitbucket.org/2.0/workspaces/WORKSPACE/pipelines-config/identity/oidc")
    return value.strip().rstrip("/")


def _check_jwks(jwks: dict) -> None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise Invalid('Invalid JWKS: expected a JSON object {"keys": [...]} with at least one key.')
    for key in keys:
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            raise Invalid(f"Invalid JWKS: key {key.get('kid', '?') if isinstance(key, dict) else key!r}: {exc}") from None
        if "d" in key or "p" in key:
            raise Invalid("Invalid JWKS: it contains a private key; give only the public keys.")


def mint_pipeline_token(reg: Registry, who: Principal, reported: model.ReportedRunContext | None,
                        lifetime: timedelta = MINTED_TOKEN_LIFETIME) -> tuple[str, ApiToken]:
    """A short-lived registry token for a verified pipeline step, bound to its repository.

    The exchange is a commit like any other token's creation: the ledger shows which run minted
    which token, and every publish made with it carries the run (with what it reported)."""
    if who.kind != "pipeline" or who.pipeline is None or who.repository is None:
        raise Forbidden("Only a verified Bitbucket Pipelines token can be exchanged for a registry token.")
    secret, digest = new_token()
    provenance = who.provenance("api")
    run = _replace(who.pipeline, reported=reported, url=run_url(who.workspace, who.repository, reported))
    record = ApiToken(
        id=digest[:16], user=who.actor, sha256=digest, scope="write", label="minted for a pipeline step",
        created=_replace(provenance, pipeline=run), expires=provenance.at + lifetime,
        workspace=who.workspace, repository=who.repository, pipeline=run,
    )

    def build(snap: Snapshot) -> Change:
        repository_context(snap, who.workspace, who.repository)
        minted_by = dataclasses.replace(who, pipeline=run)
        return _change(minted_by, "api", f"mint token {record.id} for pipeline {run.pipeline_uuid} of "
                       f"{who.workspace}/{who.repository} (expires {record.expires:%H:%M:%S} UTC)",
                       {layout.token(digest): record},
                       ("Workspace", who.workspace), ("Repository", who.repository), ("Token", record.id))

    reg.ledger.transact(build)
    return secret, record


def run_url(ws: str | None, repository: str | None, reported: model.ReportedRunContext | None) -> str | None:
    """The run's page on Bitbucket, when the step reported its build number."""
    if reported is None or not reported.build_number or not reported.build_number.isdigit():
        return None
    full_name = reported.repo_full_name or f"{ws}/{repository}"
    return f"https://bitbucket.org/{full_name}/pipelines/results/{reported.build_number}"
