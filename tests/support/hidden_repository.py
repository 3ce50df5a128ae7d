"""A private repository that another one lets read it (`hideout`, whose pipelines may read
`acme/utils`), and the viewers the attacks on its slug walk as: what the adversarial walks of
pipeline readers, the audit trail and the publisher share (a slug of a repository the viewer can't
read must appear in no answer of theirs)."""

from __future__ import annotations

import re

from registry import identity, operations
from tests.support.world import WS, World

OP = identity.operator()
HIDDEN = "hideout"
HIDDEN_UUID = "{5e5e5e5e-1111-4222-8333-444444444444}"
HIDDEN_ADMIN = "hideadmin@acme.test"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# utils's admin (who can't read hideout), hideout's admin, utils's reader, a member with no role, a stranger
VIEWERS = ["owner@acme.test", HIDDEN_ADMIN, "reader@acme.test", "outsider@acme.test", None]


def hide(world: World, uuid: str = HIDDEN_UUID) -> World:
    """hideout (private, LABS, its own admin) may read utils, by a workspace admin's grant; public-lib
    too (after it)."""
    reg = world.reg
    operations.create_repository(reg, OP, "cli", WS, HIDDEN, "LABS", uuid=uuid)
    operations.create_user(reg, OP, "cli", HIDDEN_ADMIN)
    world.tokens[HIDDEN_ADMIN], _ = operations.create_token(reg, OP, "cli", HIDDEN_ADMIN, "write")
    operations.grant(reg, OP, "cli", WS, HIDDEN_ADMIN, "admin", repository=HIDDEN)
    wsadmin = world.principal("wsadmin@acme.test")
    operations.grant_pipelines(reg, wsadmin, "web", WS, "utils", HIDDEN)
    operations.grant_pipelines(reg, wsadmin, "web", WS, "utils", "public-lib")
    return world


async def as_viewer(client, world: World, who: str | None) -> dict:
    """Signed in to the UI as ``who`` (None: a stranger); the API headers for them."""
    client.cookies.clear()
    if who is None:
        return {}
    csrf = CSRF.search((await client.get("/-/_/signin")).text).group(1)
    r = await client.post("/-/_/signin", data={"csrf": csrf, "email": who, "token": world.tokens[who]},
                          follow_redirects=False)
    assert r.status_code == 303, r.text
    return world.basic(who)


async def csrf(client) -> str:
    found = CSRF.search((await client.get("/-/")).text)
    return found.group(1) if found else ""


def shown(r) -> str:
    """Everything an answer says: its body and its headers."""
    return r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
