"""What a hook keeps out of the ledger: its whole URL (Slack's, Teams', Zapier's carry their secret
in the path) and its secret (an HMAC key, or the repository access token a Bitbucket hook calls the
API with). In the data directory (`webhook-secrets.json`, mode 0600), never in the ledger, whose
record says only the URL's scheme, host, port and fingerprint, and that a secret is set.

Each version of a hook's record names its own entry (`<name>.<key>`, the key new for each version),
staged durably *before* its commit: until the commit lands the hook goes on with the entry its
current record names, and an entry whose commit failed is never used. Entries no record names any
more are dropped: a replaced or removed version's at once, by the commit's verb (`drop`); one staged
by a commit that failed, once it is older than any commit can take (`prune`). Records of older
versions kept the URL and named the secret by
the hook's name alone; they are read as they are.
"""

from __future__ import annotations

import hashlib
import secrets as random
import time
from collections.abc import Collection
from urllib.parse import urlsplit

import msgspec

from ..config import Settings
from ..model import Webhook, WebhookEndpoint
from ..secretfile import SecretFile

# How long an entry no record names is kept: a commit that staged it may still be on its way (waiting
# for the ledger's lock). After that, unless a record names it, its commit failed.
STAGED_GRACE = 600


class Stored(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One version of a hook: its whole URL, its secret (None: it has none) and when it was staged."""

    url: str | None = None
    secret: str | None = None
    staged: float = 0  # Unix time


# workspace -> "<name>.<key>" -> Stored; and, as older versions wrote it, "<name>" -> the secret
_FILE: SecretFile[str | Stored] = SecretFile(str | Stored)


def new_secret() -> str:
    return "whsec_" + random.token_urlsafe(32)


def new_key() -> str:
    return random.token_hex(8)


def fingerprint(url: str) -> str:
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()[:16]


def endpoint(url: str) -> WebhookEndpoint:
    """What the ledger records of ``url`` (a checked one: names.webhook_url)."""
    parts = urlsplit(url)
    return WebhookEndpoint(scheme=parts.scheme, host=parts.hostname or "", port=parts.port,
                           fingerprint=fingerprint(url))


def endpoint_of(hook: Webhook) -> WebhookEndpoint:
    """The hook's endpoint (a record of an older version: made from its URL)."""
    return hook.endpoint or endpoint(hook.url)


def shown(hook: Webhook) -> str:
    """The hook's URL as listings show it: ``scheme://host[:port]/…``, never its path."""
    e = endpoint_of(hook)
    host = f"[{e.host}]" if ":" in e.host else e.host
    return f"{e.scheme}://{host}{f':{e.port}' if e.port is not None else ''}/…"


def _entry(hook: Webhook) -> str:
    return f"{hook.name}.{hook.key}" if hook.key else hook.name  # (names have no '.')


def stage(settings: Settings, ws: str, hook: Webhook, url: str, secret: str | None) -> None:
    """Keep the URL and secret of a version of ``hook`` not yet committed, durably."""
    given = Stored(url=url, secret=secret, staged=time.time())

    def change(table: dict[str, str | Stored]) -> bool:
        table[_entry(hook)] = given
        return True

    _FILE.update(settings.webhook_secrets_path, ws, change)


def stored(settings: Settings, ws: str, hook: Webhook) -> Stored | None:
    """The URL and secret of this version of the hook (read again only once the file has changed)."""
    found = _FILE.get(settings.webhook_secrets_path, ws, _entry(hook))
    if not hook.key:  # (an older version's record: its URL in the record, its secret by name)
        return Stored(url=hook.url or None, secret=found if isinstance(found, str) else None)
    return found if isinstance(found, Stored) else None


def drop(settings: Settings, ws: str, hooks: Collection[Webhook]) -> None:
    """Drop exactly the entries of these versions of hooks (replaced or removed by a commit that has
    landed), and of their names only what is older than STAGED_GRACE besides: an entry staged by an add
    of the same name still waiting for the ledger's lock is kept (its commit may land after ours)."""
    named = {_entry(hook) for hook in hooks}
    names = {hook.name for hook in hooks}
    old = time.time() - STAGED_GRACE

    def change(table: dict[str, str | Stored]) -> bool:
        gone = [entry for entry, value in table.items() if entry in named or (
            entry.partition(".")[0] in names and (value.staged if isinstance(value, Stored) else 0) < old)]
        for entry in gone:
            del table[entry]
        return bool(gone)

    _FILE.update(settings.webhook_secrets_path, ws, change)


def prune(settings: Settings, ws: str, hook: Webhook) -> None:
    """Drop the entries of ``hook``'s name that its record doesn't name and that are older than
    STAGED_GRACE (staged by commits that failed, or left by a replace whose own drop failed). Never
    by the order entries were staged in: two replaces racing may commit in the other order."""
    old = time.time() - STAGED_GRACE
    mine = _entry(hook)

    def change(table: dict[str, str | Stored]) -> bool:
        gone = [entry for entry, value in table.items() if entry != mine and entry.partition(".")[0] == hook.name
                and (value.staged if isinstance(value, Stored) else 0) < old]
        for entry in gone:
            del table[entry]
        return bool(gone)

    _FILE.update(settings.webhook_secrets_path, ws, change)



def entries(settings: Settings, ws: str, name: str) -> list[str]:
    """The keys the data directory holds entries of hook ``name`` under ("": an older version's)."""
    return [e.partition(".")[2] for e in _FILE.names(settings.webhook_secrets_path, ws)
            if e.partition(".")[0] == name]
