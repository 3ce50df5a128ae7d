"""Adding, removing and replaying webhooks: each one commit; every bad input a clear 4xx that commits
nothing and stores no secret."""

from __future__ import annotations

import pytest

from registry import identity, layout, operations
from registry.errors import RegistryError
from registry.model import Webhook
from registry.webhooks import secrets
from tests.support.world import WS

OP, CH = identity.operator(), "cli"
URL = "https://hooks.example.com/registry"


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x", "ftp://127.0.0.1/x", "http://10.0.0.5/x", "https://user:pw@hooks.example.com/",
    "https://hooks.example.com/x?token=abc", "https://hooks.example.com/x#f", "https:///nohost", "not a url",
    "https://hooks.example.com/\nx", "https://" + "a" * 1100 + ".com/",
])
def test_urls_that_are_not_https_or_carry_secrets_are_refused(world, url):
    _refused(world, lambda: operations.add_webhook(world.reg, OP, CH, WS, "ci", url, ["publish"]), "URL")


@pytest.mark.parametrize("events", [[], ["published"], ["publish", "download"], [""], ["PUBLISH"]])
def test_unknown_events_are_refused(world, events):
    _refused(world, lambda: operations.add_webhook(world.reg, OP, CH, WS, "ci", URL, events), "event")


@pytest.mark.parametrize("kwargs, says", [
    (dict(name="Bad Name"), "name"), (dict(name="x" * 41), "name"), (dict(signing="rsa"), "signed"),
    (dict(signing="ed25519", secret="s" * 20), "secret"), (dict(signing="hmac-sha256", secret="short"), "16"),
    (dict(fmt="xml"), "format"), (dict(repository="nope"), "repository"),
    (dict(fmt="bitbucket-pipeline", secret="t" * 20), "pipeline"),
    (dict(fmt="bitbucket-pipeline", pipeline="deploy"), "token"),
    (dict(fmt="bitbucket-pipeline", pipeline="deploy", secret="t" * 20, subscribed=["yank"]), "publish"),
])
def test_bad_hooks_are_refused(world, kwargs, says):
    args = dict(name="ci", url=URL, subscribed=["publish"]) | kwargs
    name, url, subscribed = args.pop("name"), args.pop("url"), args.pop("subscribed")
    _refused(world, lambda: operations.add_webhook(world.reg, OP, CH, WS, name, url, subscribed, **args), says)


@pytest.mark.parametrize("who", ["owner@acme.test", "dev@acme.test", "outsider@acme.test"])
def test_only_workspace_admins_change_webhooks(world, who):
    p = world.principal(who)
    _refused(world, lambda: operations.add_webhook(world.reg, p, "api", WS, "ci", URL, ["publish"],
                                                   signing="hmac-sha256", secret="s" * 20), "")
    operations.add_webhook(world.reg, OP, CH, WS, "ci", URL, ["publish"])
    _refused(world, lambda: operations.remove_webhook(world.reg, p, "api", WS, "ci"), "")
    _refused(world, lambda: operations.replay_webhook(world.reg, p, "api", WS, "ci", world.reg.ledger.head()), "")


def test_add_replace_remove_replay_are_one_commit_each(world):
    reg, admin = world.reg, world.principal("wsadmin@acme.test")
    start = reg.ledger.head()
    first = operations.add_webhook(reg, admin, "api", WS, "ci", URL, ["*"]).hook
    assert first.since == start and first.events[0] == "publish"
    replaced = operations.add_webhook(reg, admin, "api", WS, "ci", URL, ["yank"], signing="hmac-sha256").hook
    assert replaced.since == start  # (the cursor carries on)
    assert secrets.stored(reg.settings, WS, replaced).secret
    # (the replaced version's entry goes at once: a hook goes only as its record now says)
    assert first.key != replaced.key and secrets.entries(reg.settings, WS, "ci") == [replaced.key]
    replayed = operations.replay_webhook(reg, admin, "api", WS, "ci", start[:8])
    assert replayed.replay and replayed.replay.start == start
    operations.remove_webhook(reg, admin, "api", WS, "ci")
    actions = [c.trailer("Action") for c in list(reg.ledger.walk(since=start))[::-1]]
    assert actions == ["add-webhook", "add-webhook", "replay-webhook", "remove-webhook"]
    assert reg.snapshot().get(layout.webhook(WS, "ci"), Webhook) is None
    assert secrets.entries(reg.settings, WS, "ci") == []


@pytest.mark.parametrize("start", ["0" * 40, "zz", "", "abc", "deadbeef" * 6])
def test_replay_from_what_is_no_commit_of_main_is_refused(world, start):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", URL, ["publish"])
    _refused(world, lambda: operations.replay_webhook(world.reg, OP, CH, WS, "ci", start), "commit")


def _refused(world, call, says: str) -> None:
    head = world.reg.ledger.head()
    with pytest.raises(RegistryError) as caught:
        call()
    assert 400 <= caught.value.status < 500 and says.lower() in caught.value.message.lower(), caught.value.message
    assert world.reg.ledger.head() == head
    hook = world.reg.snapshot().get(layout.webhook(WS, "ci"), Webhook)  # (a refusal keeps no URL, no secret)
    assert secrets.entries(world.reg.settings, WS, "ci") == ([hook.key] if hook else [])


INTERNAL = ["http://127.0.0.1/x", "https://127.0.0.1:8443/x", "https://10.0.0.1/x", "https://192.168.1.20/x",
            "https://172.16.0.1/x", "https://169.254.169.254/", "https://100.64.0.1/x", "https://0.0.0.0/x",
            "https://224.0.0.1/x", "https://240.0.0.1/x", "https://[::1]/x", "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:10.0.0.1]/x", "https://[fe80::1]/x", "https://[fd00::1]/x", "https://[::]/x",
            "https://localhost/x", "http://localhost:9/x", "https://LocalHost./x", "https://db.localhost/x"]


@pytest.mark.parametrize("url", INTERNAL)
def test_hooks_to_this_machine_or_a_private_network_are_refused_by_default(world, url):
    assert not world.reg.settings.webhooks_private
    _refused(world, lambda: operations.add_webhook(world.reg, OP, CH, WS, "ci", url, ["publish"],
                                                   signing="hmac-sha256"), "REGISTRY_WEBHOOKS_PRIVATE=1")


@pytest.mark.parametrize("url", ["https://hooks.example.com/x", "https://93.184.216.34/x", "https://[2606:4700::1]/x"])
def test_hooks_to_public_hosts_are_added(world, url):
    hook = operations.add_webhook(world.reg, OP, CH, WS, "ci", url, ["publish"]).hook
    assert secrets.stored(world.reg.settings, WS, hook).url == url and not hook.url
