"""A person's own settings: the default workspace of their root index."""

from __future__ import annotations

from .. import layout, names, visibility
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Forbidden, NotFound
from ..identity import Principal
from ..ledger import Change, NoChange, Snapshot
from ..model import Channel, User
from ._common import existing_user, make_change, replace


def set_default_workspace(reg: Registry, who: Principal, channel: Channel, email: str, ws: str | None) -> User:
    """Make ``ws`` the workspace ``email``'s root index (`/<name>/`) takes a name from when several
    workspaces they read hold it (None: no default, such a name is a 409 again). A person sets
    their own; the operator anyone's. The workspace must be one the person sees."""
    email = names.email(email)
    ws = names.workspace_slug(ws) if ws is not None else None
    if who.kind != "operator" and who.email != email:
        raise Forbidden("You can only set your own default workspace.")

    def build(snap: Snapshot) -> Change | NoChange:
        user = existing_user(snap, email)
        if ws is not None:
            person = Principal(kind="user", email=user.email, name=user.name, scope="read")
            if not visibility.sees_workspace(snap, person, ws):
                whose = "you" if who.email == email else email
                raise NotFound(f"No workspace {ws!r} is visible to {whose}: a default workspace must be one "
                               f"{whose} can read (`registry workspace list`, or the web UI's home page, lists them).")
        if user.default_workspace == ws:  # (asked again: nothing to commit, and no refusal)
            return NoChange(user)
        record = replace(user, default_workspace=ws)
        summary = f"set default workspace of {email} to {ws}" if ws else f"clear default workspace of {email}"
        return make_change(who, channel, Action.SET_DEFAULT_WORKSPACE, summary, {layout.user(email): record},
                           (T.USER, email), *(((T.WORKSPACE, ws),) if ws else ()), result=record)

    return reg.transact(build).result
