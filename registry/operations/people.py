"""People: a user's display name, switching an account off and on, and taking a person out of a
workspace (every grant of theirs there, in one commit).

Disabling is the operator's: it stops every credential of the person at once (identity.py's
`check_token`, a web session's principal, a sign-in link: each reads the user record at the commit
it checks against), keeps their grants (inert, since nothing they hold is accepted) and their
history, and is undone by enabling. Nothing is deleted: a person's name stays on what they did."""

from __future__ import annotations

from .. import bounds, layout, names
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, Snapshot
from ..model import Channel, Project, Record, Repository, User
from ..reads.members import Grant, workspace_grants
from ._common import existing_user, make_change, replace, require_operator, require_workspace_admin


def rename_user(reg: Registry, who: Principal, channel: Channel, email: str, name: str) -> User:
    """Change a person's display name (also the git author name of their later commits): theirs or
    the operator's to change."""
    email = names.email(email)
    name = bounds.person_name(name)
    if who.kind != "operator" and (who.kind != "user" or who.email != email):
        raise Forbidden(f"Only {email} themself, or the registry's operator, can change their name.")

    def build(snap: Snapshot) -> Change:
        user = existing_user(snap, email)
        if user.name == name:
            raise Conflict(f"{email} is already called {name!r}.")
        record = replace(user, name=name)
        return make_change(who, channel, Action.RENAME_USER, f"rename user {email}: {user.name!r} -> {name!r}",
                           {layout.user(email): record}, (T.USER, email), result=record)

    return reg.transact(build).result


def disable_user(reg: Registry, who: Principal, channel: Channel, email: str, reason: str) -> User:
    """Switch an account off: none of the person's API tokens, web sessions or sign-in links is
    accepted from this commit on; their grants and history stay. The operator's; ``reason`` is shown
    to whoever uses their credentials."""
    email = names.email(email)
    reason = names.account_reason(reason)
    if not reason:
        raise Invalid("Give a reason (--reason TEXT): it is recorded, and shown to whoever uses the account's "
                      "credentials.")
    require_operator(who, "disable accounts (`registry user disable EMAIL --reason TEXT` on the server)")

    def build(snap: Snapshot) -> Change:
        user = existing_user(snap, email)
        if user.disabled is not None:
            raise Conflict(f"{email} is already disabled (since {user.disabled.at:%Y-%m-%d %H:%M} UTC, by "
                           f"{user.disabled.by}: {user.disabled_reason}).")
        provenance = who.provenance(channel)
        record = replace(user, disabled=provenance, disabled_reason=reason)
        return make_change(who, channel, Action.DISABLE_USER, f"disable user {email}", {layout.user(email): record},
                           (T.USER, email), body=f"Reason: {reason}", provenance=provenance, result=record)

    return reg.transact(build).result


def enable_user(reg: Registry, who: Principal, channel: Channel, email: str) -> User:
    """Switch a disabled account back on: the tokens, sessions and links it holds work again (those
    not revoked, expired or used meanwhile), and so do its grants. The operator's."""
    email = names.email(email)
    require_operator(who, "enable accounts (`registry user enable EMAIL` on the server)")

    def build(snap: Snapshot) -> Change:
        user = existing_user(snap, email)
        if user.disabled is None:
            raise Conflict(f"{email} is not disabled.")
        record = replace(user, disabled=None, disabled_reason="")
        return make_change(who, channel, Action.ENABLE_USER, f"enable user {email}", {layout.user(email): record},
                           (T.USER, email), result=record)

    return reg.transact(build).result


def remove_member(reg: Registry, who: Principal, channel: Channel, ws: str, email: str) -> list[Grant]:
    """Take every grant ``email`` holds in the workspace away at once (workspace admin, project and
    repository roles): one commit. Returns the grants taken away. A workspace
    admin's to do (as `registry revoke` is, this may remove its last admin: the operator still
    manages it, and names another with `registry grant WS EMAIL admin`)."""
    email = names.email(email)

    def build(snap: Snapshot) -> Change:
        workspace = require_workspace_admin(snap, who, ws, f"remove members of workspace {ws}")
        held = [g for g in workspace_grants(snap, ws) if g.user == email]
        if not held:
            raise NotFound(f"{email} holds no grant in workspace {ws} (`registry grant list {ws}` shows who does).")
        writes: dict[str, Record] = {}
        if email in workspace.admins:
            writes[layout.workspace(ws)] = replace(workspace, admins=[a for a in workspace.admins if a != email])
        for g in held:  # (one grant per project or repository: a person holds one role on each)
            if g.where != "workspace":
                path = layout.project(ws, g.target) if g.where == "project" else layout.repository(ws, g.target)
                found: Project | Repository | None = (
                    snap.get(path, Project) if g.where == "project" else snap.get(path, Repository))
                if found is not None:
                    writes[path] = replace(found, grants={k: v for k, v in found.grants.items() if k != email})
        return make_change(who, channel, Action.REMOVE_MEMBER, f"remove {email} from workspace {ws}", writes,
                           (T.WORKSPACE, ws), (T.USER, email), (T.ROLE, "none"),
                           body="\n".join(f"- {g.role} on {g.shown}" for g in held), result=held)

    return reg.transact(build).result

