

from registry import layout
from registry.ledger import REF
from tests.support.ledger import user_change


def test_stale_ref_lock_from_a_killed_writer_is_recovered(ledger):
    (ledger.path / f"{REF}.lock").write_text("left by a process that died mid-update\n")
    ledger.transact(lambda snap: user_change("d@example.com"))
    assert not (ledger.path / f"{REF}.lock").exists()
    assert ledger.snapshot().exists(layout.user("d@example.com"))


# --- every process's readers see a move of main at once (branch.Moves) ---------------------------

_READER = """
import sys
from registry.ledger import Ledger
from registry.ledger.branch import Moves
Moves.RECHECK = 3600.0  # (only the shared bytes can tell it main moved: never the ref's own stat)
ledger = Ledger.open(sys.argv[1], recover=False)
for line in sys.stdin:
    print(ledger.head(), flush=True)
"""


def _reader(ledger):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _READER, str(ledger.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _ask(reader) -> str:
    reader.stdin.write("head?\n")
    reader.stdin.flush()
    return reader.stdout.readline().strip()


def test_every_move_of_main_this_code_makes_is_seen_by_another_process_at_once(ledger):
    """Readers trust main unmoved while the shared bytes are unchanged: every way this code moves main
    goes through Branch.move (a commit, a replica's follower moving to its primary's head, a
    recovery replaying the journal), which must change them before anything is acknowledged, or
    another process answers from a tip that is no longer the tip. Here: commits and `move_to`. The
    reader never looks at the ref by itself."""
    reader = _reader(ledger)
    try:
        assert _ask(reader) == ledger.head()
        made = []
        for n in range(30):
            made.append(ledger.transact(lambda snap, n=n: user_change(f"u{n}@example.com")).commit.id)
            assert _ask(reader) == made[-1] == ledger.head(), n
        ledger.move_to(made[10])  # (a replica's follower, say, after a fetch)
        assert _ask(reader) == made[10] == ledger.head()
        ledger.move_to(made[-1])
        assert _ask(reader) == made[-1]
    finally:
        reader.stdin.close()
        reader.wait(10)


def test_a_move_of_main_by_hand_is_seen_within_a_recheck(ledger):
    """git by hand doesn't change the shared bytes: a reader still looks at the ref itself at least
    every Moves.RECHECK seconds."""
    import time

    import pygit2

    from registry.ledger.branch import Moves

    first = ledger.head()
    second = ledger.transact(lambda snap: user_change("a@example.com")).commit.id
    assert ledger.head() == second
    repo = pygit2.Repository(str(ledger.path))
    repo.references[REF].set_target(first)  # (behind the registry's back)
    moved = time.monotonic()
    while ledger.head() != first:
        assert time.monotonic() - moved < Moves.RECHECK + 1, "a move by hand never seen"
        time.sleep(0.01)


def test_where_the_shared_bytes_cant_be_mapped_readers_look_at_the_ref_every_time(tmp_path):
    """A ledger whose `registry-moves` can't be opened (here: a directory of that name) still gives
    every reader the tip of the moment: as before the shared bytes, a stat of the ref each time."""
    from registry.datadir import first_commit
    from registry.ledger import Ledger
    from registry.ledger.branch import MOVES

    path = tmp_path / "ledger.git"
    Ledger.create(path, first_commit(), committer=("registry", "registry@test"))
    (path / MOVES).unlink()
    (path / MOVES).mkdir()
    ledger = Ledger.open(path)
    other = Ledger.open(path)
    assert ledger._moves.seen() is None
    for n in range(5):
        made = other.transact(lambda snap, n=n: user_change(f"u{n}@example.com")).commit.id
        assert ledger.head() == made


def test_a_commit_whose_move_cant_be_told_is_still_whole_and_acknowledged(ledger, monkeypatch, caplog):
    """Changing the shared bytes comes after main has moved: if it fails (a full disk), the commit
    stands (its pack, its journal record, the tip all whole) and the caller is told it was made;
    other processes see it within the recheck."""
    import errno
    import subprocess

    from registry.ledger import branch

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(branch.os, "pwrite", full)
    made = ledger.transact(lambda snap: user_change("full@example.com")).commit.id
    assert ledger.head() == made and ledger.snapshot().exists(layout.user("full@example.com"))
    assert "could not tell other processes main moved" in caplog.text
    subprocess.run(["git", "-C", str(ledger.path), "fsck", "--strict", "--no-dangling"], check=True,
                   capture_output=True)
    monkeypatch.undo()
    assert ledger.transact(lambda snap: user_change("next@example.com")).parent == made  # (built on it)
