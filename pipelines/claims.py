"""The claims of a Bitbucket Pipelines step's OIDC token (BITBUCKET_STEP_OIDC_TOKEN).

Claim names are Bitbucket's own (camelCase). UUIDs arrive wrapped in braces, except inside the
default audience; they are normalised to `{lowercase}` whatever the input, so comparisons never
depend on how a UUID was written.
"""

from __future__ import annotations

import uuid as uuidlib

import msgspec


def brace_uuid(value: str) -> str:
    """`{8-4-4-4-12}` in lowercase, from a UUID with or without braces; ValueError otherwise."""
    raw = value.strip()
    if raw.startswith("{") and raw.endswith("}"):
        raw = raw[1:-1]
    parsed = uuidlib.UUID(raw)
    if str(parsed) != raw.lower():
        raise ValueError(f"not a UUID: {value!r}")
    return f"{{{parsed}}}"


def bare_uuid(value: str) -> str:
    return brace_uuid(value)[1:-1]


def default_audience(workspace_uuid: str) -> str:
    """The audience Bitbucket puts in every token unless the step asks for custom ones."""
    return f"ari:cloud:bitbucket::workspace/{bare_uuid(workspace_uuid)}"


class PipelineClaims(msgspec.Struct, frozen=True, kw_only=True):
    iss: str
    aud: str | list[str]
    sub: str
    exp: int
    iat: int
    workspaceUuid: str  # noqa: N815 (Bitbucket's claim names)
    repositoryUuid: str  # noqa: N815
    pipelineUuid: str  # noqa: N815
    stepUuid: str  # noqa: N815
    branchName: str | None = None  # noqa: N815
    deploymentEnvironmentUuid: str | None = None  # noqa: N815

    @classmethod
    def from_payload(cls, payload: dict) -> PipelineClaims:
        """Typed claims with every UUID normalised; ValueError says which claim is wrong."""
        try:
            claims = msgspec.convert(payload, cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"the token's claims are not a Bitbucket Pipelines step's: {exc}") from None
        fields = ("workspaceUuid", "repositoryUuid", "pipelineUuid", "stepUuid", "deploymentEnvironmentUuid")
        normalised = {}
        for name in fields:
            value = getattr(claims, name)
            if value is None:
                continue
            try:
                normalised[name] = brace_uuid(value)
            except ValueError:
                raise ValueError(f"claim {name} is not a UUID: {value!r}") from None
        return msgspec.structs.replace(claims, **normalised)

    @property
    def audiences(self) -> list[str]:
        return [self.aud] if isinstance(self.aud, str) else list(self.aud)
