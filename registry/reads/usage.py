"""What a workspace's published files take, by repository and by package: counted from the records
(a workspace's settings page, its admins' API), beside the running figure uploads check the quota
against (quota.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import layout, model
from ..ledger import Snapshot
from .records import list_packages


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int
    quota_bytes: int | None
    repositories: dict[str, int] = field(default_factory=dict)  # slug -> bytes
    packages: dict[str, int] = field(default_factory=dict)  # name -> bytes


def workspace_usage(snap: Snapshot, ws: str, breakdown: bool = True) -> Usage:
    """The running figure and the quota; with ``breakdown``, bytes per repository and per package
    (a count over every version of the workspace)."""
    workspace = snap.get(layout.workspace(ws), model.Workspace)
    running = stored(snap, ws)
    repositories: dict[str, int] = {}
    packages: dict[str, int] = {}
    if breakdown:
        scan = snap.scanning()  # (a walk of every version: it keeps no record it reads)
        for package in list_packages(scan, ws):
            size = package_usage(scan, ws, package.name)
            packages[package.name] = size
            repositories[package.repository] = repositories.get(package.repository, 0) + size
    return Usage(bytes=running.bytes, files=running.files, quota_bytes=workspace.quota_bytes if workspace else None,
                 repositories=repositories, packages=packages)


def package_usage(snap: Snapshot, ws: str, name: str) -> int:
    return sum(f.size for v in snap.records(layout.versions_dir(ws, name), model.Version) for f in v.files)


def counted(snap: Snapshot, ws: str) -> model.StorageUsage:
    """Usage counted from the records: every file of every version of every package."""
    snap = snap.scanning()  # (a walk: it keeps no record it reads)
    total = files = 0
    for package in list_packages(snap, ws):
        for version in snap.records(layout.versions_dir(ws, package.name), model.Version):
            total += sum(f.size for f in version.files)
            files += len(version.files)
    return model.StorageUsage(bytes=total, files=files)


def stored(snap: Snapshot, ws: str) -> model.StorageUsage:
    """The running figure (what uploads are checked against); counted once where a ledger written
    before it has none."""
    return snap.get(layout.usage(ws), model.StorageUsage) or counted(snap, ws)
