import os
import subprocess

import pytest

from registry import layout
from registry.ledger import Ledger, repack
from tests.support.ledger import user_change


@pytest.mark.parametrize("by_hand", [False, True])
def test_readers_let_go_of_packs_a_repack_deleted(ledger, by_hand, monkeypatch):
    """libgit2 keeps every pack it has seen open; a long-lived reader must not collect them. Our
    repacks leave a mark readers check; a `git repack` run by hand leaves none, and is noticed by
    listing the pack directory (at most every RELIST_SECONDS)."""
    if by_hand:
        monkeypatch.setattr(repack, "RELIST_SECONDS", 0.0)
    def open_packs():
        found = 0
        for fd in os.listdir(f"/proc/{os.getpid()}/fd"):
            try:
                target = os.readlink(f"/proc/{os.getpid()}/fd/{fd}")
                found += target.startswith(str(ledger.path)) and ".pack" in target
            except FileNotFoundError:
                pass
        return found

    writer = Ledger.open(ledger.path)  # as another process: its objects reach us only through packs
    for round_ in range(5):
        for i in range(20):
            writer.transact(lambda snap, i=i, r=round_: user_change(f"r{r}-{i}@example.com"))
            assert ledger.snapshot().exists(layout.user(f"r{round_}-{i}@example.com"))
        writer._writer._drop_writer()  # (count only the reader's packs)
        assert open_packs() >= 10  # one per commit since the last repack, as libgit2 found them
        if by_hand:
            subprocess.run(["git", "-C", str(ledger.path), "repack", "-a", "-d", "-q"], check=True)
        else:
            ledger.repack(full=True)
        writer.transact(lambda snap, r=round_: user_change(f"after-{r}@example.com"))
        ledger.snapshot()  # the tip moved: the reader notices the repack and starts afresh
        assert open_packs() <= 3


@pytest.mark.parametrize(("counts", "split"), [
    ([], 0),
    ([11] * 48 + [100_000], 48),  # a day of commits beside the big pack: fold the small ones
    ([1, 3, 9, 27], 0),  # already a progression
    ([5, 5, 100], 2),
    ([11] * 5, 5),  # no big pack yet: all into one
    ([10, 10, 10, 50, 60], 5),  # the new pack (30) would break the progression above it
])
def test_the_packs_to_fold_are_chosen_as_git_chooses_them(counts, split):
    from registry.ledger.repack import geometric_split

    assert geometric_split(counts) == split


@pytest.mark.parametrize("by_git", [False, True])
def test_folding_packs_keeps_every_object_and_readers_follow(ledger, by_git, monkeypatch):
    """Small roll-ups are ours; big ones (here: any) are git's own geometric repack."""
    from registry.ledger.repack import packs

    if by_git:
        monkeypatch.setattr(repack, "GIT_ABOVE", 1)
    for i in range(100):
        ledger.transact(lambda snap, i=i: user_change(f"base-{i}@example.com"))
    ledger.repack(full=True)
    for i in range(30):
        ledger.transact(lambda snap, i=i: user_change(f"fold-{i}@example.com"))
    pack_dir = ledger.path / "objects" / "pack"
    before = packs(pack_dir)
    assert len(before) == 31 and before[-1].objects > 400
    reader = Ledger.open(ledger.path)  # another process's view, opened before the fold
    assert reader.snapshot().exists(layout.user("fold-0@example.com"))
    server_info = ledger.path / "objects" / "info" / "packs"  # what `git repack` writes, and pack-objects doesn't
    server_info.unlink(missing_ok=True)
    ledger.repack()
    assert server_info.exists() == by_git
    after = packs(pack_dir)
    assert len(after) == 2 and after[-1] == before[-1]  # the small ones became one; the big one stayed
    assert sum(p.objects for p in after) >= sum(p.objects for p in before[:-1])
    assert not [n for n in os.listdir(pack_dir) if n.startswith("tmp_")]
    ledger.transact(lambda snap: user_change("after-fold@example.com"))
    snap = reader.snapshot()
    assert all(snap.exists(layout.user(f"fold-{i}@example.com")) for i in range(30))
    fsck = subprocess.run(["git", "-C", str(ledger.path), "fsck", "--strict", "--no-dangling"], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stderr
