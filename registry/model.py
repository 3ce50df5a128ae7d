"""The registry's records, what roles rank, the order of versions and who a publisher is. Pure: no I/O.
The rules on the names and text a user gives them are names.py's.

Every record is a frozen msgspec Struct stored as one canonical JSON file in the ledger; the JSON
Schemas in ``schemas/ledger`` are generated from these types. Field names are the JSON names.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from packaging.version import InvalidVersion
from packaging.version import Version as PkgVersion

from pipelines import claims

from . import bounds
from .errors import Invalid

Role = Literal["read", "write", "admin"]
# A token's ceiling. "witness": no role on anything; it may only fetch the ledger (registry witness).
# "replica": the same, and it may also read files by sha256 (a read replica, `registry serve --follow`).
Scope = Literal["read", "write", "witness", "replica"]
# How a change reached the registry: by hand on the server, the management API, the upload API,
# `registry import` (files from another index or a directory), the web UI, the registry itself
# (bootstrap, garbage collection), or a download that fetched a file from an upstream index.
Channel = Literal["cli", "api", "upload", "import", "web", "system", "upstream"]
PackageType = Literal["pypi"]
PackageKind = Literal["sdist", "bdist_wheel"]
KeyPurpose = Literal["commit", "checkpoint"]

ROLE_RANK: dict[str | None, int] = {None: 0, "read": 1, "write": 2, "admin": 3}
ROLES: tuple[Role, ...] = ("read", "write", "admin")

Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
BraceUuid = Annotated[str, msgspec.Meta(pattern=r"^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$")]


class Record(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Base of every ledger record: immutable, so decoded records can be shared from a cache."""


# --- provenance: who did it, when, how ------------------------------------------------------------


class ReportedRunContext(Record, frozen=True, kw_only=True):
    """What the publishing step *said* about its run. Pipelines variables can be overridden by the
    step itself, so none of this is verified; it is kept apart from the verified claims."""

    build_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}$")] | None = None
    commit: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    tag: Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,255}$")] | None = None
    repo_full_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,62}/[A-Za-z0-9_.-]{1,62}$")] | None = None
    # BITBUCKET_DEPLOYMENT_ENVIRONMENT: the name of the deployment environment the step deploys to
    # (its UUID is a verified claim: PipelineRun.environment_uuid)
    deployment_environment: Annotated[str, msgspec.Meta(pattern=r"^[^\x00-\x1f\x7f]{1,255}$")] | None = None


class PipelineRun(Record, frozen=True, kw_only=True):
    """A Bitbucket Pipelines step, from the claims of its verified OIDC token."""

    issuer: str
    subject: str
    workspace_uuid: BraceUuid
    repository_uuid: BraceUuid
    pipeline_uuid: BraceUuid
    step_uuid: BraceUuid
    branch: str | None = None
    environment_uuid: BraceUuid | None = None
    reported: ReportedRunContext | None = None
    url: str | None = None


class Provenance(Record, frozen=True, kw_only=True):
    at: datetime
    by: str  # a user's email, or "pipeline:<repository uuid>" for a pipeline step
    channel: Channel
    token: str | None = None  # id of the API token used, when one was
    pipeline: PipelineRun | None = None


# Who published, as the API's `publisher.kind` and the UI say it: a pipeline run, a person with an
# API token, or a person by hand (on the server, the web UI, an import).
PublisherKind = Literal["person", "api-token", "pipeline"]


def publisher_kind(p: Provenance) -> PublisherKind:
    """The one rule: a pipeline run if the change came from one, else an API token if one was used,
    else a person."""
    return "pipeline" if p.pipeline else "api-token" if p.token else "person"


# --- tenancy and people ---------------------------------------------------------------------------


class LedgerInfo(Record, frozen=True, kw_only=True):
    format: int
    registry: BraceUuid
    created: datetime


class SigningKey(Record, frozen=True, kw_only=True):
    """A public key the registry signs with: ledger commits (SSH signatures, namespace git) or
    checkpoints (signed notes). Its private half stays in the data directory."""

    purpose: KeyPurpose
    public_key: str  # "ssh-ed25519 AAAA..."
    fingerprint: str  # "SHA256:...", as ssh-keygen and git print it
    valid_from: datetime
    valid_until: datetime | None = None  # set when rotated out
    note_name: str | None = None  # checkpoint keys: the note key name (the checkpoints' origin)
    added: Provenance
    retired: Provenance | None = None


class SigningKeys(Record, frozen=True, kw_only=True):
    """Every key the ledger was ever signed with, and when each was valid (the current ones have no
    end). Served as an OpenSSH allowed signers file at /_/ledger/allowed-signers."""

    principal: str  # who the allowed signers file names as the signer
    keys: list[SigningKey]


class Workspace(Record, frozen=True, kw_only=True):
    slug: str
    uuid: BraceUuid
    name: str
    admins: list[str] = []
    created: Provenance
    # The most bytes its published files may take (each file counted by its size, see StorageUsage),
    # set by the operator; None: no limit. ``quota_set``: who set it last, and when.
    quota_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None
    quota_set: Provenance | None = None


class StorageUsage(Record, frozen=True, kw_only=True):
    """What a workspace's published files take: the sum of their sizes (a file counts once, even
    where two files share bytes) and their number. Kept up to date by the commit of every publish and
    deletion, so that an upload checks its quota without counting; counted afresh when the operator
    sets the quota. Files fetched from upstream indexes are a cache and don't count."""

    bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    files: Annotated[int, msgspec.Meta(ge=0)] = 0


class RetentionPolicy(Record, frozen=True, kw_only=True):
    """Which versions maintenance deletes (`registry retention apply`), of the packages linked to
    ``repository`` and/or whose normalised names match ``pattern`` (fnmatch; both: both must hold).
    Rules: keep the ``keep_newest`` newest versions; delete pre-releases and dev releases older than
    ``prerelease_days``. Never deleted: the newest release of a package (always), and a version with
    a file a pipeline published while deploying to one of ``protect_environments`` (names, as the
    step reported them, or UUIDs, as its verified token said them)."""

    name: str  # a slug: how commits and plans name the policy
    repository: str | None = None
    pattern: str | None = None
    keep_newest: Annotated[int, msgspec.Meta(ge=1)] | None = None
    prerelease_days: Annotated[int, msgspec.Meta(ge=0)] | None = None
    protect_environments: list[str] = []
    updated: Provenance


class Project(Record, frozen=True, kw_only=True):
    key: str
    name: str
    grants: dict[str, Role] = {}
    created: Provenance


class Repository(Record, frozen=True, kw_only=True):
    slug: str
    uuid: BraceUuid
    project: str
    public: bool = False
    grants: dict[str, Role] = {}
    created: Provenance
    # A writer (or a pipeline of this repository) publishing a name the workspace has no package of
    # creates it, linked here, in the publish's commit (as PyPI, GitLab and devpi do). Off: a
    # repository admin creates each package first (Bitbucket's way).
    create_packages_on_publish: bool = False
    option_set: Provenance | None = None  # who last changed create_packages_on_publish, and when
    # Other repositories of the workspace whose pipelines may read this one (their slugs, sorted; slugs
    # are never reused), or ALL_PIPELINES: Bitbucket's own step credential reaches only its repository.
    pipeline_readers: list[str] = []


ALL_PIPELINES = "*"  # in `Repository.pipeline_readers`: every pipeline of the workspace


class RetiredRepository(Record, frozen=True, kw_only=True):
    """A repository slug no longer in use (the repository was renamed or deleted), kept so that it
    never names another repository: the audit trail files a package's commits under the slug of
    the repository it was created in, so a new repository under an old slug would inherit what its
    readers may not see. ``renamed_to``: the slug it took (None: deleted)."""

    slug: str
    uuid: BraceUuid
    renamed_to: str | None = None
    retired: Provenance


class User(Record, frozen=True, kw_only=True):
    """A person. ``disabled``: by whom and when their account was switched off (``disabled_reason``:
    why); while it is, none of their credentials (API tokens, web sessions, sign-in links) is
    accepted, and so their grants, which stay, do nothing. Their history stays as it was."""

    email: str
    name: str
    created: Provenance
    disabled: Provenance | None = None
    disabled_reason: str = ""
    # the workspace the root index (`/<name>/`) takes a name from when several the user reads hold it
    default_workspace: str | None = None


class ApiToken(Record, frozen=True, kw_only=True):
    """Only the SHA-256 of the secret is kept. The id is a prefix of that hash: safe to show.

    A token minted for a pipeline step (in exchange for its OIDC token) is bound to that step's
    repository and carries the run it was minted for; it acts as that pipeline, for minutes."""

    id: str
    user: str  # an email, or "pipeline:<repository uuid>" for a minted token
    sha256: Sha256
    scope: Scope
    label: str = ""
    created: Provenance
    expires: datetime | None = None
    revoked: Provenance | None = None
    workspace: str | None = None
    repository: str | None = None
    pipeline: PipelineRun | None = None


class SignInLink(Record, frozen=True, kw_only=True):
    """A one-time link that signs its holder into the web UI as ``user``, for minutes. Only the
    SHA-256 of its secret is kept; the id is a prefix of that hash. Using it starts a web session
    (``session_token``: its id; before sessions were records of their own, the id of a token made
    for the session)."""

    id: str
    user: str
    sha256: Sha256
    created: Provenance
    expires: datetime
    used: Provenance | None = None
    session_token: str | None = None


SessionScope = Literal["read", "write"]


class WebSession(Record, frozen=True, kw_only=True):
    """A browser signed in to the web UI: what its cookie names (the cookie is signed by the server
    and holds no secret). Started by a sign-in with an API token (``token``: that token's SHA-256;
    the session has its scope and ends when it is revoked or expires) or with a one-time link
    (write scope: a link stands in for its person). Ended by signing out, or from another session
    (``ended``); a sign-in removes its person's records that are over and a minute old, so the
    records of the last minute also count how often they signed in."""

    id: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    user: str
    scope: SessionScope
    via: Literal["token", "link"]
    token: Sha256 | None = None
    link: str | None = None  # the sign-in link's id
    created: Provenance
    expires: datetime
    ended: Provenance | None = None


class PipelinesTrust(Record, frozen=True, kw_only=True):
    """A Bitbucket Pipelines OIDC issuer this workspace trusts, and for which audiences.

    Tokens must also carry this workspace's UUID (the workspace record's `uuid`). `jwks` holds the
    issuer's public keys for sites that can't reach it; otherwise they are fetched via discovery.
    As a record of its own, the one trust of a ledger written before a workspace could trust
    several issuers (`workspaces/<ws>/pipelines-trust.json`): still read, and removed by untrusting
    its issuer; every trust written now is a `TrustedIssuer`."""

    issuer: str
    audiences: list[str] = []
    jwks: dict[str, Any] | None = None
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["RS256"])
    updated: Provenance


class TrustedIssuer(PipelinesTrust, frozen=True, kw_only=True):
    """One of the issuers a workspace trusts: one record per issuer, added, updated and removed by
    its own commit (`workspaces/<ws>/trusts/<sha256 of the issuer URL>.json`)."""


class PublishPolicy(Record, frozen=True, kw_only=True):
    """Which pipeline runs may publish a package: branch globs and/or deployment environments.
    An empty list doesn't restrict; when both are set, a run must satisfy both."""

    branches: list[str] = []
    environments: list[BraceUuid] = []
    updated: Provenance


# --- packages ------------------------------------------------------------------------------------


class Package(Record, frozen=True, kw_only=True):
    type: PackageType = "pypi"
    name: str  # normalised (PEP 503)
    display_name: str
    workspace: str
    repository: str
    created: Provenance
    publish_policy: PublishPolicy | None = None


class DistFile(Record, frozen=True, kw_only=True):
    filename: str
    size: int
    sha256: Sha256
    blake2b_256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
    md5: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    packagetype: PackageKind
    python_version: str
    requires_python: str | None = None
    metadata_version: str
    metadata_sha256: Sha256  # the core metadata (wheel METADATA / sdist PKG-INFO), also a blob
    uploaded: Provenance
    # When the file was first uploaded, where that was elsewhere: what the index it was imported
    # from said (PEP 700 `upload-time`). None: it was uploaded here, at `uploaded.at`.
    upload_time: datetime | None = None
    # What was odd about the file but accepted, as installers accept it: one sentence per rule
    # (e.g. a field newer than the declared Metadata-Version, a pre-PEP 625 sdist name).
    warnings: list[str] = []

    @property
    def upload_time_served(self) -> datetime:
        """The `upload-time` the indexes serve (what `uv --exclude-newer` compares against)."""
        return self.upload_time or self.uploaded.at


class Version(Record, frozen=True, kw_only=True):
    package: str
    version: str  # normalised (PEP 440)
    summary: str = ""
    files: list[DistFile] = []
    created: Provenance
    yanked: bool = False
    yanked_reason: str = ""
    yank: Provenance | None = None


class DeletedFile(Record, frozen=True, kw_only=True):
    version: str
    sha256: Sha256
    metadata_sha256: Sha256 | None = None
    deleted: Provenance


class DeletedFiles(Record, frozen=True, kw_only=True):
    """Filenames that once held a file: never accepted again, as on the public index. ``repository``:
    the repository the package was linked to when its files were last deleted (None in records of
    older releases): a publish may create the name again on its own only from that repository."""

    package: str
    files: dict[str, DeletedFile] = {}
    repository: str | None = None


# --- upstream indexes ----------------------------------------------------------------------------


class UpstreamIndex(Record, frozen=True, kw_only=True):
    """An index whose projects the workspace serves where it owns no such name (any PEP 503/691
    Simple API). Its credentials, if any, are kept in the data directory, never here: ``credentials``
    says only that some are set."""

    name: str  # a slug: how rules, records and messages name it
    url: str  # its Simple API root, without credentials, ending in "/"
    credentials: bool = False
    added: Provenance


class NameRule(Record, frozen=True, kw_only=True):
    """A pattern of project names (fnmatch, on normalised names) and why it is there."""

    pattern: str
    reason: str
    added: Provenance


class BlockedVersion(Record, frozen=True, kw_only=True):
    """An upstream release never offered (its pages leave it out, its files are refused)."""

    name: str
    version: str  # normalised (PEP 440); 1.0 blocks 1.0.0 too
    reason: str
    added: Provenance


class Exemption(Record, frozen=True, kw_only=True):
    """A project given an exception, with why and by whom: from the cooldown, or (``tracks``) an
    owned name whose upstream releases are also served (PEP 708)."""

    name: str
    reason: str
    granted: Provenance


class UpstreamPolicy(Record, frozen=True, kw_only=True):
    """What a workspace takes from upstream indexes: the indexes in priority order (the first that
    has a project answers for it), which names (``allow``: if any, only these; ``deny``: never
    these), which releases never (``blocked``), and how old a release must be before it is offered
    (``cooldown_seconds``, by the earliest upload-time of its files; ``exempt`` projects skip it).
    Names the workspace owns, or ever owned, never come from upstream unless ``tracks`` names them."""

    upstreams: list[UpstreamIndex] = []
    allow: list[NameRule] = []
    deny: list[NameRule] = []
    blocked: list[BlockedVersion] = []
    cooldown_seconds: int = 0
    exempt: list[Exemption] = []
    tracks: list[Exemption] = []
    updated: Provenance


class UpstreamFile(Record, frozen=True, kw_only=True):
    """A file first fetched from an upstream index, as that index described it and as its bytes
    hashed: what makes an install that used it reproducible at any later commit."""

    project: str  # normalised
    version: str  # as its filename says it
    filename: str
    sha256: Sha256
    size: int
    upstream: str  # the index's name in the policy
    url: str  # where it was fetched from, without credentials or query
    upload_time: datetime | None = None  # what the index said (PEP 700), if it said
    requires_python: str | None = None
    metadata_sha256: Sha256 | None = None  # the PEP 658 metadata the index declared
    fetched: Provenance  # who asked for it first


# --- webhooks ------------------------------------------------------------------------------------

# What a webhook may subscribe to: each a kind of ledger commit (webhooks/events.py maps them).
WebhookEvent = Literal["publish", "yank", "unyank", "delete", "package-created", "package-deleted", "grant",
                       "policy"]
WEBHOOK_EVENTS: tuple[str, ...] = ("publish", "yank", "unyank", "delete", "package-created", "package-deleted",
                                   "grant", "policy")
# How a delivery proves where it came from: the ledger's commit key (Ed25519), or HMAC-SHA256 with a
# secret of the hook's own, kept in the data directory.
WebhookSigning = Literal["ed25519", "hmac-sha256"]
# What is sent: the registry's event (JSON), or a Bitbucket API call that runs a custom pipeline.
WebhookFormat = Literal["event", "bitbucket-pipeline"]


class BitbucketPipeline(Record, frozen=True, kw_only=True):
    """The custom pipeline a `bitbucket-pipeline` hook runs (Bitbucket's `pipeline_ref_target`): of
    which branch, which `custom:` pipeline. Its repository access token is in the data directory."""

    branch: str = "main"
    pipeline: str  # the name under `pipelines: custom:` in that repository's bitbucket-pipelines.yml


class WebhookReplay(Record, frozen=True, kw_only=True):
    """An admin's request to deliver again from ``start`` (that commit included): the deliverer
    resets the hook's cursor once per request (it remembers the last one it applied)."""

    start: str  # a commit id
    requested: Provenance


class WebhookEndpoint(Record, frozen=True, kw_only=True):
    """What the ledger says of a hook's URL: enough for an auditor to tell two apart and an operator
    to check which one is set (`fingerprint`), nothing of its path (Slack's, Teams', Zapier's carry
    their secret there). The whole URL is in the data directory, with the hook's secret."""

    scheme: str
    host: str
    port: int | None = None  # as given (None: the scheme's)
    fingerprint: str  # "sha256:" and the first 16 hex digits of the SHA-256 of the whole URL


class Webhook(Record, frozen=True, kw_only=True):
    """An endpoint told about a workspace's (or one repository's) changes, in commit order. Only
    what it is: the last commit delivered and the attempts are in the data directory (a delivery is
    no change of state), and so are its whole URL and its secret (``secret``: one is set), under
    ``key``, a new one for each version of the record: a version not committed is never used."""

    name: str  # a slug, unique in the workspace
    url: str = ""  # (records of older versions only: the whole URL; now `endpoint`, and `key` names it)
    endpoint: WebhookEndpoint | None = None
    key: str = ""  # its URL's and secret's entry in the data directory ("": an older version's, by name)
    events: list[WebhookEvent]
    repository: str | None = None  # only this repository's packages and grants
    signing: WebhookSigning = "ed25519"
    format: WebhookFormat = "event"
    bitbucket: BitbucketPipeline | None = None
    secret: bool = False
    since: str  # the head it was added on: what it delivers starts after it
    added: Provenance
    replay: WebhookReplay | None = None


LEDGER_RECORDS: tuple[type[Record], ...] = (
    LedgerInfo, SigningKeys, Workspace, PipelinesTrust, TrustedIssuer, Project, Repository, RetiredRepository,
    User, ApiToken,
    SignInLink, WebSession, Package, Version,
    DeletedFiles, UpstreamPolicy, UpstreamFile, StorageUsage, RetentionPolicy, Webhook,
)


# --- identifiers ---------------------------------------------------------------------------------


def brace_uuid(value: str | None = None) -> str:
    """A Bitbucket-style UUID: ``{lowercase-8-4-4-4-12}`` (a new one if ``value`` is None); braces and
    case of the input don't matter."""
    if value is None:
        return f"{{{uuidlib.uuid4()}}}"
    try:
        return claims.brace_uuid(bounds.at_most(value, 40, "UUIDs"))
    except ValueError:
        raise Invalid(f"Invalid UUID {bounds.shown(value)}: expected 8-4-4-4-12 hex digits, with or without "
                      "braces.") from None


def now() -> datetime:
    return datetime.now(UTC)


# --- permissions ---------------------------------------------------------------------------------


def effective_role(
    user: str | None, workspace: Workspace, project: Project | None, repository: Repository
) -> Role | None:
    """The highest role that applies to ``user`` on ``repository``: workspace admin, a grant on the
    repository's project, a grant on the repository, or read on a public repository (anyone)."""
    best: Role | None = "read" if repository.public else None
    if user is None:
        return best
    if user in workspace.admins:
        return "admin"
    for grants in (project.grants if project else {}, repository.grants):
        granted = grants.get(user)
        if ROLE_RANK[granted] > ROLE_RANK[best]:
            best = granted
    return best


def at_least(have: Role | None, need: Role) -> bool:
    return ROLE_RANK[have] >= ROLE_RANK[need]


# --- the order of versions -----------------------------------------------------------------------


def release_key(version: str) -> tuple[int, PkgVersion | str]:
    """The one order of versions, wherever versions are ordered: PEP 440's; a string that is no
    version (never stored: every version is checked at upload; but never a 500) after every version,
    by its text."""
    try:
        return (0, PkgVersion(version))
    except InvalidVersion:
        return (1, version)


def latest_release(versions: list[Version]) -> Version | None:
    """As the public index picks it: not yanked, then a final release (not a pre-release; a version
    at all), then the highest (``release_key``)."""
    if not versions:
        return None

    def preference(v: Version) -> tuple[bool, bool, tuple[int, PkgVersion | str]]:
        key = release_key(v.version)
        final = isinstance(key[1], PkgVersion) and not key[1].is_prerelease
        return (not v.yanked, final, key)

    return max(versions, key=preference)
