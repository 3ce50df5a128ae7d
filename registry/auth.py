"""Who is asking, and what they may do on a repository.

A `Principal` comes from credentials (HTTP Basic with an email and an API token; later, a pipeline's
OIDC token) or is the local operator running the CLI. Resolving a token is one SHA-256 and one tree
lookup; results are cached per ledger commit, so a revocation takes effect on the next request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from . import model
from .errors import Forbidden, NotFound, Unauthorized
from .ledger import Snapshot, layout
from .model import ApiToken, PipelineRun, Project, Repository, Role, Scope, User, Workspace

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
    user = snap.get(layout.user(record.user), User)
    if user is None:
        raise Forbidden(f"The user of API token {record.id} no longer exists.")
    return Principal(kind="user", email=user.email, name=user.name, scope=record.scope, token_id=record.id)


def parse_basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
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


class Authenticator:
    """Authorization header -> Principal, cached per (header, ledger commit)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._cache: dict[str, tuple[str, Principal | Exception]] = {}
        self._max = max_entries

    def principal(self, snap: Snapshot, authorization: str | None) -> Principal:
        if not authorization:
            return ANONYMOUS
        hit = self._cache.get(authorization)
        if hit is None or hit[0] != snap.commit_id:
            try:
                result: Principal | Exception = self._resolve(snap, authorization)
            except (Unauthorized, Forbidden) as exc:
                result = exc
            if len(self._cache) >= self._max:
                self._cache.clear()
            hit = self._cache[authorization] = (snap.commit_id, result)
        if isinstance(hit[1], Exception):
            raise hit[1]
        return hit[1]

    def _resolve(self, snap: Snapshot, authorization: str) -> Principal:
        username, password = parse_basic(authorization)
        return check_token(snap, username, password)


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
