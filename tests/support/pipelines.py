"""Bitbucket Pipelines in tests: the UUIDs of the workspace and repositories the local issuer speaks for,
claims and tokens for a step, forged tokens, and Basic credentials made of a token."""

from __future__ import annotations

import base64
import json
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipelines.claims import default_audience
from pipelines.verify import Trust
from tests.support.helpers import make_wheel
from tests.support.world import WS

WS_UUID = "{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}"
REPO_UUID = "{d4e45493-4a33-477d-917b-a24e7e4bd39b}"
OTHER_REPO_UUID = "{0f0f0f0f-4a33-477d-917b-a24e7e4bd39b}"
ENV_UUID = "{759de0c6-eaee-4eaa-b7a6-c507eec759a7}"


def claims_for(issuer, **overrides):
    kwargs = dict(workspace=WS, workspace_uuid=WS_UUID, repository_uuid=REPO_UUID, branch="main")
    kwargs.update(overrides)
    return issuer.claims(**kwargs)


def trust_for(issuer, **overrides):
    return Trust(**{"issuer": issuer.issuer_url(WS), "workspace_uuid": WS_UUID, **overrides})


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(issuer, kind):
    """Tokens that must be refused, one per way of getting it wrong."""
    good = claims_for(issuer)
    kid = issuer.current
    public_pem = issuer.keys[kid].public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if kind == "alg none":
        return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(good)}."
    if kind == "HS256 with the public key":
        signing = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(good)}"
        import hashlib
        import hmac  # noqa: E401  (PyJWT refuses to do this for us, rightly)
        sig = hmac.new(public_pem, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{b64(sig)}"
    if kind == "a key not in the issuer's set":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, stranger, algorithm="RS256", headers={"kid": kid})
    if kind == "an unknown kid":
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, stranger, algorithm="RS256", headers={"kid": "not-a-kid"})
    if kind == "expired":
        return issuer.sign(claims_for(issuer, issued_at=int(time.time()) - 7200, lifetime=3600))
    if kind == "issued in the future":
        return issuer.sign(claims_for(issuer, issued_at=int(time.time()) + 3600))
    if kind == "wrong issuer":
        return issuer.sign({**good, "iss": issuer.issuer_url("someone-else")})
    if kind == "wrong audience":
        return issuer.sign(claims_for(issuer,
                                      audience="ari:cloud:bitbucket::workspace/00000000-0000-0000-0000-000000000000"))
    if kind == "another workspace":
        other = "{22222222-2222-2222-2222-222222222222}"
        return issuer.sign({**claims_for(issuer, workspace_uuid=other), "aud": default_audience(WS_UUID)})
    if kind == "tampered payload":
        token = issuer.sign(good)
        head, _, sig = token.split(".")
        return f"{head}.{b64({**good, 'repositoryUuid': OTHER_REPO_UUID})}.{sig}"
    if kind == "missing claims":
        return issuer.sign({k: v for k, v in good.items() if k != "stepUuid"})
    if kind == "subject of another repository":
        return issuer.sign({**good, "sub": f"{OTHER_REPO_UUID}:{good['stepUuid']}"})
    if kind == "garbage":
        return "eyJhbGciOiJSUzI1NiJ9.garbage.garbage"
    raise AssertionError(kind)


FORGERIES = {
    "alg none": "algorithm 'none' is not accepted",
    "HS256 with the public key": "algorithm 'HS256' is not accepted",
    "a key not in the issuer's set": "signature does not verify",
    "an unknown kid": "not in the issuer's key set",
    "expired": "expired",
    "issued in the future": "issued in the future",
    "wrong issuer": "issuer is not",
    "wrong audience": "audience is not accepted",
    "another workspace": "workspace {22222222",
    "tampered payload": "signature does not verify",
    "missing claims": "stepUuid",
    "subject of another repository": "subject does not name its repository",
    "garbage": "not a well-formed JWT",
}


def step_token(issuer, trusted, **overrides):
    kwargs = dict(workspace=WS, workspace_uuid=trusted["ws_uuid"], repository_uuid=REPO_UUID, branch="main")
    kwargs.update(overrides)
    return issuer.mint(**kwargs)


def piped_wheel(tmp_path, version="1.0"):
    return make_wheel(tmp_path, "Acme.Piped", version)


def as_password(token, username="x-token-auth"):
    return {"authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}
