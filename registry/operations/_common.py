"""What every verb shares: building a change, and the permission checks that aren't per repository."""

from __future__ import annotations

import msgspec

from .. import layout, visibility
from ..audit import Action, T, provenance_trailers
from ..errors import Conflict, Denied, Forbidden, NotFound
from ..identity import Principal
from ..ledger import Change, Commit, Committed, Snapshot
from ..model import Channel, Provenance, RetiredRepository, User, Workspace
from ..permissions import require_scope, role_on_workspace


def make_change(who: Principal, channel: Channel, action: Action, summary: str, writes, *facts: tuple[str, str],
                body: str = "", result=None, provenance: Provenance | None = None) -> Change:
    """One commit's worth: who did what (the trailers every commit starts with, then `Action`), to
    what (``facts``). ``provenance``: the one already recorded in the records (same time, same actor).
    Every verb builds its commit here, so here the token's scope is checked, whatever the verb checked
    before: a read-scoped principal commits nothing but its own session's start and end."""
    require_scope(who, summary, action)
    provenance = provenance or who.provenance(channel)
    trailers = (*provenance_trailers(provenance), (T.ACTION, action), *facts)
    return Change(summary=summary, author=who.author, time=provenance.at, writes=writes, trailers=trailers,
                  body=body, result=result)


def made(done: Committed) -> Commit:
    """The commit a transaction made, for a build that always changes something (never NoChange)."""
    if done.commit is None:
        raise RuntimeError("the transaction changed nothing, though its build always does")
    return done.commit


def replace(record, **changes):
    return msgspec.structs.replace(record, **changes)


def require_operator(who: Principal, doing: str) -> None:
    if who.kind != "operator":
        raise Forbidden(f"Only the registry operator can {doing}.")


def require_workspace_admin(snap: Snapshot, who: Principal, ws: str, doing: str) -> Workspace:
    """The workspace, if ``who`` administers it; one they don't see answers as a missing one (the
    reads' rule), one they see a refusal that says what it takes."""
    require_scope(who, doing)  # (first: a read-scoped token is told so, whatever the workspace, as the UI does)
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None or (who.kind != "operator" and not visibility.sees_workspace(snap, who, ws)):
        create = f"; create it with `registry workspace create {ws}`" if who.kind == "operator" else ""
        raise visibility.hidden(who, ws, f"Workspace {ws!r} does not exist{create}.")
    if role_on_workspace(snap, who, ws) != "admin":
        raise Denied(f"{who.actor} may not {doing}: it needs admin permission on workspace {ws}.")
    return workspace


def existing_user(snap: Snapshot, email: str) -> User:
    user = snap.get(layout.user(email), User)
    if user is None:
        raise NotFound(f"User {email} does not exist; create it with `registry user create {email}`.")
    return user


def enabled_user(snap: Snapshot, email: str, doing: str) -> User:
    """The user, if their account is enabled: what credentials are made for (a token, a sign-in link)."""
    user = existing_user(snap, email)
    if user.disabled is not None:
        raise Conflict(f"The account {email} is disabled, so it may not {doing}; enable it first with "
                       f"`registry user enable {email}`.")
    return user


def refuse_retired_slug(snap: Snapshot, ws: str, slug: str) -> None:
    """A repository slug once used in the workspace never names another repository: the audit trail
    files its packages' commits under it, and a new repository there would show them to its readers."""
    retired = snap.get(layout.retired_repository(ws, slug), RetiredRepository)
    if retired is not None:
        then = f"renamed to {ws}/{retired.renamed_to}" if retired.renamed_to else "deleted"
        raise Conflict(f"Repository slug {ws}/{slug} was used before ({then} on {retired.retired.at:%Y-%m-%d}); "
                       "its audit history is filed under it, so it can't name another repository: pick another slug.")
