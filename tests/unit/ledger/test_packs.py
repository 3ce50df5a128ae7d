import time

from registry import layout
from tests.support.ledger import git, user_change


def test_each_commit_is_one_pack_and_repacks_fold_them(ledger):
    ledger.maybe_repack = lambda **kwargs: False  # no background folding while we count
    for i in range(30):
        ledger.transact(lambda snap, i=i: user_change(f"p{i}@example.com"))
    assert ledger.pack_count() == 30
    pack = sorted((ledger.path / "objects" / "pack").glob("*.pack"))[0]
    assert git(ledger, "verify-pack", "-v", str(pack)).count(" commit ") == 1  # git reads what we wrote
    git(ledger, "fsck", "--strict", "--full")
    ledger.repack()  # geometric: only the small packs are rewritten
    assert ledger.pack_count() < 30
    ledger.repack(full=True)
    loose = int(git(ledger, "count-objects", "-v").split("count: ")[1].split()[0])
    assert ledger.pack_count() == 1 and loose == 0
    assert ledger.snapshot().exists(layout.user("p29@example.com"))
    del ledger.maybe_repack
    assert not ledger.maybe_repack()  # nothing piled up
    git(ledger, "fsck", "--strict", "--full")


def test_packs_pile_up_only_until_the_next_maintenance(ledger):
    for i in range(100):
        ledger.transact(lambda snap, i=i: user_change(f"q{i}@example.com"))
    for _ in range(200):  # the writer starts background repacks as packs pile up
        if not ledger._repacker.running.locked():
            break
        time.sleep(0.05)
    assert ledger.pack_count() < 60
    assert len(git(ledger, "log", "--format=%s").splitlines()) == 101
    git(ledger, "fsck", "--strict", "--full")
