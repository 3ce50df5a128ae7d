"""Credentials and people: who an API token, a pipeline's OIDC token or a web session stands for;
sign-in links; users and their tokens; the workspaces' trusted issuers. (Who holds which grant, and
the people a workspace admin sees: members.py.)"""

from __future__ import annotations

from pipelines.verify import Verifier, is_jwt, unverified_issuer

from .. import layout, model, names
from ..errors import NotFound
from ..identity import (
    Principal,
    check_token,
    pipeline_principal,
    refuse_disabled,
    trusts_for,
    verify_pipeline_token,
    workspace_trusts,
)
from ..model import ApiToken, SignInLink, User, WebSession
from .catalog import Catalog
from .records import (
    check_signin_link,
    find_signin_link,
    find_token,
    list_tokens,
    live_session,
    sessions_of,
)


class People(Catalog):
    """The Reader's credentials and people. A person's own things (their tokens, their sessions)
    answer to them and to the operator; to anyone else, as a user that doesn't exist."""

    def principal_for(self, username: str, secret: str, verifier: Verifier) -> Principal:
        """Who these credentials are, at this commit: an API token's user (or pipeline), or a pipeline
        step by its OIDC token. Raises what `token_principal` or `pipeline_for` raises. Blocking: the
        issuer's keys may have to be fetched."""
        if not is_jwt(secret):
            return self.token_principal(username, secret)
        return self.pipeline_for(secret, verifier)

    def token_principal(self, username: str, secret: str) -> Principal:
        """Who an API token stands for; Forbidden says why it isn't accepted (unknown, another
        user's, revoked, expired, its user gone: never which of the first two). Two lookups."""
        return check_token(self.snapshot, username, secret)

    def default_workspace(self) -> str | None:
        """The workspace the caller's root index takes a name from when several they read hold it:
        their own choice (`registry user default-workspace`), for a person; None for anyone else, or
        when they chose none. One lookup."""
        if self.who.kind != "user" or not self.who.email:
            return None
        user = self.snapshot.get(layout.user(self.who.email), User)
        return user.default_workspace if user is not None else None

    def pipeline_for(self, token: str, verifier: Verifier) -> Principal:
        """The pipeline step a Bitbucket Pipelines OIDC token stands for; TokenRejected says why not,
        Forbidden if its repository isn't registered. A lookup per workspace (which trust the
        issuer) and a scan of the trusting workspace's repositories. Blocking: the issuer's keys may
        have to be fetched."""
        ws, claims = verify_pipeline_token(verifier, token, trusts_for(self.snapshot, unverified_issuer(token)))
        return pipeline_principal(self.snapshot, ws, claims)

    def session_principal(self, email: str, session_id: str, expires: float) -> Principal | None:
        """Who a web session acts as, if it is still on (not ended, not expired, and the token it was
        signed in with still holds): its person, with its scope, until ``expires`` at the latest;
        None if it is over or never was (never a refusal: the caller is then anonymous). A few
        lookups (`records.live_session`)."""
        found = live_session(self.snapshot, email, session_id)
        if found is None:
            return None
        session, token = found
        user = self.snapshot.get(layout.user(email), User)
        if user is None or user.disabled is not None:  # (disabled: signed out at once, the session record kept)
            return None
        until = min(expires, session.expires.timestamp(),
                    token.expires.timestamp() if token and token.expires else expires)
        return Principal(kind="user", email=user.email, name=user.name, scope=session.scope,
                         token_id=token.id if token else None, session=session.id, expires=until)

    def sessions(self, email: str) -> list[tuple[WebSession, ApiToken | None]]:
        """A person's web sessions that are on, oldest first, each with the token it was signed in
        with (None: a sign-in link's): for the operator and for the person themself; NotFound ("no
        user") for anyone else. A lookup per session of theirs."""
        email = names.email(email)
        if self.who.kind != "operator" and self.who.email != email:
            raise NotFound(f"There is no user {email}.")
        return [found for s in sessions_of(self.snapshot, email) if (found := live_session(self.snapshot, email, s.id))]

    def signin_link(self, secret: str) -> SignInLink:
        """The sign-in link a secret opens, if it may still be used; otherwise NotFound or Forbidden,
        saying what to do (the secret is the credential: whoever holds it asks). One lookup."""
        record = check_signin_link(find_signin_link(self.snapshot, secret))
        user = self.snapshot.get(layout.user(record.user), User)
        if user is not None:
            refuse_disabled(user)
        return record

    def user(self, email: str) -> User | None:
        """A user by email, None if there is none. Whoever asks: the operator's question (the CLI);
        a surface that shows users to others must check first. One lookup."""
        return self.snapshot.get(layout.user(names.email(email)), User)

    def tokens(self, email: str) -> list[ApiToken]:
        """A user's API tokens (revoked and expired ones too), oldest first: for the operator and for
        the user themself; NotFound ("no user") for anyone else, as for a user that doesn't exist.
        A scan of every token of the registry."""
        email = names.email(email)
        if self.who.kind != "operator" and self.who.email != email:
            raise NotFound(f"There is no user {email}.")
        return list_tokens(self.snapshot, email)

    def token_label(self, token_id: str) -> str | None:
        """The label a token was given (what a publisher's token is shown as), if it has one; None
        for a token that doesn't exist. Whoever asks: only the label, of a token named by a record
        the caller may read. A lookup (a directory listing for a prefix of an id); Invalid for what
        is no token id."""
        found = find_token(self.snapshot, token_id)
        return (found[1].label or None) if found else None

    def trusts(self, ws: str | None = None) -> list[tuple[str, model.PipelinesTrust]]:
        """The trusted pipeline issuers, (workspace, trust), by workspace then issuer: one workspace's
        (`hidden` to whoever doesn't see it), or, with no ``ws``, every workspace's, whoever asks (the
        operator's question: the CLI). A listing and a lookup per workspace."""
        snap = self.snapshot
        names = [ws] if ws else snap.names("workspaces")
        if ws:
            self.workspace(ws)
        return [(w, t) for w in names for t in workspace_trusts(snap, w)]
