"""Who is asking, and what they may do on a repository.

A `Principal` comes from credentials (HTTP Basic with an email and an API token; later, a pipeline's
OIDC token) or is the local operator running the CLI. Resolving a token is one SHA-256 and one tree
lookup; results are cached per ledger commit, so a revocation takes effect on the next request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import anyio

from pipelines.claims import PipelineClaims
from pipelines.verify import TokenRejected, Trust, Verifier, is_jwt, unverified_issuer

from . import model
from .errors import Forbidden, NotFound, Unauthorized
from .ledger import Snapshot, layout
from .model import ApiToken, PipelineRun, PipelinesTrust, Project, Repository, Role, Scope, User, Workspace

TOKEN_PREFIX = "rgy_"
TOKEN_USERNAMES = ("__token__",)  # as with the public index: the token alone identifies its user


@dataclass(frozen=True)
class Principal:
    kind: Literal["operator", "anonymous", "user", "pipeline"]
    email: str | None = None
    name: str = ""
    scope: Scope | None = None  # a token's ceiling; None: no ceiling (the operator)
    token_id: str | None = None
    # A pipeline (or a token minted for one) may act only on packages of this repository.
    workspace: str | None = None
    repository: str | None = None
    pipeline: PipelineRun | None = None
    expires: float | None = None  # unix time after which the credentials no longer hold

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
            return (self.name or f"Bitbucket Pipelines {self.pipeline.repository_uuid}", f"pipelines+{bare}@bitbucket.invalid")
        return (self.name or self.email or self.kind, self.email or f"{self.kind}@localhost")

    def provenance(self, channel: model.Channel) -> model.Provenance:
        return model.Provenance(
            at=model.now(), by=self.actor, channel=channel, token=self.token_id, pipeline=self.pipeline
        )


ANONYMOUS = Principal(kind="anonymous", name="anonymous")


def operator(email: str | None = None, name: str | None = None) -> Principal:
    """The person running the CLI on the server: the data directory is theirs, so no role applies."""
    email = model.email(email) if email else "operator@localhost"
    return Principal(kind="operator", email=email, name=name or email)


# --- API tokens ----------------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """(secret, sha256): 32 random bytes, shown once; only the hash is ever stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, token_hash(secret)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token(snap: Snapshot, username: str, secret: str) -> Principal:
    """The user an API token belongs to, or a refusal that says why it isn't accepted."""
    record = snap.get(layout.token(token_hash(secret)), ApiToken)
    name = username.strip().lower()
    if record is None or (name not in TOKEN_USERNAMES and name != record.user):
        raise Forbidden(
            "Invalid credentials: use your email as the username and an API token as the password "
            "(create one with `registry token create EMAIL`)."
        )
    if record.revoked is not None:
        raise Forbidden(f"API token {record.id} was revoked; create a new one.")
    if record.expires is not None and record.expires <= datetime.now(UTC):
        raise Forbidden(f"API token {record.id} expired at {record.expires:%Y-%m-%d %H:%M} UTC; create a new one.")
    expires = record.expires.timestamp() if record.expires else None
    if record.repository is not None:  # minted for a pipeline step: acts as that pipeline
        return Principal(kind="pipeline", name=f"Bitbucket Pipelines {record.workspace}/{record.repository}",
                         scope=record.scope, token_id=record.id, workspace=record.workspace,
                         repository=record.repository, pipeline=record.pipeline, expires=expires)
    user = snap.get(layout.user(record.user), User)
    if user is None:
        raise Forbidden(f"The user of API token {record.id} no longer exists.")
    return Principal(kind="user", email=user.email, name=user.name, scope=record.scope, token_id=record.id,
                     expires=expires)


def parse_authorization(header: str) -> tuple[str, str]:
    """(username, secret) from HTTP Basic, or from a Bearer token (which has no username)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return "__token__", value.strip()
    if scheme.lower() != "basic":
        raise Unauthorized("Unsupported authorization scheme: use HTTP Basic with your email and an API token.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Malformed HTTP Basic credentials.") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        # pip allows a single-part credential; we take it as a token with no username.
        username, password = "__token__", username
    return username, password


# --- pipelines -----------------------------------------------------------------------------------


def trusts_for(snap: Snapshot, issuer: str) -> list[tuple[str, Trust]]:
    """The workspaces that trust ``issuer``, with what each accepts."""
    found = []
    for ws in snap.names("workspaces"):
        record = snap.get(layout.trust(ws), PipelinesTrust)
        if record is None or record.issuer.rstrip("/") != issuer.rstrip("/"):
            continue
        workspace = snap.get(layout.workspace(ws), Workspace)
        found.append((ws, Trust(
            issuer=record.issuer, workspace_uuid=workspace.uuid, audiences=tuple(record.audiences),
            jwks=json.dumps(record.jwks, sort_keys=True) if record.jwks else None,
            algorithms=tuple(record.algorithms),
        )))
    return found


def verify_pipeline_token(verifier: Verifier, token: str, candidates: list[tuple[str, Trust]]) -> tuple[str, PipelineClaims]:
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
            f"The pipeline's repository {claims.repositoryUuid} is not registered in workspace {ws}: create it with "
            f"`registry repo create {ws}/SLUG --project KEY --uuid {claims.repositoryUuid}`."
        )
    run = PipelineRun(
        issuer=claims.iss, subject=claims.sub, workspace_uuid=claims.workspaceUuid,
        repository_uuid=claims.repositoryUuid, pipeline_uuid=claims.pipelineUuid, step_uuid=claims.stepUuid,
        branch=claims.branchName, environment_uuid=claims.deploymentEnvironmentUuid,
    )
    return Principal(kind="pipeline", name=f"Bitbucket Pipelines {ws}/{repository.slug}", scope="write",
                     workspace=ws, repository=repository.slug, pipeline=run, expires=float(claims.exp))


class Authenticator:
    """Authorization header -> Principal, cached per (header, ledger commit) until it expires.

    API tokens resolve in microseconds on the caller's thread; a pipeline's OIDC token is verified
    in a worker thread, since the issuer's keys may have to be fetched."""

    def __init__(self, verifier: Verifier | None = None, max_entries: int = 10_000) -> None:
        self.verifier = verifier or Verifier()
        self._cache: dict[str, tuple[str, Principal | Exception]] = {}
        self._max = max_entries

    async def principal(self, snap: Snapshot, authorization: str | None) -> Principal:
        if not authorization:
            return ANONYMOUS
        hit = self._cache.get(authorization)
        if hit is not None and hit[0] == snap.commit_id:
            result = hit[1]
            if isinstance(result, Exception):
                raise result
            if result.expires is None or result.expires > time.time():
                return result
        try:
            result = await self._resolve(snap, authorization)
        except (Unauthorized, Forbidden) as exc:
            result = exc
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[authorization] = (snap.commit_id, result)
        if isinstance(result, Exception):
            raise result
        return result

    async def _resolve(self, snap: Snapshot, authorization: str) -> Principal:
        username, secret = parse_authorization(authorization)
        if not is_jwt(secret):
            return check_token(snap, username, secret)
        try:
            candidates = trusts_for(snap, unverified_issuer(secret))
            ws, claims = await anyio.to_thread.run_sync(verify_pipeline_token, self.verifier, secret, candidates)
        except TokenRejected as exc:
            raise Forbidden(f"Pipeline token refused: {exc.reason}") from None
        return pipeline_principal(snap, ws, claims)


# --- roles ---------------------------------------------------------------------------------------


def repository_context(snap: Snapshot, ws: str, repo: str) -> tuple[Workspace, Project | None, Repository]:
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist.")
    repository = snap.get(layout.repository(ws, repo), Repository)
    if repository is None:
        raise NotFound(f"Repository {ws}/{repo} does not exist.")
    project = snap.get(layout.project(ws, repository.project), Project)
    return workspace, project, repository


def role_on(snap: Snapshot, who: Principal, ws: str, repo: str) -> Role | None:
    """The principal's effective role on a repository, capped by its token's scope."""
    workspace, project, repository = repository_context(snap, ws, repo)
    if who.kind == "operator":
        return "admin"
    if who.kind == "pipeline" or who.repository is not None:
        # A pipeline acts for its own repository only, and never administers it.
        own = (who.workspace, who.repository) == (ws, repo)
        role: Role | None = "write" if own else ("read" if repository.public else None)
    else:
        role = model.effective_role(who.email, workspace, project, repository)
    if who.scope == "read" and model.ROLE_RANK[role] > model.ROLE_RANK["read"]:
        role = "read"
    return role


def role_on_workspace(snap: Snapshot, who: Principal, ws: str) -> Role | None:
    if who.kind == "operator":
        return "admin"
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist.")
    if who.kind == "user" and who.email in workspace.admins and who.scope != "read":
        return "admin"
    return None


def require_read(snap: Snapshot, who: Principal, package: model.Package) -> Repository:
    """The package's repository, if ``who`` may read it; 401 for strangers, 403 for the rest."""
    ws, repo = package.workspace, package.repository
    if who.kind == "anonymous" and not model.at_least(role_on(snap, who, ws, repo), "read"):
        raise Unauthorized(f"Authentication required: use your email and an API token for workspace {ws}.")
    require(snap, who, ws, repo, "read", f"read package {package.name!r}")
    return snap.get(layout.repository(ws, repo), Repository)


def require(snap: Snapshot, who: Principal, ws: str, repo: str, need: Role, doing: str) -> None:
    """Refuse unless ``who`` holds ``need`` on the repository; the message names what is missing."""
    have = role_on(snap, who, ws, repo)
    if model.at_least(have, need):
        return
    if who.kind == "anonymous":
        raise Unauthorized(f"Authentication required to {doing}: use your email and an API token.")
    scope_note = " (your token has read scope only)" if who.scope == "read" and need != "read" else ""
    raise Forbidden(
        f"{who.actor} may not {doing}: it needs {need} permission on repository {ws}/{repo}"
        f"{scope_note}; ask a repository or workspace admin."
    )
