"""Each version of a hook's record names its own URL and secret in the data directory: a replace whose
commit fails leaves the hook as it was; a backlog goes where the hook points now, with its secret now
(an admin moves a hook off a dead receiver by replacing it), and a round read before a replace or a
removal sends nothing under the old record; a record written by an older version (its URL in it, its
secret by name) still delivers."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from registry import identity, layout, operations
from registry.audit import Action, T
from registry.errors import RegistryError
from registry.model import Webhook
from registry.operations._common import make_change
from registry.reads import Reader
from registry.secretfile import SecretFile
from registry.webhooks import secrets
from registry.webhooks.delivery import HookRunner
from registry.webhooks.sending import signed_content
from tests.support.receiver import Receiver
from tests.support.world import WS

from .test_delivery import drain

OP, CH = identity.operator(), "cli"
OLD, NEW = "old-secret-" + "o" * 16, "new-secret-" + "n" * 16


def signed_with(got, secret: str) -> bool:
    message = signed_content(got.headers["webhook-id"], got.headers["webhook-timestamp"], got.body)
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return got.headers["webhook-signature"] == f"sha256={expected}"


def created(world, *names: str) -> list[str]:
    """Packages created, one commit each: the commits."""
    out = []
    for name in names:
        operations.create_package(world.reg, OP, CH, WS, name, "utils")
        out.append(world.reg.ledger.head())
    return out


def hook(world, name: str = "ci") -> Webhook:
    found = world.reg.snapshot().get(layout.webhook(WS, name), Webhook)
    assert found is not None
    return found


def test_a_replace_whose_commit_fails_leaves_the_hook_signing_with_its_old_secret(world, tmp_path):
    reg = world.reg
    with Receiver() as old, Receiver() as new:
        operations.add_webhook(reg, OP, CH, WS, "ci", old.url, ["package-created"], signing="hmac-sha256",
                               secret=OLD)
        before = hook(world)
        floor = reg.disk.floor
        reg.disk.floor = 2**62  # (the disk is "full": the ledger refuses the commit; the secrets file is written)
        try:
            with pytest.raises(RegistryError):
                operations.add_webhook(reg, OP, CH, WS, "ci", new.url, ["package-created"], signing="hmac-sha256",
                                       secret=NEW)
        finally:
            reg.disk.floor = floor
        assert hook(world) == before
        assert len(secrets.entries(reg.settings, WS, "ci")) == 2  # (the staged one: named by no record)
        (commit,) = created(world, "acme-after-failure")
        assert drain(reg, "ci") is None
        (got,) = old.wait_for(1)
        assert got.headers["webhook-id"] == commit and signed_with(got, OLD) and not signed_with(got, NEW)
        assert new.got == []
        # The staged entry no record names goes lazily: once it is older than a commit can take.
        secrets.prune(reg.settings, WS, before)
        assert len(secrets.entries(reg.settings, WS, "ci")) == 2  # (still young: its commit may be on its way)
        staged = next(k for k in secrets.entries(reg.settings, WS, "ci") if k != before.key)
        table = secrets._FILE._read(reg.settings.webhook_secrets_path)
        aged = secrets.Stored(url=new.url, secret=NEW, staged=1)
        assert isinstance(table[WS][f"ci.{staged}"], secrets.Stored)
        secrets._FILE.store(reg.settings.webhook_secrets_path, WS, f"ci.{staged}", aged)
        secrets.prune(reg.settings, WS, before)
        assert secrets.entries(reg.settings, WS, "ci") == [before.key]


def test_a_backlog_goes_where_the_hook_points_now_and_a_round_read_before_a_change_sends_nothing(world):
    reg = world.reg
    with Receiver() as dead, Receiver() as new:
        operations.add_webhook(reg, OP, CH, WS, "ci", dead.url, ["package-created"], signing="hmac-sha256",
                               secret=OLD)
        before = created(world, "acme-one", "acme-two")  # (nothing delivered yet: a backlog)
        operations.add_webhook(reg, OP, CH, WS, "ci", new.url, ["package-created"], signing="hmac-sha256",
                               secret=NEW)
        after = created(world, "acme-three", "acme-four")
        assert drain(reg, "ci") is None
        assert dead.got == []
        assert new.ids() == before + after and all(signed_with(g, NEW) for g in new.got)
        # Past the replace, the replaced version's URL and secret are dropped.
        assert secrets.entries(reg.settings, WS, "ci") == [hook(world).key]
        # A round whose record was read before a replace or a removal sends nothing as that record says.
        for change in ("replace", "remove"):
            sent = len(dead.got)
            runner = HookRunner(reg, WS, "ci")
            try:
                current = hook(world)
                created(world, f"acme-{change}-before")
                if change == "replace":
                    operations.add_webhook(reg, OP, CH, WS, "ci", dead.url, ["package-created"],
                                           signing="hmac-sha256", secret=OLD)
                else:
                    operations.remove_webhook(reg, OP, CH, WS, "ci")
                created(world, f"acme-{change}-after")
                assert runner.step(current) == 0.0  # (the next round reads it again)
            finally:
                runner.close()
            assert new.ids() == before + after and len(dead.got) == sent
            if change == "replace":  # (and that round sends everything to where it points now)
                assert drain(reg, "ci") is None
                assert len(dead.got) == 2 and all(signed_with(g, OLD) for g in dead.got)
                assert new.ids() == before + after


def test_a_record_written_by_an_older_version_still_delivers(world):
    """Its URL in the record, its secret by the hook's name: read as they are; shown without its path."""
    reg = world.reg
    with Receiver() as receiver:
        url = receiver.url + "/T0OLDAAA/B0OLDBBB/oldsecretpath42"
        record = Webhook(name="legacy", url=url, events=["package-created"], signing="hmac-sha256", secret=True,
                         since=reg.ledger.head(), added=OP.provenance(CH))
        assert b'"url"' in reg.snapshot().encode(record) if hasattr(reg.snapshot(), "encode") else True
        SecretFile(str).store(reg.settings.webhook_secrets_path, WS, "legacy", OLD)  # (as it was kept)
        reg.transact(lambda snap: make_change(OP, CH, Action.ADD_WEBHOOK, "add webhook legacy of acme",
                                              {layout.webhook(WS, "legacy"): record}, (T.WORKSPACE, WS)))
        assert hook(world, "legacy") == record
        (commit,) = created(world, "acme-legacy")
        assert drain(reg, "legacy") is None
        (got,) = receiver.wait_for(1)
        assert got.headers["webhook-id"] == commit and got.path.endswith("oldsecretpath42") and signed_with(got, OLD)
        (listed,) = Reader(reg, OP).webhooks(WS)
        assert listed.shown == "/".join(receiver.url.split("/")[:3]) + "/…"
        assert listed.fingerprint == secrets.fingerprint(url)


def test_racing_changes_of_one_hook_never_drop_an_entry_a_landing_commit_names(world):
    """Entries are staged outside the ledger's lock, and commits may land in another order than they
    were staged in: a replace or a removal drops exactly the version it replaced or removed, and the
    deliverer's prune only what is older than a commit can take, so an add staged earlier and
    committed later still finds its URL and secret."""
    reg = world.reg
    operations.add_webhook(reg, OP, CH, WS, "ci", "https://hooks.example.com/a", ["*"], signing="hmac-sha256",
                           secret=OLD)
    first = hook(world)
    waiting = Webhook(**{**{f: getattr(first, f) for f in first.__struct_fields__}, "key": secrets.new_key()})
    secrets.stage(reg.settings, WS, waiting, "https://hooks.example.com/waiting", NEW)  # (its commit: later)
    operations.add_webhook(reg, OP, CH, WS, "ci", "https://hooks.example.com/b", ["*"], signing="hmac-sha256",
                           secret=NEW)  # (staged after it, committed before it)
    second = hook(world)
    secrets.prune(reg.settings, WS, second)  # (the deliverer, under the second version)
    assert set(secrets.entries(reg.settings, WS, "ci")) == {second.key, waiting.key}  # (the first: replaced)
    operations.remove_webhook(reg, OP, CH, WS, "ci")  # (a removal racing the waiting add)
    assert secrets.entries(reg.settings, WS, "ci") == [waiting.key]
    assert secrets.stored(reg.settings, WS, waiting).url == "https://hooks.example.com/waiting"
