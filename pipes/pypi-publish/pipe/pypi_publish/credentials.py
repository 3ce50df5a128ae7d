"""Which credentials the pipe publishes with, and what it knows about its own pipeline run.

With the step's OIDC token the pipe always exchanges it for a short-lived registry token: only then
does the registry record the run context the step reports (build number, commit, tag, repository),
and the registry's answer to the exchange is the clearest early failure for a misconfigured trust."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .console import Console
from .registry_api import Basic, RegistryRefusal, call
from .variables import Config, ConfigError, raw

OIDC_TOKEN = "BITBUCKET_STEP_OIDC_TOKEN"
SECRET_ENV = (OIDC_TOKEN, "BITBUCKET_PACKAGES_TOKEN")  # secrets Pipelines provides, besides PASSWORD
REFRESH_MARGIN = 120  # seconds: mint again rather than start an upload with a token about to expire

# What the registry accepts as reported context; a value that doesn't fit is left out, never fatal.
CONTEXT = {
    "build_number": ("BITBUCKET_BUILD_NUMBER", r"[0-9]{1,20}"),
    "commit": ("BITBUCKET_COMMIT", r"[0-9a-f]{7,64}"),
    "tag": ("BITBUCKET_TAG", r"[^\x00-\x1f\x7f]{1,255}"),
    "repo_full_name": ("BITBUCKET_REPO_FULL_NAME", r"[A-Za-z0-9_.-]{1,62}/[A-Za-z0-9_.-]{1,62}"),
    # (its name; retention policies can protect what a run into it published)
    "deployment_environment": ("BITBUCKET_DEPLOYMENT_ENVIRONMENT", r"[^\x00-\x1f\x7f]{1,255}"),
}


def brace_uuid(value: str | None) -> str | None:
    """`{lowercase}` whatever the input's braces and case, so UUIDs compare equal."""
    if not value:
        return None
    return "{" + value.strip().strip("{}").lower() + "}"


@dataclass(frozen=True)
class PipelineRun:
    """This step as its OIDC token names it (decoded, not verified: the registry verifies)."""

    pipeline_uuid: str | None
    step_uuid: str | None
    repository_uuid: str | None
    branch: str | None

    @classmethod
    def from_jwt(cls, token: str) -> PipelineRun:
        parts = token.split(".")
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (IndexError, ValueError):
            payload = None
        if len(parts) != 3 or not isinstance(payload, dict):
            raise ConfigError(f"{OIDC_TOKEN} is not a JWT; is `oidc: true` set on the step?")
        return cls(brace_uuid(payload.get("pipelineUuid")), brace_uuid(payload.get("stepUuid")),
                   brace_uuid(payload.get("repositoryUuid")), payload.get("branchName"))


@dataclass
class Credentials:
    username: str
    password: str
    description: str
    run: PipelineRun | None = None  # known only with OIDC
    expires: float | None = None
    _renew: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def basic(self) -> Basic:
        return Basic(self.username, self.password)

    def fresh(self) -> Credentials:
        """Mint again when a minted token is about to expire (a long build can outlast it)."""
        if self._renew and self.expires and self.expires - time.time() < REFRESH_MARGIN:
            self._renew()
        return self


def reported_context(env: dict[str, str], console: Console) -> dict[str, str]:
    context = {}
    for key, (name, pattern) in CONTEXT.items():
        value = raw(env, name)
        if value is None:
            continue
        value = value.lower() if key == "commit" else value
        if re.fullmatch(pattern, value):
            context[key] = value
        else:
            console.warn(f"{name}={value!r} is not what the registry accepts as {key}; not reported.")
    return context


def from_oidc(cfg: Config, env: dict[str, str], console: Console, scope: str = "write") -> Credentials:
    token = raw(env, OIDC_TOKEN)
    if token is None:
        raise ConfigError(f"AUTH=oidc needs the step's OIDC token ({OIDC_TOKEN}): add `oidc: true` to the step.")
    run = PipelineRun.from_jwt(token)
    for name, mine in (("BITBUCKET_PIPELINE_UUID", run.pipeline_uuid), ("BITBUCKET_STEP_UUID", run.step_uuid)):
        said = brace_uuid(raw(env, name))
        if said and mine and said != mine:
            console.warn(f"{name} is {said} but the step's OIDC token is for {mine}; the token's run is recorded.")
    context = reported_context(env, console)
    creds = Credentials("__token__", "", f"the step's OIDC token (pipeline {run.pipeline_uuid}, step {run.step_uuid})",
                        run=run)

    def mint() -> None:
        url = f"{cfg.origin}/_/oidc/mint-token"
        try:
            answer = call(console, "POST", url, body={"token": token, "context": context, "scope": scope})
        except RegistryRefusal as exc:
            reason = f"The registry refused the step's OIDC token: {exc.reason}"
            raise RegistryRefusal(exc.status, reason, url) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
            raise RegistryRefusal(200, "The registry's answer to the token exchange has no token.", url)
        creds.password, creds.expires = answer["token"], float(answer.get("expires") or 0) or None
        console.add_secret(creds.password, creds.username)

    creds._renew = mint
    mint()
    shown = ", ".join(f"{k} {v}" for k, v in context.items()) or "nothing (no BITBUCKET_* run variables)"
    console.info(f"Exchanged the step's OIDC token for a short-lived {scope} registry token; reported run context "
                 f"(unverified): {shown}")
    return creds


def from_variables(cfg: Config, env: dict[str, str]) -> Credentials:
    if raw(env, "BITBUCKET_PACKAGES_TOKEN"):
        username = raw(env, "BITBUCKET_PACKAGES_USERNAME") or "__token__"
        return Credentials(username, raw(env, "BITBUCKET_PACKAGES_TOKEN"),
                           f"BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN (user {username})")
    if cfg.password:
        username = cfg.username or "__token__"
        return Credentials(username, cfg.password, f"USERNAME / PASSWORD (user {username})")
    raise ConfigError("No credentials: add `oidc: true` to the step, or set BITBUCKET_PACKAGES_USERNAME / "
                      "BITBUCKET_PACKAGES_TOKEN, or USERNAME / PASSWORD.")


def resolve(cfg: Config, env: dict[str, str], console: Console) -> Credentials:
    """AUTH=auto: the OIDC token when the step has one, else the token variables."""
    use_oidc = cfg.auth == "oidc" or (cfg.auth == "auto" and raw(env, OIDC_TOKEN) is not None)
    creds = from_oidc(cfg, env, console) if use_oidc else from_variables(cfg, env)
    console.add_secret(creds.password, creds.username)
    return creds
