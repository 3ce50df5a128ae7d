"""Packages and their versions: create, publish, delete, yank."""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from .. import dists, layout, model, names, quota, visibility
from ..audit import Action, T
from ..blobs import Staged
from ..datadir import Registry
from ..dists import DistInfo
from ..errors import (
    Conflict,
    FileExists,
    FilenameSpent,
    Forbidden,
    Invalid,
    NotFound,
)
from ..identity import Principal
from ..layout import version_key
from ..ledger import Change, Commit, NoChange, Snapshot
from ..model import Channel, DeletedFile, DeletedFiles, DistFile, Package, Role, Version
from ..permissions import require
from ..reads.records import get_package, get_version, versions
from ..reads.usage import stored as stored_usage
from ._common import made, make_change, replace
from .first_publish import new_package

log = logging.getLogger("registry.operations")


def create_package(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, repository: str) -> Package:
    canonical, display = names.package_name(name)
    repository = names.repository_slug(repository)
    names.unreserved_package(canonical)

    def build(snap: Snapshot) -> Change:
        if who.kind == "pipeline":
            raise Forbidden("A pipeline may publish and read its repository's packages, but not create packages.")
        visibility.repository(snap, who, ws, repository)
        require(snap, who, ws, repository, "admin", f"create packages linked to {ws}/{repository}")
        existing = get_package(snap, ws, canonical)
        if existing is not None:  # (names are unique in a workspace: taken is taken, whoever may see it)
            where = (f", linked to repository {ws}/{existing.repository}"
                     if visibility.can_read(snap, who, ws, existing.repository) else "")
            raise Conflict(f"Package {existing.display_name!r} already exists in workspace {ws}{where}.")
        record = Package(name=canonical, display_name=display, workspace=ws, repository=repository,
                         created=who.provenance(channel))
        return make_change(who, channel, Action.CREATE_PACKAGE,
                           f"create package {canonical} in {ws}, linked to {ws}/{repository}",
                           {layout.package(ws, canonical): record},
                           (T.WORKSPACE, ws), (T.PACKAGE, canonical), (T.REPOSITORY, repository),
                           provenance=record.created, result=record)

    return reg.transact(build).result


def package_for(snap: Snapshot, who: Principal, ws: str, name: str, need: Role, doing: str) -> Package:
    """The package, if ``who`` holds ``need`` on its repository. Pipelines publish and read; they
    never delete, yank or administer, whatever their repository role. Whoever may not read the
    package is told it doesn't exist, in the same words as when it doesn't."""
    if who.kind == "pipeline":
        raise Forbidden(f"A pipeline may publish and read its repository's packages, but not {doing}; "
                        "a person with the right permission must do it.")
    package = get_package(snap, ws, name) if snap.exists(layout.workspace(ws)) else None
    if package is None or not visibility.can_read(snap, who, ws, package.repository):
        raise visibility.hidden(who, ws, f"Package {name!r} does not exist in workspace {ws}.")
    require(snap, who, ws, package.repository, need, doing)
    return package


def publish_target(snap: Snapshot, who: Principal, ws: str, name: str, display: str | None = None,
                   provenance: model.Provenance | None = None) -> Package:
    """The package ``who`` may publish ``name``'s files to, or the refusal saying why not: write on
    its repository, and a pipeline's publish policy. The one rule: the upload endpoint asks it before
    it receives a file, and publish_file again on the snapshot it commits on. A package not in
    ``snap`` yet is the one the publish creates, where its repository allows that (first_publish);
    where none does, a 403 names the package and what creates it (the same whether it is missing or
    one the caller may not read)."""
    if not snap.exists(layout.workspace(ws)):
        raise visibility.hidden(who, ws, f"Workspace {ws!r} does not exist.")
    package = get_package(snap, ws, name)
    if package is None or not visibility.can_read(snap, who, ws, package.repository):
        if who.kind == "anonymous":
            raise visibility.hidden(who, ws, "")
        return new_package(snap, who, ws, name, display or name, taken=package is not None, provenance=provenance)
    require(snap, who, ws, package.repository, "write", f"publish to {name!r}")
    if who.kind == "pipeline":
        check_publish_policy(package, who.pipeline)
    return package


@dataclass
class Published:
    package: Package
    version: Version
    file: DistFile
    commit: Commit | None  # None: the identical file was already there, nothing changed
    existing: bool = field(default=False)
    created: bool = False  # the package was created by this publish


def publish_file(reg: Registry, who: Principal, channel: Channel, ws: str, dist: DistInfo, staged: Staged, *,
                 wait: float = 30.0, upload_time: datetime | None = None, source: str | None = None) -> Published:
    """Record an uploaded, inspected distribution as one commit; its bytes become durable first.
    ``wait``: how long to wait for another writer (`ledger.Locked` after that; 0: not at all).
    An imported file also has the ``upload_time`` its source gave, if any, and the ``source`` it
    came from (a URL without credentials, or a path), recorded in the commit's trailers.

    With files, the blob is adopted in the commit's build, under the ledger's lock, and synced with
    the commit. A bucket is a round trip away and may stall, so nothing waits on it under the lock:
    the checks run first on the current snapshot (a refusal stores nothing), then the object is
    stored and held (`placed`), then the commit runs the checks again and lands."""
    names.package_name(dist.name)  # (bounded here too: whatever inspected the file, the ledger gets no more)
    names.version(dist.version)
    digests = staged.finish()
    reg.disk.check(0 if staged.spilled else digests.size, upload=True)  # (a spilled file is on the disk already)
    canonical = dist.canonical_name
    metadata_sha256 = hashlib.sha256(dist.metadata).hexdigest()
    provenance = who.provenance(channel)
    new_file = DistFile(
        filename=dist.filename, size=digests.size, sha256=digests.sha256, blake2b_256=digests.blake2b_256,
        md5=digests.md5, packagetype=dist.packagetype, python_version=dist.python_version,
        requires_python=dist.requires_python, metadata_version=dist.metadata_version,
        metadata_sha256=metadata_sha256, uploaded=provenance, upload_time=upload_time,
        warnings=list(dist.warnings),
    )

    def checked(snap: Snapshot) -> tuple[Package, Version | None] | NoChange:
        """Every refusal, by what ``snap`` holds; NoChange if this very file is published already."""
        package = publish_target(snap, who, ws, canonical, dist.name, provenance)
        current = snap.get(layout.version(ws, canonical, version_key(dist.version)), Version)
        if current is not None:  # (its files: this one again, another spelling of it, a second sdist)
            for existing in current.files:
                if existing.filename == dist.filename:
                    if (existing.sha256, existing.blake2b_256) == (digests.sha256, digests.blake2b_256):
                        # the byte-identical file again: success, and nothing changes
                        return NoChange(Published(package=package, version=current, file=existing, commit=None,
                                                  existing=True))
                    raise FileExists(
                        f"File already exists ({dist.filename!r}, with blake2_256 hash {existing.blake2b_256!r}). "
                        "A published file can't be replaced: bump the version and upload again."
                    )
                if dists.same_wheel(existing.filename, dist.filename):
                    raise Invalid(
                        f"File already exists under another spelling ({existing.filename!r}): installers would see "
                        "two copies of one wheel. A published file can't be replaced: bump the version and upload "
                        "again."
                    )
                if dist.packagetype == "sdist" and existing.packagetype == "sdist":
                    raise Invalid(f"Only one sdist may be uploaded per release: {existing.filename!r} is already "
                                  "there.")
        tombstones = snap.get(layout.deleted_files(ws, canonical), DeletedFiles)
        if tombstones and dist.filename in tombstones.files:
            raise FilenameSpent(
                f"This filename was previously used by a file that has since been deleted: {dist.filename!r}. "
                "Filenames are never reused; use a different version."
            )
        workspace = snap.get(layout.workspace(ws), model.Workspace)
        if workspace is not None and workspace.quota_bytes is not None:
            quota.check(workspace, stored_usage(snap, ws), digests.size, f"uploading {dist.filename}")
        return package, current

    # (a bucket: refused here, before anything is stored in it; the identical file: nothing to store)
    store_first = reg.blobs.remote and not isinstance(checked(reg.snapshot()), NoChange)

    def build(snap: Snapshot) -> Change | NoChange:
        found = checked(snap)
        if isinstance(found, NoChange):
            return found
        package, current = found
        if reg.blobs.remote and not store_first:  # (never a round trip under the lock)
            raise Conflict(f"The ledger changed under this upload of {dist.filename} while it was checked; "
                           "nothing was changed: upload it again.")
        pending: list = []  # synced with the commit's own objects, before the branch moves
        reg.blobs.adopt(staged, defer=pending)  # (its core metadata is extracted when first asked for)
        if current is None:
            current = Version(package=canonical, version=dist.version, summary=dist.summary, created=provenance)
        files = sorted([*current.files, new_file], key=lambda f: f.filename)
        version = replace(current, files=files, summary=current.summary or dist.summary)
        writes: dict[str, model.Record | None] = {layout.version(ws, canonical, version_key(dist.version)): version,
                                                  layout.usage(ws): quota.changed(stored_usage(snap, ws), [new_file])}
        creating: tuple[tuple[str, str], ...] = ()
        if not snap.exists(layout.package(ws, canonical)):  # (its first publish creates it, in this commit)
            writes[layout.package(ws, canonical)] = package
            creating = ((T.ACTION, Action.CREATE_PACKAGE), (T.REPOSITORY, package.repository))
        change = make_change(
            who, channel, Action.PUBLISH, f"publish {canonical} {version.version}: {dist.filename}",
            writes, *creating,
            (T.WORKSPACE, ws), (T.PACKAGE, canonical), (T.VERSION, version.version),
            (T.FILE, dist.filename), (T.SHA256, digests.sha256), (T.SIZE, str(digests.size)),
            *(((T.UPLOAD_TIME, upload_time.isoformat()),) if upload_time else ()),
            *(((T.IMPORT_SOURCE, source),) if source else ()),
            provenance=provenance, result=Published(package=package, version=version, file=new_file, commit=None,
                                                    created=bool(creating)),
            body=f"Created package {package.display_name}, linked to {ws}/{package.repository}, on its first "
                 "publish." if creating else "",
        )
        return dataclasses.replace(change, needs=tuple(pending))

    with reg.blobs.placed(staged, wait) if store_first else contextlib.nullcontext():
        done = reg.transact(build, timeout=wait)
    if done.commit is None and reg.blobs.repair(staged):  # (outside the lock: it may read a big file whole)
        log.warning("publish %s: the stored copy of %s was missing or damaged; replaced it with the bytes "
                    "just sent", ws, dist.filename)
        reg.missing.found_again([digests.sha256])
    return done.result if done.commit is None else dataclasses.replace(done.result, commit=done.commit)


def check_publish_policy(package: Package, run: model.PipelineRun | None) -> None:
    """Refuse a pipeline publish the package's policy doesn't allow, saying what it allows."""
    policy = package.publish_policy
    if policy is None or run is None:
        return
    if policy.branches and not (run.branch and any(fnmatch.fnmatchcase(run.branch, g) for g in policy.branches)):
        raise Forbidden(f"Package {package.name!r} may be published by pipelines on branches "
                        f"{', '.join(policy.branches)} only; this run is on {run.branch or 'no branch (a tag?)'}.")
    if policy.environments and run.environment_uuid not in policy.environments:
        where = (f"deployment environment {run.environment_uuid}" if run.environment_uuid
                 else "no deployment environment")
        raise Forbidden(f"Package {package.name!r} may be published by pipelines deploying to "
                        f"{', '.join(policy.environments)} only; this step has {where}.")


def tombstones(snap: Snapshot, ws: str, name: str, gone: list[Version], provenance: model.Provenance) -> DeletedFiles:
    """The package's deleted-files record with the files of ``gone`` added: their names are spent.
    It names the package's repository, the one a publish may create the name again from."""
    record = snap.get(layout.deleted_files(ws, name), DeletedFiles) or DeletedFiles(package=name)
    package = get_package(snap, ws, name)
    files = dict(record.files)
    for version in gone:
        for f in version.files:
            files[f.filename] = DeletedFile(version=version.version, sha256=f.sha256,
                                            metadata_sha256=f.metadata_sha256, deleted=provenance)
    return replace(record, files=files, repository=package.repository if package else record.repository)


def delete_version(reg: Registry, who: Principal, channel: Channel, ws: str, name: str,
                   version: str) -> tuple[Version, Commit]:
    canonical, _ = names.package_name(name)
    version_key(version)

    def build(snap: Snapshot) -> Change:
        package_for(snap, who, ws, canonical, "write", f"delete versions of {canonical!r}")
        record = get_version(snap, ws, canonical, version)
        if record is None:
            raise NotFound(f"Package {canonical!r} has no version {version!r}.")
        return deletion(snap, who, channel, ws, canonical, record)

    done = reg.transact(build)
    return done.result, made(done)


def deletion(snap: Snapshot, who: Principal, channel: Channel, ws: str, canonical: str, record: Version,
             *facts: tuple[str, str], body: str = "") -> Change:
    """The commit that deletes a version: its record goes, its filenames become tombstones (never
    accepted again; the package record stays, so the name stays the workspace's), and the
    workspace's usage drops by its files."""
    provenance = who.provenance(channel)
    return make_change(
        who, channel, Action.DELETE_VERSION, f"delete {canonical} {record.version} ({len(record.files)} files)",
        {layout.version(ws, canonical, version_key(record.version)): None,
         layout.deleted_files(ws, canonical): tombstones(snap, ws, canonical, [record], provenance),
         layout.usage(ws): quota.changed(stored_usage(snap, ws), removed=record.files)},
        (T.WORKSPACE, ws), (T.PACKAGE, canonical), (T.VERSION, record.version),
        *((T.SHA256, f.sha256) for f in record.files), *facts, provenance=provenance, result=record, body=body,
    )


def delete_package(reg: Registry, who: Principal, channel: Channel, ws: str, name: str) -> tuple[Package, Commit]:
    canonical, _ = names.package_name(name)

    def build(snap: Snapshot) -> Change:
        package = package_for(snap, who, ws, canonical, "admin", f"delete package {canonical!r}")
        all_versions = versions(snap, ws, canonical)
        provenance = who.provenance(channel)
        return make_change(
            who, channel, Action.DELETE_PACKAGE, f"delete package {canonical} ({len(all_versions)} versions)",
            {layout.package_dir(ws, canonical): None,
             layout.deleted_files(ws, canonical): tombstones(snap, ws, canonical, all_versions, provenance),
             layout.usage(ws): quota.changed(stored_usage(snap, ws), removed=[f for v in all_versions
                                                                             for f in v.files])},
            (T.WORKSPACE, ws), (T.PACKAGE, canonical), (T.REPOSITORY, package.repository),
            *((T.VERSION, v.version) for v in all_versions),
            *((T.SHA256, f.sha256) for v in all_versions for f in v.files), provenance=provenance, result=package,
        )

    done = reg.transact(build)
    return done.result, made(done)


def yank(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, version: str,
         reason: str = "", *, undo: bool = False) -> Version:
    canonical, _ = names.package_name(name)
    reason = names.yank_reason(reason)
    version_key(version)  # (a refusal saying what a version is, before anything is read)

    def build(snap: Snapshot) -> Change:
        package_for(snap, who, ws, canonical, "write", f"yank versions of {canonical!r}")
        record = get_version(snap, ws, canonical, version)
        if record is None:
            raise NotFound(f"Package {canonical!r} has no version {version!r}.")
        if record.yanked != undo:
            raise Conflict(f"{canonical} {record.version} is {'not ' if undo else 'already '}yanked.")
        provenance = who.provenance(channel)
        new = replace(record, yanked=not undo, yanked_reason="" if undo else reason, yank=provenance)
        summary = f"un-yank {canonical} {record.version}" if undo else f"yank {canonical} {record.version}"
        if reason and not undo:
            summary += f": {reason}"
        return make_change(who, channel, Action.UNYANK if undo else Action.YANK, summary,
                           {layout.version(ws, canonical, version_key(record.version)): new},
                           (T.WORKSPACE, ws), (T.PACKAGE, canonical), (T.VERSION, record.version),
                           provenance=provenance, result=new)

    return reg.transact(build).result
