"""Who is asking: a `Principal`, from an API token (its hash looked up in the ledger), a Bitbucket
Pipelines OIDC token (verified against the workspace's trusted issuer), or the local operator."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pipelines.claims import PipelineClaims
from pipelines.verify import TokenRejected, Trust, Verifier

from . import bounds, layout, model, names
from .errors import Forbidden, Unauthorized
from .ledger import Snapshot
from .model import (
    ApiToken,
    PipelineRun,
    PipelinesTrust,
    Repository,
    Scope,
    TrustedIssuer,
    User,
    Workspace,
)

TOKEN_PREFIX = "rgy_"
TOKEN_USERNAMES = ("__token__",)  # as with the public index: the token alone identifies its user


@dataclass(frozen=True)
class Principal:
    kind: Literal["operator", "anonymous", "user", "pipeline", "witness", "replica"]
    email: str | None = None
    name: str = ""
    scope: Scope | None = None  # a token's ceiling; None: no ceiling (the operator)
    token_id: str | None = None
    # A pipeline (or a token minted for one) may act only on packages of this repository.
    workspace: str | None = None
    repository: str | None = None
    pipeline: PipelineRun | None = None
    expires: float | None = None  # unix time after which the credentials no longer hold
    session: str | None = None  # a web session's id (its scope is that of the token it was signed in with)

    @property
    def actor(self) -> str:
        if self.kind == "pipeline" and self.pipeline:
            return f"pipeline:{self.pipeline.repository_uuid}"
        return self.email or self.kind

    @property
    def author(self) -> tuple[str, str]:
        """The git author for commits this principal causes."""
        if self.kind == "pipeline" and self.pipeline:
            bare = self.pipeline.repository_uuid.strip("{}")
            return (self.name or f"Bitbucket Pipelines {self.pipeline.repository_uuid}",
                    f"pipelines+{bare}@bitbucket.invalid")
        email = self.email or f"{self.kind}@localhost"
        # (a name an older release accepted but a git author line can't hold: the email stands in)
        return (self.name if self.name and bounds.is_person_name(self.name) else email, email)

    def provenance(self, channel: model.Channel) -> model.Provenance:
        return model.Provenance(
            at=model.now(), by=self.actor, channel=channel, token=self.token_id, pipeline=self.pipeline
        )


ANONYMOUS = Principal(kind="anonymous", name="anonymous")


def may_fetch_ledger(who: Principal) -> bool:
    """The whole ledger names every workspace's packages and people: the operator's, witnesses' and replicas'."""
    return who.kind in ("operator", "witness", "replica")


def may_read_blobs(who: Principal) -> bool:
    """Files by sha256, whatever package they belong to: what a replica without the bucket fetches."""
    return who.kind in ("operator", "replica")


def operator(email: str | None = None, name: str | None = None) -> Principal:
    """The person running the CLI on the server: the data directory is theirs, so no role applies."""
    email = names.email(email) if email else "operator@localhost"
    return Principal(kind="operator", email=email, name=name or email)


# --- API tokens ----------------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """(secret, sha256): 32 random bytes, shown once; only the hash is ever stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, token_hash(secret)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token(snap: Snapshot, username: str, secret: str) -> Principal:
    """The user an API token belongs to, or a refusal that says why it isn't accepted: a 401 (with
    WWW-Authenticate, as every 401 is answered), the status clients report as wrong credentials (pip
    then says "401 Error, Credentials not correct"; a 403 it passes over in silence)."""
    record = snap.get(layout.token(token_hash(secret)), ApiToken)
    name = username.strip().lower()
    if record is None or (name not in TOKEN_USERNAMES and name != record.user):
        raise Unauthorized(
            "Invalid credentials: use your email as the username and an API token as the password "
            "(create one with `registry token create EMAIL`)."
        )
    if record.revoked is not None:
        raise Unauthorized(f"API token {record.id} was revoked; create a new one.")
    if record.expires is not None and record.expires <= datetime.now(UTC):
        raise Unauthorized(f"API token {record.id} expired at {record.expires:%Y-%m-%d %H:%M} UTC; create a new one.")
    expires = record.expires.timestamp() if record.expires else None
    if record.repository is not None:  # minted for a pipeline step: acts as that pipeline
        return Principal(kind="pipeline", name=f"Bitbucket Pipelines {record.workspace}/{record.repository}",
                         scope=record.scope, token_id=record.id, workspace=record.workspace,
                         repository=record.repository, pipeline=record.pipeline, expires=expires)
    user = snap.get(layout.user(record.user), User)
    if user is None:
        raise Unauthorized(f"The user of API token {record.id} no longer exists.")
    refuse_disabled(user)
    if record.scope in ("witness", "replica"):  # may fetch the ledger (and, a replica, files): no role anywhere
        return Principal(kind=record.scope, email=user.email, name=user.name, scope=record.scope, token_id=record.id,
                         expires=expires)
    return Principal(kind="user", email=user.email, name=user.name, scope=record.scope, token_id=record.id,
                     expires=expires)


def refuse_disabled(user: User) -> None:
    """Refuse a disabled person's credentials (API tokens, web sessions, sign-in links), saying so,
    why, and who can switch the account back on."""
    if user.disabled is not None:
        why = f": {user.disabled_reason}" if user.disabled_reason else ""
        raise Forbidden(f"The account {user.email} is disabled (since {user.disabled.at:%Y-%m-%d %H:%M} UTC, by "
                        f"{user.disabled.by}{why}); ask the registry's operator to enable it "
                        f"(`registry user enable {user.email}`).")


# --- pipelines -----------------------------------------------------------------------------------


def trust_of(snap: Snapshot, ws: str, issuer: str) -> PipelinesTrust | None:
    """The workspace's trust of ``issuer`` (its record, or an older ledger's one trust if that names
    it); None if it doesn't trust it. Two lookups at most: a trust is found by its issuer's URL."""
    record = snap.get(layout.trusted_issuer(ws, issuer), TrustedIssuer)
    if record is None:
        legacy = snap.get(layout.trust(ws), PipelinesTrust)
        if legacy is not None and legacy.issuer.rstrip("/") == issuer.rstrip("/"):
            return legacy
    return record


def workspace_trusts(snap: Snapshot, ws: str) -> list[PipelinesTrust]:
    """Every issuer the workspace trusts, by URL. A listing of its trusts and a lookup."""
    found: dict[str, PipelinesTrust] = {t.issuer: t for t in snap.records(layout.trusts_dir(ws), TrustedIssuer)}
    legacy = snap.get(layout.trust(ws), PipelinesTrust)
    if legacy is not None:
        found.setdefault(legacy.issuer.rstrip("/"), legacy)
    return [found[k] for k in sorted(found)]


def trusts_for(snap: Snapshot, issuer: str) -> list[tuple[str, Trust]]:
    """The workspaces that trust ``issuer``, with what each accepts. Two lookups per workspace."""
    found = []
    for ws in snap.names("workspaces"):
        record = trust_of(snap, ws, issuer)
        if record is None:
            continue
        workspace = snap.get(layout.workspace(ws), Workspace)
        if workspace is None:  # (a trust is kept under its workspace: never without one)
            continue
        found.append((ws, Trust(
            issuer=record.issuer, workspace_uuid=workspace.uuid, audiences=tuple(record.audiences),
            jwks=json.dumps(record.jwks, sort_keys=True) if record.jwks else None,
            algorithms=tuple(record.algorithms),
        )))
    return found


def verify_pipeline_token(verifier: Verifier, token: str,
                          candidates: list[tuple[str, Trust]]) -> tuple[str, PipelineClaims]:
    """(workspace, claims) for a step's token; blocking (may fetch keys): run it in a thread."""
    if not candidates:
        raise TokenRejected("No workspace of this registry trusts the token's issuer; a workspace admin can add it "
                            "with `registry trust WS --issuer URL`.", "invalid-publisher")
    reasons = []
    for ws, trust in candidates:
        try:
            return ws, verifier.verify(token, trust)
        except TokenRejected as exc:
            reasons.append(exc)
    raise reasons[0]


def pipeline_principal(snap: Snapshot, ws: str, claims: PipelineClaims) -> Principal:
    repository = next((r for r in snap.records(layout.repositories_dir(ws), Repository)
                       if r.uuid == claims.repositoryUuid), None)
    if repository is None:
        raise Forbidden(
            f"The pipeline's repository {claims.repositoryUuid} is not registered in workspace {ws}: bind the "
            f"repository it is to that UUID with `registry repo uuid {ws}/SLUG {claims.repositoryUuid}`, or create "
            f"it with `registry repo create {ws}/SLUG --project KEY --uuid {claims.repositoryUuid}`."
        )
    run = PipelineRun(
        issuer=claims.iss, subject=claims.sub, workspace_uuid=claims.workspaceUuid,
        repository_uuid=claims.repositoryUuid, pipeline_uuid=claims.pipelineUuid, step_uuid=claims.stepUuid,
        branch=claims.branchName, environment_uuid=claims.deploymentEnvironmentUuid,
    )
    return Principal(kind="pipeline", name=f"Bitbucket Pipelines {ws}/{repository.slug}", scope="write",
                     workspace=ws, repository=repository.slug, pipeline=run, expires=float(claims.exp))
