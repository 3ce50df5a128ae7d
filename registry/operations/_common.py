"""What every verb shares: building a change, and the permission checks that aren't per repository."""

from __future__ import annotations

import msgspec
from packaging.utils import canonicalize_version

from ..auth import Principal, role_on_workspace
from ..errors import Forbidden, NotFound
from ..ledger import Change, Snapshot, layout
from ..model import Channel, User, Workspace


def version_key(version: str) -> str:
    """Releases are identified like on the public index: 1.0 and 1.0.0 are the same release."""
    return canonicalize_version(version)


def make_change(who: Principal, channel: Channel, summary: str, writes, *facts: tuple[str, str], body: str = "") -> Change:
    return Change(summary=summary, provenance=who.provenance(channel), author=who.author,
                  writes=writes, facts=tuple(facts), body=body)


def replace(record, **changes):
    return msgspec.structs.replace(record, **changes)


def require_operator(who: Principal, doing: str) -> None:
    if who.kind != "operator":
        raise Forbidden(f"Only the registry operator can {doing}.")


def require_workspace_admin(snap: Snapshot, who: Principal, ws: str, doing: str) -> Workspace:
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        raise NotFound(f"Workspace {ws!r} does not exist; create it with `registry workspace create {ws}`.")
    if role_on_workspace(snap, who, ws) != "admin":
        raise Forbidden(f"{who.actor} may not {doing}: it needs admin permission on workspace {ws}.")
    return workspace


def existing_user(snap: Snapshot, email: str) -> User:
    user = snap.get(layout.user(email), User)
    if user is None:
        raise NotFound(f"User {email} does not exist; create it with `registry user create {email}`.")
    return user
