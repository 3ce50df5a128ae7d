"""The audit vocabulary: what each ledger commit says about itself, in the words all readers share.

A commit's subject is for people (`publish acme-utils 1.2.0: acme_utils-1.2.0-py3-none-any.whl`);
its trailers are for tools: who acted and how (`Actor`, `Channel`, `Token-Id`, the pipeline's ids),
what the change was (`Action`), and what it touched (`Workspace`, `Package`, `Version`, `File`, ...).
Writers build trailers here and readers read them here, so no reader parses a subject. Commits made
before the `Action` trailer existed are read by their subject's first words, once, in `action`.
"""

from __future__ import annotations

from enum import StrEnum

from .ledger import Commit
from .model import Provenance


class T(StrEnum):
    """Trailer names."""

    ACTION = "Action"
    ACTOR = "Actor"
    CHANNEL = "Channel"
    TOKEN_ID = "Token-Id"
    PIPELINE_UUID = "Pipeline-Uuid"
    STEP_UUID = "Step-Uuid"
    REPOSITORY_UUID = "Repository-Uuid"
    WORKSPACE_UUID = "Workspace-Uuid"
    BRANCH = "Branch"
    ENVIRONMENT_UUID = "Environment-Uuid"
    PIPELINE_RUN_URL = "Pipeline-Run-Url"
    WORKSPACE = "Workspace"
    PROJECT = "Project"
    REPOSITORY = "Repository"
    PACKAGE = "Package"
    VERSION = "Version"
    FILE = "File"
    SHA256 = "Sha256"
    SIZE = "Size"
    UPLOAD_TIME = "Upload-Time"
    IMPORT_SOURCE = "Import-Source"
    UPSTREAM = "Upstream"  # the upstream index a file was fetched from (its name)
    UPSTREAM_URL = "Upstream-Url"  # ... and the file's URL there, without credentials
    USER = "User"
    TOKEN = "Token"
    SIGN_IN_LINK = "Sign-In-Link"
    SESSION = "Session"  # a web session's id
    SCOPE = "Scope"
    ROLE = "Role"
    ISSUER = "Issuer"
    KEY = "Key"  # a signing key's fingerprint
    RENAMED_FROM = "Renamed-From"  # a repository's slug before a rename (its new one is `Repository`)
    RETENTION_POLICY = "Retention-Policy"  # the policy a deletion applied, or the one set or removed
    SCHEDULED = "Scheduled"  # a change the server made on its own schedule (which setting: its value says)
    QUOTA = "Quota"  # a workspace's quota in bytes ("none": no limit)
    WEBHOOK = "Webhook"  # a webhook's name
    PIPELINES_OF = "Pipelines-Of"  # the repository whose pipelines were granted read (`*`: every one of the workspace)


class Action(StrEnum):
    INIT = "init"
    CREATE_WORKSPACE = "create-workspace"
    CREATE_PROJECT = "create-project"
    CREATE_REPOSITORY = "create-repository"
    CREATE_USER = "create-user"
    CREATE_TOKEN = "create-token"
    REVOKE_TOKEN = "revoke-token"
    MINT_TOKEN = "mint-token"
    GRANT = "grant"
    REVOKE_GRANT = "revoke-grant"
    GRANT_PIPELINES = "grant-pipelines"  # another repository's pipelines (or all of the workspace's) may read
    REVOKE_PIPELINES = "revoke-pipelines"
    TRUST = "trust"
    UNTRUST = "untrust"
    CREATE_PACKAGE = "create-package"
    DELETE_PACKAGE = "delete-package"
    SET_POLICY = "set-policy"
    PUBLISH = "publish"
    DELETE_VERSION = "delete-version"
    YANK = "yank"
    UNYANK = "unyank"
    CREATE_LOGIN_LINK = "create-login-link"
    USE_LOGIN_LINK = "use-login-link"  # (which also starts a web session)
    SIGN_IN = "sign-in"  # a web session started with an API token
    SIGN_OUT = "sign-out"  # a web session ended by itself
    END_SESSION = "end-session"  # web sessions ended from another session, or by the operator
    SET_DEFAULT_WORKSPACE = "set-default-workspace"  # the workspace a user's root index prefers for a shared name
    ADOPT_KEYS = "adopt-signing-keys"
    ROTATE_KEYS = "rotate-signing-keys"
    SET_REPOSITORY_OPTION = "set-repository-option"  # e.g. whether publishing creates packages
    SET_UUID = "set-uuid"  # a workspace or repository bound to its Bitbucket UUID afterwards
    SET_UPSTREAM = "set-upstream"  # the upstream indexes, their rules, block list, cooldown, exemptions
    FETCH_UPSTREAM = "fetch-upstream"  # a file fetched from an upstream index, on its first download
    RENAME_USER = "rename-user"  # a person's display name
    DISABLE_USER = "disable-user"  # none of their credentials accepted, their grants inert, until enabled
    ENABLE_USER = "enable-user"
    REMOVE_MEMBER = "remove-member"  # every grant of a person in one workspace taken away at once
    RENAME_WORKSPACE = "rename-workspace"  # its display name (its slug is in every client's index URL)
    RENAME_PROJECT = "rename-project"  # its display name
    RENAME_REPOSITORY = "rename-repository"  # its slug, and every package linked to it
    DELETE_WORKSPACE = "delete-workspace"
    DELETE_PROJECT = "delete-project"
    DELETE_REPOSITORY = "delete-repository"
    SET_RETENTION = "set-retention"  # a retention policy added or changed
    REMOVE_RETENTION = "remove-retention"
    SET_QUOTA = "set-quota"  # a workspace's quota, set or removed by the operator (usage counted afresh)
    ADD_WEBHOOK = "add-webhook"  # (or replace one of the same name)
    REMOVE_WEBHOOK = "remove-webhook"
    REPLAY_WEBHOOK = "replay-webhook"  # deliver again from a commit
    REPAIR = "repair"  # records the ledger could not read back, removed by the operator
    UNKNOWN = "unknown"


# How commits from before the Action trailer said what they did: the first words of the subject.
_BY_SUBJECT = [
    ("init ledger", Action.INIT), ("create workspace ", Action.CREATE_WORKSPACE),
    ("create project ", Action.CREATE_PROJECT), ("create repository ", Action.CREATE_REPOSITORY),
    ("create user ", Action.CREATE_USER), ("create package ", Action.CREATE_PACKAGE),
    ("create read token ", Action.CREATE_TOKEN), ("create write token ", Action.CREATE_TOKEN),
    ("revoke token ", Action.REVOKE_TOKEN), ("mint token ", Action.MINT_TOKEN), ("grant ", Action.GRANT),
    ("revoke grants ", Action.REVOKE_GRANT), ("trust pipelines ", Action.TRUST), ("stop trusting ", Action.UNTRUST),
    ("set publish policy ", Action.SET_POLICY), ("publish ", Action.PUBLISH),
    ("delete package ", Action.DELETE_PACKAGE), ("delete ", Action.DELETE_VERSION), ("yank ", Action.YANK),
    ("un-yank ", Action.UNYANK),
]
PUBLISHER_TRAILERS = (T.CHANNEL, T.TOKEN_ID, T.PIPELINE_UUID, T.STEP_UUID, T.REPOSITORY_UUID, T.BRANCH,
                      T.ENVIRONMENT_UUID)  # how a change was made, beside who made it (shown by `registry log`)


def action(commit: Commit) -> Action:
    """What a commit did: its Action trailer, or (older commits) its subject's first words."""
    named = commit.trailer(T.ACTION)
    if named:
        try:
            return Action(named)
        except ValueError:
            return Action.UNKNOWN
    return next((a for prefix, a in _BY_SUBJECT if commit.summary.startswith(prefix)), Action.UNKNOWN)


def creates_package(commit: Commit) -> bool:
    """Whether a commit created a package: `create-package`, or a publish that created the package it
    published to (its second Action trailer; its Repository trailer names the package's repository)."""
    return action(commit) is Action.CREATE_PACKAGE or Action.CREATE_PACKAGE in commit.trailers_named(T.ACTION)


def provenance_trailers(p: Provenance) -> list[tuple[str, str]]:
    """Who acted, and how: the trailers every commit starts with."""
    out: list[tuple[str, str]] = [(T.ACTOR, p.by), (T.CHANNEL, p.channel)]
    if p.token:
        out.append((T.TOKEN_ID, p.token))
    if p.pipeline:
        run = p.pipeline
        out += [(T.PIPELINE_UUID, run.pipeline_uuid), (T.STEP_UUID, run.step_uuid),
                (T.REPOSITORY_UUID, run.repository_uuid), (T.WORKSPACE_UUID, run.workspace_uuid)]
        if run.branch:  # (an empty value would end the trailer block: a run on a tag has none)
            out.append((T.BRANCH, run.branch))
        if run.environment_uuid:
            out.append((T.ENVIRONMENT_UUID, run.environment_uuid))
        if run.url:
            out.append((T.PIPELINE_RUN_URL, run.url))
    return out


def version_of(commit: Commit) -> str | None:
    """The one version a commit concerns, if it concerns exactly one."""
    versions = commit.trailers_named(T.VERSION)
    return versions[0] if len(versions) == 1 else None


def touched(commit: Commit) -> tuple[str | None, str | None]:
    """(workspace, package) a commit concerns, where it names them."""
    return commit.trailer(T.WORKSPACE), commit.trailer(T.PACKAGE)


def file_commits(commits: list[Commit]) -> dict[str, str]:
    """Filename -> the commit that published it, from a version's history."""
    return {name: c.id for c in commits if action(c) is Action.PUBLISH and (name := c.trailer(T.FILE))}
