"""Retention policies and quotas as verbs: who may set them, each refusal (a 4xx that changes
nothing), applying a plan (one commit per deletion, naming the policy; tombstones; the name stays
the workspace's), and quotas (usage kept by each publish and deletion; an upload over the quota is
a 413 saying the usage and the limit; two uploads that fit alone never pass together)."""

from __future__ import annotations

import threading

import pytest

from registry import identity, layout, model, operations, quota, retention
from registry.audit import Action, T, action
from registry.errors import Denied, FilenameSpent, Forbidden, Invalid, NotFound, RegistryError
from registry.reads import usage as usage_reads
from registry.reads.usage import workspace_usage
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

OP = identity.operator()
ADMIN, OWNER, DEV = "wsadmin@acme.test", "owner@acme.test", "dev@acme.test"


def wheels(tmp_path, name: str, *versions: str, payload: int = 512):
    tmp_path.mkdir(exist_ok=True)
    return [make_wheel(tmp_path, name, v, payload=payload) for v in versions]


def refused(world, error, verb, *args, **kwargs) -> str:
    head = world.reg.ledger.head()
    with pytest.raises(error) as caught:
        verb(*args, **kwargs)
    assert world.reg.ledger.head() == head
    return caught.value.message


def test_a_repository_policy_is_its_admins_and_a_pattern_alone_the_workspace_admins(world):
    reg = world.reg
    p = operations.set_retention(reg, world.principal(OWNER), "api", WS, "Nightly", repository="utils", keep_newest=3,
                                 protect=["Production", "11111111-2222-3333-4444-555555555555"])
    assert p.name == "nightly" and p.protect_environments == ["Production", "{11111111-2222-3333-4444-555555555555}"]
    commit = reg.ledger.commit(reg.ledger.head())
    assert action(commit) is Action.SET_RETENTION and commit.trailer(T.RETENTION_POLICY) == "nightly"
    assert reg.snapshot().get(layout.retention_policy(WS, "nightly"), model.RetentionPolicy) == p
    # the same again: no commit
    head = reg.ledger.head()
    operations.set_retention(reg, world.principal(OWNER), "api", WS, "nightly", repository="utils", keep_newest=3,
                             protect=["{11111111-2222-3333-4444-555555555555}", "Production"])
    assert reg.ledger.head() == head
    # a writer, a reader, an outsider, a read token: refused; so is the repository admin for a pattern alone
    for who in (DEV, "reader@acme.test", "outsider@acme.test", "dev-readonly"):
        refused(world, (Denied, Forbidden, NotFound), operations.set_retention, reg, world.principal(who), "api", WS,
                "x", repository="utils", keep_newest=1)
    refused(world, Denied, operations.set_retention, reg, world.principal(OWNER), "api", WS, "x", pattern="acme-*",
            keep_newest=1)
    operations.set_retention(reg, world.principal(ADMIN), "api", WS, "wide", pattern="Acme_*", keep_newest=1)
    assert reg.snapshot().get(layout.retention_policy(WS, "wide"), model.RetentionPolicy).pattern == "acme-*"
    # the repository admin can't take over (or remove) the workspace-wide one
    refused(world, Denied, operations.set_retention, reg, world.principal(OWNER), "api", WS, "wide",
            repository="utils", keep_newest=1)
    refused(world, Denied, operations.remove_retention, reg, world.principal(OWNER), "api", WS, "wide")
    operations.remove_retention(reg, world.principal(OWNER), "api", WS, "nightly")
    assert action(reg.ledger.commit(reg.ledger.head())) is Action.REMOVE_RETENTION
    assert not reg.snapshot().exists(layout.retention_policy(WS, "nightly"))


@pytest.mark.parametrize("kwargs, words", [
    (dict(name="x", keep_newest=1), "Say which packages"),
    (dict(name="x", repository="utils"), "Give the policy a rule"),
    (dict(name="x", repository="utils", keep_newest=0), "--keep-newest must be"),
    (dict(name="x", repository="utils", prerelease_days=-1), "--prerelease-days must be"),
    (dict(name="x", repository="utils", prerelease_days=10**6), "--prerelease-days must be"),
    (dict(name="Bad name!", repository="utils", keep_newest=1), "Invalid policy name"),
    (dict(name="x" * 41, repository="utils", keep_newest=1), "Policy names"),
    (dict(name="x", pattern="no/slash", keep_newest=1), "Invalid name pattern"),
    (dict(name="x", repository="utils", keep_newest=1, protect=[""]), "deployment environment"),
    (dict(name="x", repository="utils", keep_newest=1, protect=["a\nb"]), "Environment names"),
    (dict(name="x", repository="utils", keep_newest=1, protect=[str(i) for i in range(101)]), "At most 100"),
])
def test_bad_policies_are_refused_saying_what_is_wrong(world, kwargs, words):
    name = kwargs.pop("name")
    message = refused(world, Invalid, operations.set_retention, world.reg, OP, "cli", WS, name, **kwargs)
    assert words in message


def test_missing_things_are_404s(world):
    assert "does not exist" in refused(world, NotFound, operations.set_retention, world.reg, OP, "cli", WS, "x",
                                       repository="nope", keep_newest=1)
    assert "no retention policy" in refused(world, NotFound, operations.remove_retention, world.reg, OP, "cli", WS,
                                            "x")
    refused(world, NotFound, operations.remove_retention, world.reg, OP, "cli", "nows", "x")


def test_apply_deletes_one_version_a_commit_naming_the_policy_and_a_dry_run_changes_nothing(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    for w in wheels(tmp_path, "Acme.Utils", "1.0", "1.1", "1.2", "2.0rc1", "2.0"):
        publish(reg, dev, w)
    operations.set_retention(reg, OP, "cli", WS, "keep-two", repository="utils", keep_newest=2)
    now = model.now()
    head = reg.ledger.head()
    plan = retention.plan(reg.snapshot(), WS, now)  # (what the dry run prints: computing it commits nothing)
    assert reg.ledger.head() == head
    assert [(d.package, d.version, d.policy) for d in plan.deletions] == [
        ("acme-utils", "1.2", "keep-two"), ("acme-utils", "1.1", "keep-two"), ("acme-utils", "1.0", "keep-two")]
    before = usage_reads.stored(reg.snapshot(), WS)
    commits = [operations.apply_deletion(reg, OP, "cli", WS, d, now) for d in plan.deletions]
    assert all(commits) and len({c.id for c in commits}) == 3
    for c, d in zip(commits, plan.deletions, strict=True):
        assert action(c) is Action.DELETE_VERSION and c.trailer(T.RETENTION_POLICY) == "keep-two"
        assert c.trailer(T.VERSION) == d.version and "keep the newest 2" in reg.ledger.repo()[c.id].message
    snap = reg.snapshot()
    assert [v.version for v in operations.packages.versions(snap, WS, "acme-utils")] == ["2.0rc1", "2.0"]
    assert retention.plan(snap, WS, now).deletions == []  # applied: nothing left to do
    assert usage_reads.stored(snap, WS) == usage_reads.counted(snap, WS)
    assert usage_reads.stored(snap, WS).files == before.files - 3
    # applying a stale plan again changes nothing
    head = reg.ledger.head()
    assert operations.apply_deletion(reg, OP, "cli", WS, plan.deletions[0], now) is None
    assert reg.ledger.head() == head
    # the deleted filenames are spent: other bytes under one are refused (as are the same bytes)
    again = wheels(tmp_path / "again", "Acme.Utils", "1.0", payload=600)[0]
    with pytest.raises(FilenameSpent):
        publish(reg, dev, again)


def test_a_pipeline_may_not_apply_and_a_plan_made_stale_by_a_publish_is_not_applied(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    for w in wheels(tmp_path, "Acme.Utils", "1.0", "1.1"):
        publish(reg, dev, w)
    operations.set_retention(reg, OP, "cli", WS, "one", repository="utils", keep_newest=1)
    now = model.now()
    doomed = retention.plan(reg.snapshot(), WS, now).deletions
    assert [d.version for d in doomed] == ["1.0"]
    operations.remove_retention(reg, OP, "cli", WS, "one")  # (the policy went meanwhile)
    head = reg.ledger.head()
    assert operations.apply_deletion(reg, OP, "cli", WS, doomed[0], now) is None and reg.ledger.head() == head
    refused(world, Denied, operations.apply_deletion, reg, world.principal("reader@acme.test"), "api", WS,
            doomed[0], now)


def test_deleting_the_last_version_keeps_the_name_the_workspaces(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    (w,) = wheels(tmp_path, "Acme.Utils", "1.0")
    publish(reg, dev, w)
    operations.delete_version(reg, OP, "cli", WS, "acme-utils", "1.0")
    snap = reg.snapshot()
    assert snap.get(layout.package(WS, "acme-utils"), model.Package).repository == "utils"  # still owned
    assert "acme_utils-1.0-py3-none-any.whl" in snap.get(layout.deleted_files(WS, "acme-utils"),
                                                         model.DeletedFiles).files
    with pytest.raises(FilenameSpent):
        publish(reg, dev, wheels(tmp_path / "again", "Acme.Utils", "1.0", payload=99)[0])
    publish(reg, dev, wheels(tmp_path / "next", "Acme.Utils", "1.1")[0])  # (a new version goes on as before)


def test_usage_follows_every_publish_and_deletion(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    files = wheels(tmp_path, "Acme.Utils", "1.0", "1.1")
    for w in files:
        publish(reg, dev, w)
    snap = reg.snapshot()
    running = snap.get(layout.usage(WS), model.StorageUsage)
    assert running == usage_reads.counted(snap, WS) and running.bytes == sum(f.stat().st_size for f in files)
    operations.delete_version(reg, OP, "cli", WS, "acme-utils", "1.0")
    operations.delete_package(reg, OP, "cli", WS, "acme-utils")
    snap = reg.snapshot()
    assert snap.get(layout.usage(WS), model.StorageUsage) == model.StorageUsage(bytes=0, files=0)
    usage = workspace_usage(snap, WS)
    assert usage.repositories == {"public-lib": 0, "secret": 0}


def test_a_quota_is_the_operators_and_counts_usage_afresh(world, tmp_path):
    reg = world.reg
    refused(world, Forbidden, operations.set_quota, reg, world.principal(ADMIN), "api", WS, 10)
    refused(world, Invalid, operations.set_quota, reg, OP, "cli", WS, -1)
    refused(world, Invalid, operations.set_quota, reg, OP, "cli", WS, 2**63)  # (past what a record holds)
    refused(world, NotFound, operations.set_quota, reg, OP, "cli", "nows", 10)
    publish(reg, world.principal(DEV), wheels(tmp_path, "Acme.Utils", "1.0")[0])
    # a drifted running figure (a ledger repaired by hand) is counted again when the quota is set
    ws = operations.set_quota(reg, OP, "cli", WS, 10**6)
    commit = reg.ledger.commit(reg.ledger.head())
    assert action(commit) is Action.SET_QUOTA and commit.trailer(T.QUOTA) == str(10**6)
    snap = reg.snapshot()
    assert ws.quota_bytes == 10**6 and snap.get(layout.usage(WS), model.StorageUsage) == usage_reads.counted(snap, WS)
    assert operations.set_quota(reg, OP, "cli", WS, None).quota_bytes is None


def test_an_upload_over_the_quota_is_a_413_saying_usage_limit_and_what_to_do(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    first, second = wheels(tmp_path, "Acme.Utils", "1.0", "1.1", payload=4000)
    publish(reg, dev, first)
    used = first.stat().st_size
    operations.set_quota(reg, OP, "cli", WS, used + second.stat().st_size - 1)
    message = refused(world, quota.OverQuota, publish, reg, dev, second)
    assert quota.OverQuota.status == 413
    assert f"take {used} bytes" in message and "limit" in message and "registry workspace quota acme" in message
    assert "registry version delete" in message
    operations.set_quota(reg, OP, "cli", WS, used + second.stat().st_size)  # (exactly full is allowed)
    publish(reg, dev, second)


def test_two_uploads_that_fit_alone_never_pass_together(world, tmp_path):
    reg = world.reg
    dev = world.principal(DEV)
    a, b = wheels(tmp_path, "Acme.Utils", "1.0", "1.1", payload=4000)
    operations.set_quota(reg, OP, "cli", WS, max(a.stat().st_size, b.stat().st_size) + 100)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def upload(path):
        start.wait()
        try:
            outcomes.append(publish(reg, dev, path))
        except RegistryError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=upload, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["OverQuota", "Published"]
    snap = reg.snapshot()
    assert usage_reads.stored(snap, WS) == usage_reads.counted(snap, WS) and usage_reads.stored(snap, WS).files == 1
