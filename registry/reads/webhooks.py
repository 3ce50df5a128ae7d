"""What a workspace admin may read of its webhooks: the hooks (ledger records) and, beside them, what
the deliverer keeps in the data directory (the last commit delivered, the recent attempts)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import layout, visibility
from ..errors import Denied, NotFound
from ..ledger import Snapshot
from ..model import Webhook
from ..permissions import role_on_workspace
from ..webhooks import secrets, state
from .catalog import Catalog


def hooks_of(snap: Snapshot, ws: str) -> list[Webhook]:
    return sorted(snap.records(layout.webhooks_dir(ws), Webhook), key=lambda h: h.name)


@dataclass(frozen=True)
class HookState:
    hook: Webhook
    delivered: str | None  # the last commit delivered (or passed over as not wanted)
    attempts: list[state.Attempt]  # newest first

    @property
    def shown(self) -> str:
        """Its URL, scheme://host[:port]/… (the path, where some receivers keep a secret, never)."""
        return secrets.shown(self.hook)

    @property
    def fingerprint(self) -> str:
        """The whole URL's (kept in the data directory): which one it is, for whoever knows it."""
        return secrets.endpoint_of(self.hook).fingerprint

    @property
    def failing(self) -> bool:
        return bool(self.attempts) and not self.attempts[0].ok


class WebhookReads(Catalog):
    def _admin(self, ws: str) -> None:
        if not visibility.sees_workspace(self.now, self.who, ws):
            raise visibility.hidden(self.who, ws, f"Workspace {ws!r} does not exist.")
        if role_on_workspace(self.now, self.who, ws) != "admin":
            raise Denied(f"{self.who.actor} may not see the webhooks of workspace {ws}: it takes admin permission "
                         "on the workspace.")

    def webhooks(self, ws: str, attempts: int = 10) -> list[HookState]:
        """The workspace's hooks with their delivery state, for its admins. A listing, and two
        small files of the data directory per hook."""
        self._admin(ws)
        return [self._state(ws, h, attempts) for h in hooks_of(self.snapshot, ws)]

    def webhook(self, ws: str, name: str, attempts: int = state.KEEP_ATTEMPTS) -> HookState:
        self._admin(ws)
        hook = self.snapshot.get(layout.webhook(ws, name), Webhook)
        if hook is None:
            raise NotFound(f"Workspace {ws} has no webhook named {name!r} (`registry webhook list {ws}` lists them).")
        return self._state(ws, hook, attempts)

    def _state(self, ws: str, hook: Webhook, attempts: int) -> HookState:
        cursor = state.cursor(self.reg.settings, ws, hook.name)
        current = cursor is not None and cursor.since == hook.since
        return HookState(hook, cursor.last if current and cursor else None,
                         state.attempts(self.reg.settings, ws, hook.name, attempts) if current else [])
