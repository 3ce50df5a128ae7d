"""The deliverer's rounds against a real receiver on 127.0.0.1: events in commit order, signed, at
least once; a receiver that was down gets everything it missed; a failure moves no cursor; a replay
delivers again. (That one worker of several delivers, and kills lose nothing: tests/e2e/webhooks.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from registry import identity, layout, operations
from registry.model import SigningKeys, Webhook
from registry.trust.keys import current
from registry.webhooks import delivery, state
from registry.webhooks.delivery import Deliverer, HookRunner, backoff
from registry.webhooks.sending import MISSING_URL, signed_content
from tests.support.helpers import make_wheel
from tests.support.receiver import Receiver
from tests.support.world import WS, publish

OP, CH = identity.operator(), "cli"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def drain(reg, name: str, ws: str = WS, rounds: int = 20) -> float | None:
    """Rounds of the hook's runner until it is caught up (None) or fails (its backoff)."""
    runner = HookRunner(reg, ws, name)
    try:
        for _ in range(rounds):
            hook = reg.snapshot().get(layout.webhook(ws, name), Webhook)
            wait = runner.step(hook)
            if wait != 0.0:
                return wait
        raise AssertionError("never caught up")
    finally:
        runner.close()


def verify_ed25519(reg, got) -> None:
    keys = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    public = load_ssh_public_key(current(keys, "commit").public_key.encode())
    scheme, _, sig = got.headers["webhook-signature"].partition("=")
    assert scheme == "ed25519"
    public.verify(base64.b64decode(sig), signed_content(got.headers["webhook-id"], got.headers["webhook-timestamp"],
                                                        got.body))


def lifecycle(world, tmp_path, name: str = "acme-tools") -> list[str]:
    """Create a package, publish two versions, yank one, delete the other: the commits, in order."""
    reg, dev = world.reg, world.principal("dev@acme.test")
    done = [operations.create_package(reg, OP, CH, WS, name, "utils")]
    for v in ("1.0", "2.0"):
        publish(reg, dev, make_wheel(tmp_path, name, v))
    operations.yank(reg, OP, CH, WS, name, "1.0", "broken")
    operations.delete_version(reg, OP, CH, WS, name, "2.0")
    del done
    return [c.id for c in reg.ledger.walk()][:5][::-1]


def test_publish_yank_delete_arrive_in_order_signed_by_the_ledgers_key(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["*"])
    commits = lifecycle(world, tmp_path)
    assert drain(world.reg, "ci") is None
    got = receiver.wait_for(5)
    assert [g.headers["webhook-id"] for g in got] == commits
    assert [g.json["event"]["type"] for g in got] == ["package-created", "publish", "publish", "yank", "delete"]
    publish_event = got[1].json["event"]
    assert publish_event["package"] == "acme-tools" and publish_event["version"] == "1.0"
    assert publish_event["repository"] == "utils" and publish_event["workspace"] == WS
    assert publish_event["provenance"]["actor"] == "dev@acme.test"
    assert publish_event["provenance"]["kind"] == "api-token" and publish_event["provenance"]["token_id"]
    assert got[3].json["event"]["provenance"] == {"actor": "operator@localhost", "channel": "cli", "kind": "person"}
    for g in got:
        verify_ed25519(world.reg, g)
    # A signature over other bytes does not verify.
    from cryptography.exceptions import InvalidSignature
    tampered = type(got[0])(got[0].path, got[0].headers, got[0].body.replace(b"acme", b"acmf"), got[0].at)
    with pytest.raises(InvalidSignature):
        verify_ed25519(world.reg, tampered)
    # Caught up: nothing is sent twice.
    assert drain(world.reg, "ci") is None and len(receiver.got) == 5


def test_hmac_signature_verifies_with_the_hooks_secret(world, receiver, tmp_path):
    added = operations.add_webhook(world.reg, OP, CH, WS, "hmac", receiver.url, ["publish"], signing="hmac-sha256")
    assert added.secret and added.hook.secret
    # The secret is in the data directory (0600), never in the ledger: not in the record, not in a commit.
    assert added.secret.encode() not in world.reg.snapshot().raw(layout.webhook(WS, "hmac"))
    assert all(added.secret not in str(c) for c in world.reg.ledger.walk())
    assert world.reg.settings.webhook_secrets_path.stat().st_mode & 0o777 == 0o600
    operations.create_package(world.reg, OP, CH, WS, "acme-hm", "utils")
    publish(world.reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "acme-hm", "1.0"))
    assert drain(world.reg, "hmac") is None
    (got,) = receiver.wait_for(1)
    message = signed_content(got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
    expected = hmac.new(added.secret.encode(), message, hashlib.sha256).hexdigest()
    assert got.headers["webhook-signature"] == f"sha256={expected}"
    assert got.json["event"]["type"] == "publish"  # (create-package: not subscribed)


def test_a_receiver_that_was_down_gets_everything_in_order(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["publish", "package-created"])
    operations.create_package(world.reg, OP, CH, WS, "acme-many", "utils")
    assert drain(world.reg, "ci") is None
    receiver.wait_for(1)
    receiver.stop()
    dev = world.principal("dev@acme.test")
    for i in range(50):
        publish(world.reg, dev, make_wheel(tmp_path, "acme-many", f"1.{i}"))
    wanted = [c.id for c in world.reg.ledger.walk()][:50][::-1]
    before = state.cursor(world.reg.settings, WS, "ci")
    assert drain(world.reg, "ci") == backoff(1)  # refused: retried later
    assert state.cursor(world.reg.settings, WS, "ci") == before  # (no 2xx: the cursor stays)
    failed = state.attempts(world.reg.settings, WS, "ci")[0]
    assert not failed.ok and failed.status is None and failed.error == "refused"
    receiver.start()  # (on its port again)
    assert drain(world.reg, "ci") is None
    got = receiver.wait_for(51)
    assert [g.headers["webhook-id"] for g in got[1:]] == wanted


def test_an_error_answer_is_retried_with_backoff_and_nothing_after_it_is_sent(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["*"])
    lifecycle(world, tmp_path)
    receiver.status = 503
    runner = HookRunner(world.reg, WS, "ci")
    hook = world.reg.snapshot().get(layout.webhook(WS, "ci"), Webhook)
    assert [runner.step(hook) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    tries = state.attempts(world.reg.settings, WS, "ci")
    assert {t.event for t in tries} == {tries[0].event} and [t.attempt for t in tries] == [4, 3, 2, 1]
    assert tries[0].status == 503 and receiver.got == []
    receiver.status = 200
    assert runner.step(hook) is None
    assert len(receiver.wait_for(5)) == 5
    runner.close()


def test_replay_from_a_commit_delivers_again_from_there(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["*"])
    commits = lifecycle(world, tmp_path)
    assert drain(world.reg, "ci") is None
    receiver.wait_for(5)
    operations.replay_webhook(world.reg, OP, CH, WS, "ci", commits[2][:10])
    assert drain(world.reg, "ci") is None
    assert receiver.ids()[5:] == commits[2:]
    assert drain(world.reg, "ci") is None and len(receiver.got) == 8  # (a replay applies once)


def test_a_repository_hook_hears_only_of_its_repository(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "secret-only", receiver.url, ["*"], repository="secret")
    lifecycle(world, tmp_path)  # (all in utils)
    operations.create_package(world.reg, OP, CH, WS, "acme-hidden", "secret")
    assert drain(world.reg, "secret-only") is None
    (got,) = receiver.wait_for(1)
    assert got.json["event"]["package"] == "acme-hidden" and got.json["event"]["repository"] == "secret"


def test_grants_and_policies_are_events_too(world, receiver):
    operations.add_webhook(world.reg, OP, CH, WS, "admin", receiver.url, ["grant", "policy"])
    operations.grant(world.reg, OP, CH, WS, "outsider@acme.test", "read", repository="utils")
    operations.create_package(world.reg, OP, CH, WS, "acme-pol", "utils")  # (not subscribed)
    operations.set_publish_policy(world.reg, OP, CH, WS, "acme-pol", ["main"], [])
    assert drain(world.reg, "admin") is None
    got = receiver.wait_for(2)
    assert [(g.json["event"]["type"], g.json["event"].get("user")) for g in got] == [
        ("grant", "outsider@acme.test"), ("policy", None)]


def test_the_bitbucket_target_runs_a_custom_pipeline_with_the_token(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "deploy", receiver.url, [], fmt="bitbucket-pipeline",
                           secret="bb-repository-access-token-123", pipeline="deploy-staging", branch="main")
    operations.create_package(world.reg, OP, CH, WS, "acme-bb", "utils")
    publish(world.reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "acme-bb", "3.1"))
    assert drain(world.reg, "deploy") is None
    (got,) = receiver.wait_for(1)
    assert got.headers["authorization"] == "Bearer bb-repository-access-token-123"
    assert got.json["target"] == {"type": "pipeline_ref_target", "ref_type": "branch", "ref_name": "main",
                                  "selector": {"type": "custom", "pattern": "deploy-staging"}}
    variables = {v["key"]: v["value"] for v in got.json["variables"]}
    assert variables["REGISTRY_PACKAGE"] == "acme-bb" and variables["REGISTRY_VERSION"] == "3.1"


@pytest.mark.parametrize("kind", [{}, {"signing": "hmac-sha256"},
                                  {"fmt": "bitbucket-pipeline", "pipeline": "deploy", "branch": "main"}])
def test_a_hook_whose_url_and_secret_are_missing_sends_nothing_and_says_why(world, receiver, tmp_path, kind):
    """URLs and secrets are not in backups: after a restore, a hook fails each attempt, saying what to
    do, rather than guess where to send or send an empty-key signature or a call without its token."""
    reg = world.reg
    secret = {"secret": "s" * 24} if kind else {}
    operations.add_webhook(reg, OP, CH, WS, "ci", receiver.url, ["publish"], **secret, **kind)
    operations.create_package(reg, OP, CH, WS, "acme-lost", "utils")
    publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "acme-lost", "1.0"))
    published = reg.ledger.head()
    reg.settings.webhook_secrets_path.unlink()  # (a data directory restored without its secrets)
    assert drain(reg, "ci") == backoff(1)
    cursor = state.cursor(reg.settings, WS, "ci")
    assert cursor is None or cursor.last != published  # (the publish is still to be delivered)
    failed = state.attempts(reg.settings, WS, "ci")[0]
    assert not failed.ok and failed.status is None and failed.error == MISSING_URL
    assert receiver.got == []
    operations.add_webhook(reg, OP, CH, WS, "ci", receiver.url, ["publish"], **({"secret": "n" * 24} if kind else {}),
                           **kind)
    assert drain(reg, "ci") is None
    assert len(receiver.wait_for(1)) == 1  # (added again, the hook delivers what it missed)


def test_one_kept_alive_connection_carries_a_hooks_deliveries(world, receiver, tmp_path):
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["*"])
    lifecycle(world, tmp_path)
    assert drain(world.reg, "ci") is None
    assert len(receiver.wait_for(5)) == 5 and receiver.connections == 1


def test_a_receiver_that_closes_its_connections_gets_everything_too(world, tmp_path):
    """HTTP/1.0, a connection per request; and a kept-alive connection the receiver closed between
    two deliveries (it restarted): a new one at once, no failure, nothing twice."""
    with Receiver(keep_alive=False) as closing:
        operations.add_webhook(world.reg, OP, CH, WS, "old", closing.url, ["*"])
        commits = lifecycle(world, tmp_path)
        assert drain(world.reg, "old") is None
        assert closing.ids() == commits and closing.connections == 5
    with Receiver() as restarting:
        operations.add_webhook(world.reg, OP, CH, WS, "ci", restarting.url, ["*"])
        runner = HookRunner(world.reg, WS, "ci")
        try:
            hook = world.reg.snapshot().get(layout.webhook(WS, "ci"), Webhook)
            dev = world.principal("dev@acme.test")
            operations.create_package(world.reg, OP, CH, WS, "acme-again", "utils")
            assert runner.step(hook) is None
            restarting.stop()
            restarting.start()
            publish(world.reg, dev, make_wheel(tmp_path, "acme-again", "1.0"))
            assert runner.step(hook) is None
        finally:
            runner.close()
        assert len(restarting.wait_for(2)) == 2 and restarting.connections == 2
        assert all(a.ok for a in state.attempts(world.reg.settings, WS, "ci"))


def test_the_cursor_on_disk_names_only_what_was_delivered_and_is_written_seldom(world, receiver, tmp_path,
                                                                               monkeypatch):
    """A round's deliveries move the cursor in memory; on disk it lags (a crash delivers again, never
    skips), and catches up when the runner stops, or when a delivery fails."""
    monkeypatch.setattr(delivery, "SAVE_EVERY", 3600.0)
    operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["*"])
    added = state.cursor(world.reg.settings, WS, "ci")
    commits = lifecycle(world, tmp_path)
    runner = HookRunner(world.reg, WS, "ci")
    hook = world.reg.snapshot().get(layout.webhook(WS, "ci"), Webhook)
    assert runner.step(hook) is None and receiver.ids() == commits
    on_disk = state.cursor(world.reg.settings, WS, "ci")
    assert on_disk is not None and on_disk.last in [*commits[:-1], added.last if added else hook.since]
    assert runner.flush_in() is not None
    runner.close()
    assert state.cursor(world.reg.settings, WS, "ci").last == commits[-1]
    # A failure writes what was delivered before it.
    runner = HookRunner(world.reg, WS, "ci")
    for name in ("acme-b", "acme-c"):
        operations.create_package(world.reg, OP, CH, WS, name, "utils")
    assert runner.step(hook) is None
    delivered = receiver.ids()[-1]
    assert delivered == world.reg.ledger.head() and state.cursor(world.reg.settings, WS, "ci").last != delivered
    receiver.status = 503
    operations.create_package(world.reg, OP, CH, WS, "acme-d", "utils")
    assert runner.step(hook) == backoff(1)
    assert state.cursor(world.reg.settings, WS, "ci").last == delivered
    runner.close()


def test_the_deliverer_runs_no_hook_thread_without_hooks_and_delivers_once_one_is_added(world, receiver, tmp_path):
    deliverer = Deliverer(world.reg)
    thread = deliverer.start()
    try:
        time.sleep(0.3)
        assert not [t for t in threading.enumerate() if t.name.startswith("webhook ")]
        operations.add_webhook(world.reg, OP, CH, WS, "ci", receiver.url, ["package-created"])
        operations.create_package(world.reg, OP, CH, WS, "acme-woken", "utils")
        (got,) = receiver.wait_for(1, timeout=10)
        assert got.json["event"]["package"] == "acme-woken"
        operations.remove_webhook(world.reg, OP, CH, WS, "ci")
        deadline = time.monotonic() + 5
        while [t for t in threading.enumerate() if t.name == f"webhook {WS}/ci"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not [t for t in threading.enumerate() if t.name == f"webhook {WS}/ci"]
    finally:
        deliverer.stop()
        thread.join(5)
