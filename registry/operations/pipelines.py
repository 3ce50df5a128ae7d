"""Bitbucket Pipelines in the registry: the issuer a workspace trusts, per-package publish policies,
and the exchange of a step's OIDC token for a short-lived registry token."""

from __future__ import annotations

import dataclasses
import urllib.parse
from datetime import timedelta

import jwt
import msgspec

from .. import bounds, layout, model, names
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Forbidden, Invalid, NotFound
from ..identity import Principal, new_token, trust_of, workspace_trusts
from ..ledger import Change, Snapshot
from ..model import ApiToken, Channel, Package
from ..permissions import repository_context
from ._common import make_change, replace, require_workspace_admin
from .packages import package_for

MINTED_TOKEN_LIFETIME = timedelta(minutes=15)


def set_publish_policy(reg: Registry, who: Principal, channel: Channel, ws: str, name: str,
                       branches: list[str], environments: list[str]) -> Package:
    canonical, _ = names.package_name(name)
    environments = [model.brace_uuid(e) for e in bounds.count(environments, bounds.ENVIRONMENTS, "environments")]
    branches = [names.branch_glob(g) for g in bounds.count(branches, bounds.BRANCH_GLOBS, "branch patterns")]

    def build(snap: Snapshot) -> Change:
        package = package_for(snap, who, ws, canonical, "admin", f"set the publish policy of {canonical!r}")
        policy = None
        if branches or environments:
            policy = model.PublishPolicy(branches=sorted(set(branches)), environments=sorted(set(environments)),
                                         updated=who.provenance(channel))
        rules = "; ".join(filter(None, [
            f"branches {', '.join(policy.branches)}" if policy and policy.branches else "",
            f"environments {', '.join(policy.environments)}" if policy and policy.environments else "",
        ])) or "any pipeline of the repository"
        updated = replace(package, publish_policy=policy)
        return make_change(who, channel, Action.SET_POLICY, f"set publish policy of {canonical} in {ws}: {rules}",
                           {layout.package(ws, canonical): updated}, (T.WORKSPACE, ws), (T.PACKAGE, canonical),
                           result=updated)

    return reg.transact(build).result  # (the record written)


def set_trust(reg: Registry, who: Principal, channel: Channel, ws: str, issuer: str,
              audiences: list[str] | None = None, jwks: dict | None = None) -> model.TrustedIssuer:
    """Trust ``issuer`` (add it to the workspace's issuers, or set again what it is trusted for):
    one commit, touching that issuer's record only (and an older ledger's one trust of the same
    issuer, which moves to its own record)."""
    issuer = _issuer_url(issuer)
    audiences = sorted({names.audience(a) for a in audiences or [] if a.strip()})
    bounds.count(audiences, bounds.AUDIENCES, "audiences (Bitbucket's limit)")
    if jwks is not None:
        _check_jwks(jwks)

    def build(snap: Snapshot) -> Change:
        workspace = require_workspace_admin(snap, who, ws, f"configure pipeline trust for {ws}")
        before = trust_of(snap, ws, issuer)
        record = model.TrustedIssuer(issuer=issuer, audiences=audiences, jwks=jwks, updated=who.provenance(channel))
        writes: dict[str, model.Record | None] = {layout.trusted_issuer(ws, issuer): record}
        if before is not None and not isinstance(before, model.TrustedIssuer):
            writes[layout.trust(ws)] = None
        accepted = ", ".join(audiences) or f"the default audience of workspace {workspace.uuid}"
        keys = "keys given inline" if jwks else "keys from the issuer's discovery document"
        verb = "trust pipelines" if before is None else "trust pipelines again (updated)"
        return make_change(who, channel, Action.TRUST,
                           f"{verb} of {ws} from {issuer} ({keys}; audiences: {accepted})",
                           writes, (T.WORKSPACE, ws), (T.ISSUER, issuer), result=record)

    return reg.transact(build).result  # (the record written)


def remove_trust(reg: Registry, who: Principal, channel: Channel, ws: str,
                 issuer: str | None = None) -> model.PipelinesTrust:
    """Stop trusting ``issuer`` (None: the workspace's only one), as one commit; the others stay."""
    if issuer is not None:
        issuer = bounds.one_line(issuer, bounds.ISSUER, "Issuer URLs").strip().rstrip("/")

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, f"configure pipeline trust for {ws}")
        trusted = workspace_trusts(snap, ws)
        listed = ", ".join(t.issuer for t in trusted)
        if not trusted:
            raise NotFound(f"Workspace {ws} trusts no pipeline issuer.")
        if issuer is None and len(trusted) > 1:
            raise Invalid(f"Workspace {ws} trusts {len(trusted)} issuers ({listed}): name the one to stop trusting, "
                          f"`registry untrust {ws} --issuer URL`.")
        record = trust_of(snap, ws, issuer) if issuer is not None else trusted[0]
        if record is None:
            raise NotFound(f"Workspace {ws} doesn't trust issuer {issuer}; it trusts {listed}.")
        path = (layout.trusted_issuer(ws, record.issuer) if isinstance(record, model.TrustedIssuer)
                else layout.trust(ws))
        return make_change(who, channel, Action.UNTRUST, f"stop trusting pipelines of {ws} from {record.issuer}",
                           {path: None}, (T.WORKSPACE, ws), (T.ISSUER, record.issuer), result=record)

    return reg.transact(build).result  # (the record removed)


def _issuer_url(value: str) -> str:
    value = bounds.one_line(value, bounds.ISSUER, "Issuer URLs")
    try:
        parsed = urllib.parse.urlsplit(value)
        loopback = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    except ValueError as exc:  # (a bracketed host that is no IPv6 address, say)
        raise Invalid(f"Invalid issuer {bounds.shown(value)}: {exc}.") from None
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise Invalid(f"Invalid issuer {value!r}: use an https:// URL (http:// only for a local issuer on loopback).")
    if parsed.query or parsed.fragment or not parsed.hostname:
        raise Invalid(f"Invalid issuer {value!r}: the issuer is a plain URL, e.g. "
                      "https://api.bitbucket.org/2.0/workspaces/WORKSPACE/pipelines-config/identity/oidc")
    return value.strip().rstrip("/")


def _check_jwks(jwks: dict) -> None:
    try:
        size = len(msgspec.json.encode(jwks))
    except (TypeError, RecursionError, msgspec.EncodeError):
        raise Invalid('Invalid JWKS: expected a JSON object {"keys": [...]}.') from None
    if size > bounds.JWKS_BYTES:
        raise Invalid(f"A JWKS is at most {bounds.JWKS_BYTES} bytes (an issuer's public keys); this one has {size}.")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise Invalid('Invalid JWKS: expected a JSON object {"keys": [...]} with at least one key.')
    for key in keys:
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            named = repr(key.get("kid", "?") if isinstance(key, dict) else key)
            raise Invalid(f"Invalid JWKS: key {named}: {exc}") from None
        if "d" in key or "p" in key:
            raise Invalid("Invalid JWKS: it contains a private key; give only the public keys.")


def mint_pipeline_token(reg: Registry, who: Principal, reported: model.ReportedRunContext | None,
                        lifetime: timedelta = MINTED_TOKEN_LIFETIME,
                        scope: model.SessionScope = "write") -> tuple[str, ApiToken]:
    """A short-lived registry token for a verified pipeline step, bound to its repository; ``scope``
    read: one that may only read and install (what its pipeline reads: its own repository, and those
    that let its pipelines read them), for a step that installs and must not publish.

    The exchange is a commit like any other token's creation: the ledger shows which run minted
    which token, and every publish made with it carries the run (with what it reported)."""
    ws, repository = who.workspace, who.repository
    if who.kind != "pipeline" or who.pipeline is None or ws is None or repository is None:
        raise Forbidden("Only a verified Bitbucket Pipelines token can be exchanged for a registry token.")
    if scope not in ("read", "write"):
        raise Invalid(f"Invalid scope {bounds.shown(str(scope))}: a minted token's scope is read or write.")
    secret, digest = new_token()
    provenance = who.provenance("api")
    run = replace(who.pipeline, reported=reported, url=run_url(ws, repository, reported))
    record = ApiToken(
        id=digest[:16], user=who.actor, sha256=digest, scope=scope, label="minted for a pipeline step",
        created=replace(provenance, pipeline=run), expires=provenance.at + lifetime,
        workspace=ws, repository=repository, pipeline=run,
    )

    def build(snap: Snapshot) -> Change:
        repository_context(snap, ws, repository)
        minted_by = dataclasses.replace(who, pipeline=run)
        return make_change(minted_by, "api", Action.MINT_TOKEN,
                           f"mint token {record.id} for pipeline {run.pipeline_uuid} of {ws}/{repository} "
                           f"({'read scope, ' if scope == 'read' else ''}expires {record.expires:%H:%M:%S} UTC)",
                           {layout.token(digest): record},
                           (T.WORKSPACE, ws), (T.REPOSITORY, repository), (T.TOKEN, record.id), (T.SCOPE, scope))

    reg.transact(build)
    return secret, record


def run_url(ws: str | None, repository: str | None, reported: model.ReportedRunContext | None) -> str | None:
    """The run's page on Bitbucket, when the step reported its build number."""
    if reported is None or not reported.build_number or not reported.build_number.isdigit():
        return None
    full_name = reported.repo_full_name or f"{ws}/{repository}"
    return f"https://bitbucket.org/{full_name}/pipelines/results/{reported.build_number}"
