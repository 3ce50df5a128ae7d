"""Verify a Bitbucket Pipelines OIDC token against the trust its workspace configured.

Trust names the issuer (or carries its key set, for sites that can't reach it), the audiences to
accept and the workspace whose steps may present tokens. Keys come from the issuer's discovery
document's `jwks_uri` and are cached; a token signed with an unknown `kid` triggers one refetch, at
most every `refetch_after` seconds, so a rotated key is picked up without letting garbage tokens
hammer the issuer. Only the algorithms trust allows are accepted (RS256 by default): `none`, HMAC
with a public key and other algorithm confusions are refused before any key is touched.

`verify` blocks on the network when it must fetch: call it from a worker thread.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt

from .claims import PipelineClaims, brace_uuid, default_audience

DEFAULT_ALGORITHMS = ("RS256",)


class TokenRejected(Exception):
    """Why a token is not accepted, in words a pipeline author can act on."""

    def __init__(self, reason: str, code: str = "invalid-token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Trust:
    issuer: str
    workspace_uuid: str
    audiences: tuple[str, ...] = ()  # empty: Bitbucket's default audience for the workspace
    jwks: str | None = None  # a JSON Web Key Set given directly (air-gapped sites), else fetched
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        return self.audiences or (default_audience(self.workspace_uuid),)


def is_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


def unverified_issuer(token: str) -> str:
    """The `iss` a token claims, to find which trust to verify it against. Not a verification."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("The token is not a well-formed JWT.", "invalid-payload") from None
    issuer = payload.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise TokenRejected("The token has no issuer (iss).", "invalid-payload")
    return issuer


def _fetch_json(url: str, timeout: float) -> dict:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "bitbucket-pypi-registry"})
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read(2 * 2**20))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a key set is fetched from where discovery says, only
        return None


@dataclass
class _KeySet:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float
    single: jwt.PyJWK | None = field(default=None)


def _parse_jwks(document: dict) -> _KeySet:
    keys: dict[str, jwt.PyJWK] = {}
    usable = []
    for data in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue  # a key we can't use (unknown type) doesn't spoil the others
        usable.append(key)
        if data.get("kid"):
            keys[str(data["kid"])] = key
    return _KeySet(keys=keys, fetched_at=time.monotonic(), single=usable[0] if len(usable) == 1 else None)


class Verifier:
    def __init__(self, *, leeway: int = 30, ttl: float = 600, refetch_after: float = 30, timeout: float = 10,
                 fetch: Callable[[str, float], dict] = _fetch_json) -> None:
        self.leeway = leeway
        self.ttl = ttl
        self.refetch_after = refetch_after
        self.timeout = timeout
        self._fetch = fetch
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def verify(self, token: str, trust: Trust) -> PipelineClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("The token is not a well-formed JWT.", "invalid-payload") from None
        algorithm = header.get("alg")
        if algorithm not in trust.algorithms:
            raise TokenRejected(f"Signing algorithm {algorithm!r} is not accepted; this workspace accepts "
                                f"{', '.join(trust.algorithms)}.")
        key = self._key(trust, header.get("kid"))
        try:
            payload = jwt.decode(
                token, key=key.key, algorithms=list(trust.algorithms), audience=list(trust.accepted_audiences),
                issuer=trust.issuer, leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("The token has expired; pipeline tokens live only as long as their step.") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("The token was issued in the future (iat); check the clocks.") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"The token's audience is not accepted here; expected one of: "
                                f"{', '.join(trust.accepted_audiences)}.") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"The token's issuer is not {trust.issuer}.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"The token has no {exc.claim!r} claim.") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("The token's signature does not verify with the issuer's key.") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"The token is invalid: {exc}.") from None
        try:
            claims = PipelineClaims.from_payload(payload)
        except ValueError as exc:
            raise TokenRejected(str(exc)) from None
        if claims.workspaceUuid != brace_uuid(trust.workspace_uuid):
            raise TokenRejected(f"The token was issued to a step of workspace {claims.workspaceUuid}, not of "
                                f"{brace_uuid(trust.workspace_uuid)}. If the registry's workspace is that Bitbucket "
                                f"workspace, bind it: `registry workspace uuid WS {claims.workspaceUuid}`.")
        subject_repo = claims.sub.split(":", 1)[0]
        try:
            if brace_uuid(subject_repo) != claims.repositoryUuid:
                raise ValueError
        except ValueError:
            raise TokenRejected("The token's subject does not name its repository.") from None
        return claims

    def _key(self, trust: Trust, kid: str | None) -> jwt.PyJWK:
        keys = self._keyset(trust, refresh=False)
        key = keys.keys.get(kid) if kid else keys.single
        if key is None and trust.jwks is None:
            with self._lock:
                recent = time.monotonic() - self._sets[trust.issuer].fetched_at < self.refetch_after
            if not recent:  # perhaps the issuer rotated its keys: look once more
                keys = self._keyset(trust, refresh=True)
                key = keys.keys.get(kid) if kid else keys.single
        if key is None:
            which = f"key {kid!r}" if kid else "a key id (kid)"
            raise TokenRejected(f"The token names {which} that is not in the issuer's key set.")
        return key

    def _keyset(self, trust: Trust, refresh: bool) -> _KeySet:
        cache_key = trust.jwks if trust.jwks is not None else trust.issuer
        with self._lock:
            cached = self._sets.get(cache_key)
            if cached and not refresh and (trust.jwks is not None or time.monotonic() - cached.fetched_at < self.ttl):
                return cached
        if trust.jwks is not None:
            keyset = _parse_jwks(json.loads(trust.jwks))
        else:
            keyset = self._download(trust.issuer)
        with self._lock:
            self._sets[cache_key] = keyset
        return keyset

    def _download(self, issuer: str) -> _KeySet:
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            discovery = self._fetch(discovery_url, self.timeout)
            if discovery.get("issuer", issuer).rstrip("/") != issuer.rstrip("/"):
                raise TokenRejected(f"The issuer's discovery document names another issuer: {discovery.get('issuer')}.")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise TokenRejected(f"The issuer's discovery document ({discovery_url}) has no jwks_uri.")
            return _parse_jwks(self._fetch(jwks_uri, self.timeout))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            with self._lock:
                stale = self._sets.get(issuer)
            if stale is not None:  # keep verifying with the keys we have while the issuer is unreachable
                stale.fetched_at = time.monotonic()
                return stale
            raise TokenRejected(f"The issuer's keys could not be fetched from {discovery_url}: {exc}.",
                                "issuer-unreachable") from None
