"""What the HTTP API answers: response types (msgspec, schemas in `schemas/api`) and how ledger
records become them. Pure: callers pass the records, the commits from the history index (read
with the audit vocabulary) and the base URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import overload
from urllib.parse import quote

import msgspec
from packaging.metadata import InvalidMetadata, Metadata

from .. import model
from ..audit import Action, T, action, file_commits, version_of
from ..ledger import Commit
from ..model import (
    DistFile,
    Package,
    PipelineRun,
    Provenance,
    PublishPolicy,
    Role,
    Version,
)


class View(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every API response type."""


# --- requests ------------------------------------------------------------------------------------


class CreatePackage(View, frozen=True, kw_only=True):
    name: str
    repository: str
    type: model.PackageType = "pypi"


class YankRequest(View, frozen=True, kw_only=True):
    reason: str = ""


# --- provenance ----------------------------------------------------------------------------------


class ChangeView(View, frozen=True, kw_only=True):
    at: datetime
    by: str
    channel: model.Channel
    token: str | None
    pipeline: PipelineRun | None
    commit: str | None  # the ledger commit that made the change


class Publisher(View, frozen=True, kw_only=True):
    """Who published a file: a person (by hand on the server), an API token, or a pipeline run."""

    kind: model.PublisherKind
    by: str
    channel: model.Channel
    token: str | None
    pipeline: PipelineRun | None


@overload
def change_view(p: Provenance, commit: str | None) -> ChangeView: ...
@overload
def change_view(p: None, commit: str | None) -> None: ...
@overload
def change_view(p: Provenance | None, commit: str | None) -> ChangeView | None: ...
def change_view(p: Provenance | None, commit: str | None) -> ChangeView | None:
    if p is None:
        return None
    return ChangeView(at=p.at, by=p.by, channel=p.channel, token=p.token, pipeline=p.pipeline, commit=commit)


def publisher(p: Provenance) -> Publisher:
    return Publisher(kind=model.publisher_kind(p), by=p.by, channel=p.channel, token=p.token, pipeline=p.pipeline)


# --- packages and versions -----------------------------------------------------------------------


class FileView(View, frozen=True, kw_only=True):
    filename: str
    size: int
    sha256: str
    blake2b_256: str
    md5: str
    packagetype: model.PackageKind
    python_version: str
    requires_python: str | None
    metadata_sha256: str
    upload_time: datetime
    url: str
    metadata_url: str | None
    publisher: Publisher
    commit: str | None
    warnings: list[str]  # what was odd about the file but accepted at upload, one sentence per rule


class VersionLinks(View, frozen=True, kw_only=True):
    package: str
    simple: str
    history: str


class VersionView(View, frozen=True, kw_only=True):
    workspace: str
    package: str
    display_name: str
    version: str
    summary: str
    yanked: bool
    yanked_reason: str
    yank: ChangeView | None
    created: ChangeView
    files: list[FileView]
    url: str
    links: VersionLinks


class VersionSummary(View, frozen=True, kw_only=True):
    version: str
    summary: str
    yanked: bool
    yanked_reason: str
    files: int
    created_at: datetime
    url: str


class PackageLinks(View, frozen=True, kw_only=True):
    simple: str
    json: str
    history: str


class PackageView(View, frozen=True, kw_only=True):
    type: model.PackageType
    name: str
    display_name: str
    workspace: str
    project: str
    repository: str
    public: bool
    created: ChangeView
    your_role: Role | None
    publish_policy: PublishPolicy | None
    versions: list[VersionSummary]
    url: str
    links: PackageLinks
    # The workspace's upstream index that also lists this name (a squatter, unless the workspace tracks
    # it on purpose); None if none does or the workspace has none. Never installed from there: the name
    # is the workspace's.
    also_published_upstream: str | None = None


class PackageItem(View, frozen=True, kw_only=True):
    type: model.PackageType
    name: str
    display_name: str
    workspace: str
    project: str
    repository: str
    public: bool
    created_at: datetime
    url: str


class PackageList(View, frozen=True, kw_only=True):
    items: list[PackageItem]
    page: int
    per_page: int
    total: int
    next: str | None


class PipelineIds(View, frozen=True, kw_only=True):
    pipeline_uuid: str | None
    step_uuid: str | None
    repository_uuid: str | None
    branch: str | None
    environment_uuid: str | None


class HistoryEntry(View, frozen=True, kw_only=True):
    commit: str
    at: datetime
    action: str
    author_name: str
    author_email: str
    actor: str | None
    channel: str | None
    token: str | None
    version: str | None
    pipeline: PipelineIds | None


class HistoryView(View, frozen=True, kw_only=True):
    workspace: str
    package: str
    version: str | None
    items: list[HistoryEntry]


class Problem(View, frozen=True, kw_only=True):
    """RFC 9457 problem details: every API refusal."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class Urls:
    """Where things are, under one base URL (the request's, or the configured public one)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def package(self, ws: str, name: str) -> str:
        return f"{self.base}/api/workspaces/{quote(ws)}/packages/pypi/{quote(name)}"

    def version(self, ws: str, name: str, version: str) -> str:
        return f"{self.package(ws, name)}/versions/{quote(version)}"

    def simple(self, ws: str, name: str) -> str:
        return f"{self.base}/{quote(ws)}/{quote(name)}/"

    def file(self, ws: str, name: str, version: str, filename: str) -> str:
        return f"{self.base}/{quote(ws)}/{quote(name)}/{quote(version)}/{quote(filename)}"

    def json(self, ws: str, name: str) -> str:
        return f"{self.base}/{quote(ws)}/pypi/{quote(name)}/json"


def version_view(package: Package, version: Version, commits: list[Commit], urls: Urls) -> VersionView:
    """``commits``: the version's history, newest first (from the history index)."""
    ws, name = package.workspace, package.name
    by_file = file_commits(commits)
    publishes = [c.id for c in commits if action(c) is Action.PUBLISH]
    yanks = [c.id for c in commits if action(c) in (Action.YANK, Action.UNYANK)]
    files = [
        FileView(
            filename=f.filename, size=f.size, sha256=f.sha256, blake2b_256=f.blake2b_256, md5=f.md5,
            packagetype=f.packagetype, python_version=f.python_version, requires_python=f.requires_python,
            metadata_sha256=f.metadata_sha256, upload_time=f.upload_time_served,
            url=urls.file(ws, name, version.version, f.filename),
            metadata_url=(urls.file(ws, name, version.version, f.filename) + ".metadata"
                          if f.packagetype == "bdist_wheel" else None),
            publisher=publisher(f.uploaded), commit=by_file.get(f.filename), warnings=f.warnings,
        )
        for f in version.files
    ]
    return VersionView(
        workspace=ws, package=name, display_name=package.display_name, version=version.version,
        summary=version.summary, yanked=version.yanked, yanked_reason=version.yanked_reason,
        yank=change_view(version.yank, yanks[0] if yanks else None),
        created=change_view(version.created, publishes[-1] if publishes else None),
        files=files, url=urls.version(ws, name, version.version),
        links=VersionLinks(package=urls.package(ws, name), simple=urls.simple(ws, name),
                           history=urls.version(ws, name, version.version) + "/history"),
    )


def package_view(package: Package, project: str, public: bool, role: Role | None, versions: list[Version],
                 created_commit: str | None, urls: Urls) -> PackageView:
    ws, name = package.workspace, package.name
    return PackageView(
        type=package.type, name=name, display_name=package.display_name, workspace=ws, project=project,
        repository=package.repository, public=public, created=change_view(package.created, created_commit),
        your_role=role, publish_policy=package.publish_policy,
        versions=[
            VersionSummary(version=v.version, summary=v.summary, yanked=v.yanked, yanked_reason=v.yanked_reason,
                           files=len(v.files), created_at=v.created.at, url=urls.version(ws, name, v.version))
            for v in reversed(versions)  # newest first
        ],
        url=urls.package(ws, name),
        links=PackageLinks(simple=urls.simple(ws, name), json=urls.json(ws, name),
                           history=urls.package(ws, name) + "/history"),
    )


def package_item(package: Package, project: str, public: bool, urls: Urls) -> PackageItem:
    return PackageItem(type=package.type, name=package.name, display_name=package.display_name,
                       workspace=package.workspace, project=project, repository=package.repository, public=public,
                       created_at=package.created.at, url=urls.package(package.workspace, package.name))


def history_view(ws: str, name: str, version: str | None, commits: list[Commit]) -> HistoryView:
    items = []
    for c in commits:
        pipeline = None
        if c.trailer(T.PIPELINE_UUID):
            pipeline = PipelineIds(pipeline_uuid=c.trailer(T.PIPELINE_UUID), step_uuid=c.trailer(T.STEP_UUID),
                                   repository_uuid=c.trailer(T.REPOSITORY_UUID), branch=c.trailer(T.BRANCH),
                                   environment_uuid=c.trailer(T.ENVIRONMENT_UUID))
        items.append(HistoryEntry(
            commit=c.id, at=c.time, action=c.summary, author_name=c.author_name, author_email=c.author_email,
            actor=c.trailer(T.ACTOR), channel=c.trailer(T.CHANNEL), token=c.trailer(T.TOKEN_ID),
            version=version or version_of(c), pipeline=pipeline,
        ))
    return HistoryView(workspace=ws, package=name, version=version, items=items)


# --- the public index's JSON API -----------------------------------------------------------------


class JsonDigests(View, frozen=True, kw_only=True):
    md5: str
    sha256: str
    blake2b_256: str


class JsonFile(View, frozen=True, kw_only=True, rename={"core_metadata": "core-metadata"}):
    comment_text: str
    core_metadata: dict[str, str] | bool
    digests: JsonDigests
    downloads: int
    filename: str
    has_sig: bool
    md5_digest: str
    packagetype: str
    python_version: str
    requires_python: str | None
    size: int
    upload_time: str
    upload_time_iso_8601: str
    url: str
    yanked: bool
    yanked_reason: str | None


class JsonDownloads(View, frozen=True, kw_only=True):
    last_day: int = -1
    last_month: int = -1
    last_week: int = -1


class JsonInfo(View, frozen=True, kw_only=True):
    author: str | None
    author_email: str | None
    bugtrack_url: None
    classifiers: list[str]
    description: str | None
    description_content_type: str | None
    docs_url: None
    download_url: str | None
    downloads: JsonDownloads
    dynamic: list[str] | None
    home_page: str | None
    keywords: str | None
    license: str | None
    license_expression: str | None
    license_files: list[str] | None
    maintainer: str | None
    maintainer_email: str | None
    name: str
    package_url: str
    platform: str | None
    project_url: str
    project_urls: dict[str, str] | None
    provides_extra: list[str] | None
    release_url: str
    requires_dist: list[str] | None
    requires_python: str | None
    summary: str | None
    version: str
    yanked: bool
    yanked_reason: str | None


class JsonOwnership(View, frozen=True, kw_only=True):
    roles: list[dict[str, str]] = []
    organization: str | None = None


class JsonProject(View, frozen=True, kw_only=True, omit_defaults=False):
    info: JsonInfo
    last_serial: int
    releases: dict[str, list[JsonFile]] | None = None  # only on the project endpoint
    urls: list[JsonFile]
    vulnerabilities: list[dict] = []
    ownership: JsonOwnership


def _json_file(ws: str, name: str, version: Version, f: DistFile, urls: Urls) -> JsonFile:
    return JsonFile(
        comment_text="", core_metadata={"sha256": f.metadata_sha256} if f.packagetype == "bdist_wheel" else False,
        digests=JsonDigests(md5=f.md5, sha256=f.sha256, blake2b_256=f.blake2b_256), downloads=-1,
        filename=f.filename, has_sig=False, md5_digest=f.md5, packagetype=f.packagetype,
        python_version=f.python_version, requires_python=f.requires_python, size=f.size,
        upload_time=f.upload_time_served.strftime("%Y-%m-%dT%H:%M:%S"),
        upload_time_iso_8601=f.upload_time_served.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        url=urls.file(ws, name, version.version, f.filename), yanked=version.yanked,
        yanked_reason=version.yanked_reason or None,
    )


def json_project(package: Package, versions: list[Version], selected: Version, metadata: bytes | None,
                 serial: int, urls: Urls, with_releases: bool) -> JsonProject:
    ws, name = package.workspace, package.name
    meta = _metadata(metadata)
    project_url = urls.simple(ws, name)
    info = JsonInfo(
        author=meta.author, author_email=meta.author_email, bugtrack_url=None, classifiers=meta.classifiers or [],
        description=meta.description, description_content_type=meta.description_content_type, docs_url=None,
        download_url=meta.download_url, downloads=JsonDownloads(), dynamic=meta.dynamic,
        home_page=meta.home_page, keywords=",".join(meta.keywords) if meta.keywords else None,
        license=meta.license, license_expression=meta.license_expression, license_files=meta.license_files,
        maintainer=meta.maintainer, maintainer_email=meta.maintainer_email, name=package.display_name,
        package_url=project_url, platform=",".join(meta.platforms) if meta.platforms else None,
        project_url=project_url, project_urls=meta.project_urls,
        provides_extra=[str(e) for e in meta.provides_extra or []] or None,
        release_url=f"{project_url}{quote(selected.version)}/",
        requires_dist=[str(r) for r in meta.requires_dist or []] or None,
        requires_python=str(meta.requires_python) if meta.requires_python else None,
        summary=meta.summary or selected.summary,
        version=selected.version, yanked=selected.yanked, yanked_reason=selected.yanked_reason or None,
    )
    releases = None
    if with_releases:
        releases = {v.version: [_json_file(ws, name, v, f, urls) for f in v.files] for v in versions}
    return JsonProject(info=info, last_serial=serial, releases=releases,
                       urls=[_json_file(ws, name, selected, f, urls) for f in selected.files],
                       ownership=JsonOwnership())


class _Fields:
    """Core metadata fields by name. A field that doesn't parse reads as None: uploads accept
    harmless invalid fields (recorded as the file's warnings), and they mustn't break the API."""

    def __init__(self, meta: Metadata | None) -> None:
        self._meta = meta

    def __getattr__(self, name):
        try:
            return getattr(self._meta, name) if self._meta is not None else None
        except InvalidMetadata:
            return None


def _metadata(data: bytes | None) -> _Fields:
    if not data:
        return _Fields(None)
    try:
        return _Fields(Metadata.from_email(data, validate=False))
    except Exception:  # metadata was checked at upload; an odd field shouldn't break the API
        return _Fields(None)


API_TYPES: tuple[type[View], ...] = (
    CreatePackage, YankRequest, PackageList, PackageView, VersionView, HistoryView, Problem, JsonProject,
)
