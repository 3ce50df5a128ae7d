"""Reading credentials off a request: HTTP Basic (email and API token) or a Bearer token, resolved
to a `Principal` and cached per credentials and ledger commit (a revocation takes effect on the next
request)."""

from __future__ import annotations

import base64
import binascii
import copy
import sys
import time

import anyio

from pipelines.verify import TokenRejected, Verifier, is_jwt

from ..cache import Cache, weight
from ..datadir import Registry
from ..errors import Forbidden, Unauthorized
from ..identity import ANONYMOUS, Principal
from ..reads import Reader
from .access import note


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


class Authenticator:
    """Authorization header -> Principal, cached per (header, ledger commit) until it expires.

    API tokens resolve in microseconds on the caller's thread; a pipeline's OIDC token is verified
    in a worker thread, since the issuer's keys may have to be fetched."""

    def __init__(self, verifier: Verifier | None = None) -> None:
        self.verifier = verifier or Verifier()
        self._cache = Cache("credentials", "Authorization headers resolved to who sent them, per ledger commit")

    async def reader(self, registry: Registry, authorization: str | None) -> Reader:
        """The registry at its tip, as the holder of these credentials may see it."""
        base = Reader(registry)
        return base.as_(await self.principal(base, authorization))

    async def principal(self, base: Reader, authorization: str | None) -> Principal:
        result = await self._principal(base, authorization)
        note(result)  # (who the access log names)
        if isinstance(result, Exception):
            raise result
        return result

    async def _principal(self, base: Reader, authorization: str | None) -> Principal | Exception:
        if not authorization:
            return ANONYMOUS
        hit = self._cache.get(authorization)
        if hit is not None and hit[0] == base.commit:
            result = hit[1]
            if isinstance(result, Exception):
                return copy.copy(result)  # (raising the kept one would chain every request's frames to it)
            if result.expires is None or result.expires > time.time():
                return result
        try:
            result = await self._resolve(base, authorization)
        except (Unauthorized, Forbidden) as exc:
            result = exc
        kept = copy.copy(result) if isinstance(result, Exception) else result  # (without its traceback)
        self._cache.put(authorization, (base.commit, kept), sys.getsizeof(base.commit) + _weight(kept))
        return result

    def known(self, authorization: str) -> Principal | Exception | None:
        """Who these credentials were last resolved to (or their refusal), without resolving them."""
        hit = self._cache.get(authorization)
        return hit[1] if hit is not None else None

    async def _resolve(self, base: Reader, authorization: str) -> Principal:
        username, secret = parse_authorization(authorization)
        if not is_jwt(secret):
            return base.principal_for(username, secret, self.verifier)
        try:  # (a pipeline's token may need the issuer's keys fetched: not on the event loop)
            return await anyio.to_thread.run_sync(base.principal_for, username, secret, self.verifier)
        except TokenRejected as exc:
            raise Forbidden(f"Pipeline token refused: {exc.reason}") from None


def _weight(result: Principal | Exception) -> int:
    if isinstance(result, Exception):
        return sys.getsizeof(result) + weight(result.args) + weight(vars(result))
    return weight(result)
