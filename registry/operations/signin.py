"""One-time sign-in links for the web UI: made on the server (`registry login-link`, the first
start), used once in a browser. Both are commits; only the SHA-256 of a link's secret is kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from .. import layout, model
from ..audit import Action, T
from ..errors import Forbidden, NotFound
from ..identity import Principal, new_token
from ..ledger import Change, Snapshot
from ..model import ApiToken, Channel, SignInLink
from ._common import existing_user, make_change, replace, require_operator
from .registry import Registry

LINK_PREFIX = "rgl_"
LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)  # of the token a link's sign-in creates (and its session)


def link_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_signin_link(reg: Registry, who: Principal, channel: Channel, email: str,
                       lifetime: timedelta = LINK_LIFETIME) -> tuple[str, SignInLink]:
    """A link secret for ``email`` (shown once) and its record. Only the operator makes them."""
    email = model.email(email)
    require_operator(who, "make sign-in links")
    secret = LINK_PREFIX + secrets.token_urlsafe(32)
    digest = link_hash(secret)
    provenance = who.provenance(channel)
    record = SignInLink(id=digest[:16], user=email, sha256=digest, created=provenance,
                        expires=provenance.at + lifetime)

    def build(snap: Snapshot) -> Change:
        existing_user(snap, email)
        return make_change(who, channel, Action.CREATE_LOGIN_LINK, f"create sign-in link {record.id} for {email} "
                           f"(valid until {record.expires:%H:%M} UTC)",
                           {layout.signin_link(digest): record}, (T.USER, email), (T.SIGN_IN_LINK, record.id),
                           provenance=provenance)

    reg.transact(build)
    return secret, record


def find_signin_link(snap: Snapshot, secret: str) -> SignInLink | None:
    return snap.get(layout.signin_link(link_hash(secret.strip())), SignInLink)


def check_signin_link(record: SignInLink | None) -> SignInLink:
    """The link, if it may still be used; otherwise a refusal that says what to do."""
    again = "ask the registry's operator for a new one (`registry login-link EMAIL`)"
    if record is None:
        raise NotFound(f"This sign-in link does not exist: check that it was copied whole, or {again}.")
    if record.used is not None:
        raise Forbidden(f"This sign-in link was used at {record.used.at:%Y-%m-%d %H:%M} UTC; a link works once: {again}.")
    if record.expires <= model.now():
        raise Forbidden(f"This sign-in link expired at {record.expires:%Y-%m-%d %H:%M} UTC: {again}.")
    return record


def use_signin_link(reg: Registry, secret: str, channel: Channel = "web") -> ApiToken:
    """Spend the link: one commit marks it used and creates the token the web session rests on
    (its secret is thrown away: the session names the token by id, and dies with it)."""
    digest = link_hash(secret.strip())

    def build(snap: Snapshot) -> Change:
        link = check_signin_link(snap.get(layout.signin_link(digest), SignInLink))
        user = existing_user(snap, link.user)
        who = Principal(kind="user", email=user.email, name=user.name, scope="write")
        provenance = who.provenance(channel)
        _, token_digest = new_token()
        token = ApiToken(id=token_digest[:16], user=user.email, sha256=token_digest, scope="write",
                         label="web sign-in (link)", created=provenance, expires=provenance.at + SESSION_LIFETIME)
        used = replace(link, used=provenance, session_token=token.id)
        return make_change(who, channel, Action.USE_LOGIN_LINK, f"sign in {user.email} with link {link.id}",
                           {layout.signin_link(digest): used, layout.token(token_digest): token},
                           (T.USER, user.email), (T.SIGN_IN_LINK, link.id), (T.TOKEN, token.id), (T.SCOPE, "write"),
                           provenance=provenance, result=token)

    return reg.transact(build).result
