"""What a ledger commit tells a webhook: one pure function of the commit (its Action and trailers),
so that a replay from any commit says exactly what the first delivery said. The commit id is the
event id."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..audit import Action, T, action, creates_package
from ..ledger import Commit

# Which commits are which event. One commit is one event; `types` lists every kind it is (a publish
# that created its package is both), and a hook gets it if it subscribed to any of them.
_KINDS: dict[Action, str] = {
    Action.PUBLISH: "publish", Action.YANK: "yank", Action.UNYANK: "unyank", Action.DELETE_VERSION: "delete",
    Action.CREATE_PACKAGE: "package-created", Action.DELETE_PACKAGE: "package-deleted",
    Action.GRANT: "grant", Action.REVOKE_GRANT: "grant", Action.GRANT_PIPELINES: "grant",
    Action.REVOKE_PIPELINES: "grant", Action.REMOVE_MEMBER: "grant",
    Action.SET_POLICY: "policy", Action.SET_UPSTREAM: "policy", Action.TRUST: "policy", Action.UNTRUST: "policy",
    Action.SET_REPOSITORY_OPTION: "policy",
}


class Pipeline(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The Bitbucket Pipelines run that made the change, as its verified token said."""

    pipeline_uuid: str
    step_uuid: str | None = None
    repository_uuid: str | None = None
    workspace_uuid: str | None = None
    branch: str | None = None
    environment_uuid: str | None = None
    url: str | None = None


class Provenance(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who made the change, and how: ``kind`` is the UI's and the API's (person, api-token, pipeline)."""

    actor: str
    channel: str | None = None
    kind: str
    token_id: str | None = None
    pipeline: Pipeline | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str  # the commit's id
    type: str  # what it is first: publish, yank, ...
    types: list[str]  # every kind it is
    action: str  # the commit's Action trailer
    time: datetime  # the commit's
    summary: str  # the commit's first line
    workspace: str
    repository: str | None = None  # where the commit names it, or (delivery.py) the package's
    package: str | None = None
    version: str | None = None
    versions: list[str] = []  # a package deleted: every version it had
    file: str | None = None
    sha256: str | None = None
    user: str | None = None  # a grant's person
    role: str | None = None
    provenance: Provenance


def event(commit: Commit) -> Event | None:
    """The event a commit is, or None (a commit no webhook hears of: a token, a session, a key)."""
    did = action(commit)
    kind = _KINDS.get(did)
    ws = commit.trailer(T.WORKSPACE)
    if kind is None or ws is None:
        return None
    types = [kind, "package-created"] if did is Action.PUBLISH and creates_package(commit) else [kind]
    versions = commit.trailers_named(T.VERSION)
    many = did is Action.DELETE_PACKAGE
    return Event(id=commit.id, type=kind, types=types, action=str(did), time=commit.time, summary=commit.summary,
                 workspace=ws, repository=commit.trailer(T.REPOSITORY), package=commit.trailer(T.PACKAGE),
                 version=None if many or len(versions) != 1 else versions[0], versions=versions if many else [],
                 file=commit.trailer(T.FILE), sha256=commit.trailer(T.SHA256) if did is Action.PUBLISH else None,
                 user=commit.trailer(T.USER), role=commit.trailer(T.ROLE), provenance=provenance(commit))


def provenance(commit: Commit) -> Provenance:
    """Who made a commit, and how (any commit: the event log's lines say it of every one)."""
    pipeline = None
    if run := commit.trailer(T.PIPELINE_UUID):
        pipeline = Pipeline(pipeline_uuid=run, step_uuid=commit.trailer(T.STEP_UUID),
                            repository_uuid=commit.trailer(T.REPOSITORY_UUID),
                            workspace_uuid=commit.trailer(T.WORKSPACE_UUID), branch=commit.trailer(T.BRANCH),
                            environment_uuid=commit.trailer(T.ENVIRONMENT_UUID),
                            url=commit.trailer(T.PIPELINE_RUN_URL))
    token = commit.trailer(T.TOKEN_ID)
    return Provenance(actor=commit.trailer(T.ACTOR) or commit.author_email, channel=commit.trailer(T.CHANNEL),
                      kind="pipeline" if pipeline else "api-token" if token else "person", token_id=token,
                      pipeline=pipeline)


def wanted(e: Event, ws: str, events: list[str], repository: str | None) -> bool:
    """Whether a hook of workspace ``ws`` subscribed to ``events`` (of one ``repository``, or None:
    the workspace's) gets it."""
    if e.workspace != ws or not set(e.types) & set(events):
        return False
    return repository is None or e.repository == repository
