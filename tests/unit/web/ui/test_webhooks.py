"""The Webhooks tab of a workspace's settings, in-process: its admin lists hooks with their recent
deliveries and failures, adds one (an HMAC secret shown once), replays one from a commit and removes
one (confirmed), each one commit through the web; everyone else is refused and nothing changes; what
was typed wrong comes back with the form and the message."""

from __future__ import annotations

import html

import msgspec
import pytest

from registry import identity, layout, operations
from registry.config import Settings
from registry.model import Webhook
from registry.webhooks import secrets
from registry.webhooks.delivery import HookRunner
from tests.support.receiver import Receiver
from tests.support.world import WS

from .test_pages import CSRF, csrf_of, sign_in
from .test_settings import one_web_commit, post

ADMIN = "wsadmin@acme.test"
PAGE = f"/-/{WS}/settings/webhooks"
OP = identity.operator()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Its receivers are on 127.0.0.1: allowed."""
    return msgspec.structs.replace(settings, webhooks_private=True)


def hook(world, name: str) -> Webhook | None:
    return world.reg.snapshot().get(layout.webhook(WS, name), Webhook)


def drain(world, name: str) -> None:
    runner = HookRunner(world.reg, WS, name)
    try:
        for _ in range(10):
            if runner.step(hook(world, name)) != 0.0:
                return
    finally:
        runner.close()


async def test_an_admin_adds_lists_replays_and_removes_webhooks(client, world):
    await sign_in(client, world, ADMIN)
    settings = await client.get(f"/-/{WS}/settings/")
    assert f'href="{PAGE}"' in settings.text  # (the tab)
    empty = await client.get(PAGE)
    assert empty.status_code == 200 and "No webhook" in empty.text and "Add a webhook" in empty.text
    with Receiver() as receiver:
        before = world.reg.ledger.head()
        r = await post(client, PAGE, name="ci", url=receiver.url, events=["publish", "package-created"],
                       repository="utils", signing="ed25519")
        assert r.status_code == 303, r.text
        one_web_commit(world, before, ADMIN)
        added = hook(world, "ci")
        assert added.events == ["publish", "package-created"] and added.repository == "utils"
        assert added.signing == "ed25519" and not added.secret
        # An HMAC hook: its secret, made by the registry, is shown once (a reload shows it no more).
        before = world.reg.ledger.head()
        r = await post(client, PAGE, name="audit", url=receiver.url, events="grant", signing="hmac-sha256")
        assert r.status_code == 303, r.text
        one_web_commit(world, before, ADMIN)
        made = secrets.stored(world.reg.settings, WS, hook(world, "audit")).secret
        assert made and made not in r.headers.get("location", "")
        shown = await client.get(PAGE)
        assert made in shown.text and "it is not shown again" in shown.text
        again = await client.get(PAGE)
        assert made not in again.text and "it is not shown again" not in again.text
        tokens = await client.get("/-/_/tokens")  # (nor is it shown as a token)
        assert made not in tokens.text
        # Deliveries and failures, from the deliverer's state.
        operations.create_package(world.reg, OP, "cli", WS, "acme-hooked", "utils")
        delivered = world.reg.ledger.head()
        drain(world, "ci")
        receiver.wait_for(1)
        receiver.status = 503
        operations.grant(world.reg, OP, "cli", WS, "outsider@acme.test", "read", repository="utils")
        drain(world, "audit")
        page = await client.get(PAGE)
        text = html.unescape(page.text)
        host = receiver.url.split("/")[2]
        for said in (f"http://{host}/…", "publish, package-created", "repository acme/utils only", "ed25519",
                     "hmac-sha256", "every repository of acme", "Recent deliveries of ci", delivered[:12],
                     "failed", "HTTP 503", "failing"):
            assert said in text, said
        assert text.count('class="badge warn">failing') == 1  # (audit's; ci delivered)
    # Replay from a commit: one commit; the hook's record says from where.
    before = world.reg.ledger.head()
    r = await post(client, f"{PAGE}/replay?name=ci", start=delivered[:10])
    assert r.status_code == 303, r.text
    one_web_commit(world, before, ADMIN)
    assert hook(world, "ci").replay.start == delivered
    # Removal is confirmed first, then one commit; the secret goes with it.
    confirm = await client.get(f"{PAGE}/remove", params={"name": "audit"})
    assert confirm.status_code == 200 and "Remove webhook audit?" in confirm.text
    before = world.reg.ledger.head()
    r = await client.post(f"{PAGE}/remove", params={"name": "audit"},
                          data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303
    one_web_commit(world, before, ADMIN)
    assert hook(world, "audit") is None and secrets.entries(world.reg.settings, WS, "audit") == []
    assert (await client.get(f"{PAGE}/remove", params={"name": "audit"})).status_code == 404


def forms() -> list[tuple[str, dict]]:
    return [(PAGE, {"name": "walked", "url": "http://127.0.0.1:9/hook", "events": "publish"}),
            (f"{PAGE}/replay?name=staged", {"start": "0000"}),
            (f"{PAGE}/remove?name=staged", {})]


async def test_everyone_else_is_refused_sees_nothing_and_nothing_changes(client, world):
    operations.add_webhook(world.reg, OP, "cli", WS, "staged", "http://127.0.0.1:9/hook", ["publish"])
    pages = [PAGE, f"{PAGE}/remove?name=staged"]
    for path in pages:
        assert (await client.get(path)).status_code == 401, path
    for who in ("dev@acme.test", "reader@acme.test", "outsider@acme.test", "owner@acme.test"):
        await sign_in(client, world, who)
        before = world.reg.ledger.head()  # (signing in is a commit: a session)
        for path in pages:
            r = await client.get(path)
            assert r.status_code in (403, 404) and "127.0.0.1:9" not in r.text, (who, path)
        for path, fields in forms():
            r = await post(client, path, **fields)
            assert r.status_code in (403, 404) and "127.0.0.1:9" not in r.text, (who, path, r.status_code)
        assert world.reg.ledger.head() == before, who
    # The admin: every form needs its CSRF token.
    await sign_in(client, world, ADMIN)
    before = world.reg.ledger.head()
    for path, fields in forms():
        for csrf in ({}, {"csrf": "forged"}):
            r = await client.post(path, data={**fields, **csrf})
            assert r.status_code == 403 and "security token" in r.text, path
    assert world.reg.ledger.head() == before
    client.cookies.clear()
    for path, fields in forms():
        r = await client.post(path, data={"csrf": await csrf_of(client), **fields})
        assert r.status_code == 401, path


URL = "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(("fields", "status", "said"), [
    ({"name": "ci", "url": "ftp://127.0.0.1/x", "events": "publish"}, 400, "https"),
    ({"name": "ci", "url": "http://example.com/hook", "events": "publish"}, 400, "https"),
    ({"name": "ci", "url": "https://user:pw@example.com/hook", "events": "publish"}, 400, ""),
    ({"name": "ci", "url": URL}, 400, "No event given"),
    ({"name": "ci", "url": URL, "events": "published"}, 400, "Unknown webhook event"),
    ({"name": "Bad Name!", "url": URL, "events": "publish"}, 400, "Invalid webhook name"),
    ({"name": "", "url": URL, "events": "publish"}, 400, "webhook name"),
    ({"name": "ci", "url": URL, "events": "publish", "repository": "nowhere"}, 404, "no repository 'nowhere'"),
    ({"name": "ci", "url": URL, "events": "publish", "signing": "md5"}, 400, "signed with"),
])
async def test_a_mistake_in_the_add_form_comes_back_with_it(client, world, fields, status, said):
    await sign_in(client, world, ADMIN)
    before = world.reg.ledger.head()
    r = await post(client, PAGE, **fields)
    text = html.unescape(r.text)
    assert r.status_code == status and said in text and 'id="add-hook-error"' in r.text, text[-3000:]
    assert f'value="{html.escape(fields["url"])}"' in r.text  # (what was typed, kept)
    assert world.reg.ledger.head() == before


@pytest.mark.parametrize(("start", "status", "said"), [
    ("not-hex", 400, "Replay from a commit id"), ("abc", 400, "Replay from a commit id"),
    ("0" * 40, 404, "No commit of the ledger's main branch"), ("", 400, "Replay from a commit id"),
])
async def test_a_mistake_in_the_replay_form_comes_back_with_it(client, world, start, status, said):
    operations.add_webhook(world.reg, OP, "cli", WS, "ci", URL, ["publish"])
    await sign_in(client, world, ADMIN)
    before = world.reg.ledger.head()
    r = await post(client, f"{PAGE}/replay?name=ci", start=start)
    assert r.status_code == status and said in html.unescape(r.text) and 'id="replay-error"' in r.text
    assert world.reg.ledger.head() == before
    r = await post(client, f"{PAGE}/replay?name=nothere", start=before[:12])  # (a hook that isn't: a 404)
    assert r.status_code == 404 and world.reg.ledger.head() == before
