import dataclasses
import hashlib
import os
import time
from pathlib import Path

import msgspec
import pytest

from registry import layout
from registry.fsync import Needed
from registry.ledger import REF, Ledger, writing
from tests.support.ledger import git, user_change

# --- crash recovery: the journal moves a lagging branch forward over complete commits -----------


def _lose_ref_updates(ledger, back_to: str) -> None:
    """What a power cut can leave: the ref file as it was before the last (unsynced) moves."""
    (ledger.path / REF).write_text(back_to + "\n")


def test_a_branch_that_lost_its_last_moves_is_moved_forward_on_open(ledger):
    base = ledger.head()
    ledger.transact(lambda snap: user_change("a@example.com"))
    tip = ledger.transact(lambda snap: user_change("b@example.com")).commit.id
    _lose_ref_updates(ledger, base)
    reopened = Ledger.open(ledger.path)
    assert reopened.head() == tip and reopened.snapshot().exists(layout.user("b@example.com"))
    assert (ledger.path / "registry-journal").read_bytes() == b""  # the ref is durable: nothing to redo
    git(ledger, "fsck", "--strict")


def test_a_torn_ref_is_rebuilt_from_where_the_journal_starts(ledger):
    tip = ledger.transact(lambda snap: user_change("a@example.com")).commit.id
    (ledger.path / REF).write_bytes(b"")
    assert Ledger.open(ledger.path).head() == tip


def _publish_like(ledger, email: str, blob: Path) -> str:
    """A commit that needs a file outside git, as a publish needs its distribution."""
    change = user_change(email)
    data = blob.read_bytes()
    needed = Needed(blob, len(data), hashlib.sha256(data).hexdigest())
    return ledger.transact(lambda snap: dataclasses.replace(change, needs=(needed,))).commit.id


def test_what_did_not_reach_the_disk_is_put_back_from_the_journal(ledger, tmp_path):
    """Only the journal is fsynced: a crash may tear the pack, its index, the file and the ref,
    and a replay restores them all."""
    base = ledger.head()
    blob = ledger.path.parent / "blobs" / "ab" / "distribution.whl"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"the uploaded bytes")
    tip = _publish_like(ledger, "a@example.com", blob)
    record = list(ledger._journal.entries())[-1]
    pack = ledger.path / "objects" / "pack" / f"{record.pack}.pack"
    pack.chmod(0o644)
    pack.write_bytes(pack.read_bytes()[:-30])  # torn
    (ledger.path / "objects" / "pack" / f"{record.pack}.idx").unlink()
    blob.unlink()
    blob.parent.rmdir()
    _lose_ref_updates(ledger, base)
    reopened = Ledger.open(ledger.path)
    assert reopened.head() == tip and reopened.snapshot().exists(layout.user("a@example.com"))
    assert blob.read_bytes() == b"the uploaded bytes"
    assert list(ledger._journal.entries()) == []
    git(ledger, "fsck", "--strict", "--full")


def test_a_record_torn_mid_append_is_not_replayed(ledger):
    """A record torn mid-append was never acknowledged: the branch stays where it was."""
    base = ledger.head()
    ledger.transact(lambda snap: user_change("a@example.com"))
    with open(ledger._journal.path, "r+b") as fh:
        fh.truncate(ledger._journal.size() - 7)
    _lose_ref_updates(ledger, base)
    assert Ledger.open(ledger.path).head() == base
    assert ledger.damage.unresolved() == []


@pytest.mark.parametrize("harm", ["missing", "emptied", "altered"])
def test_a_big_file_damaged_after_its_record_is_reported_and_no_later_record_is_dropped(
        ledger, tmp_path, monkeypatch, harm):
    """A big file is durable before its record is (it travels beside the journal, not in it), so a
    replay that finds it missing or not what the record says has found damage: it says so loudly,
    and still replays that record and every one after it (they were acknowledged)."""
    monkeypatch.setattr(writing, "COPY_LIMIT", 4)
    base = ledger.head()
    big = tmp_path / "big.whl"
    big.write_bytes(b"more than four bytes")
    damaged = _publish_like(ledger, "b@example.com", big)
    record = list(ledger._journal.entries())[-1]
    assert record.copies == {}
    assert record.checks == {ledger._journal.relative(big): (20, hashlib.sha256(b"more than four bytes").hexdigest())}
    later = ledger.transact(lambda snap: user_change("c@example.com")).commit.id
    {"missing": big.unlink, "emptied": lambda: big.write_bytes(b""),
     "altered": lambda: big.write_bytes(b"MORE than four bytes")}[harm]()
    _lose_ref_updates(ledger, base)
    reopened = Ledger.open(ledger.path)
    assert reopened.head() == later and reopened.repo().descendant_of(later, damaged)
    [damage] = reopened.damage.unresolved(deep=True)
    assert damage.commit == damaged and damage.path == ledger._journal.relative(big)
    Ledger.open(ledger.path)  # a second replay (after a second cut) doesn't report it twice
    assert len(reopened.damage.unresolved(deep=True)) == 1
    big.write_bytes(b"more than four bytes")  # repaired (a client sent the same file again)
    assert reopened.damage.unresolved(deep=True) == []


def test_an_older_releases_last_record_with_its_big_file_missing_was_never_acknowledged(ledger, tmp_path):
    """Before records carried checks, big files were synced beside the record, in the same round:
    the last record's file may never have made it, and then its publish was never acknowledged."""
    from registry.ledger import journal

    base = ledger.head()
    ledger.transact(lambda snap: user_change("a@example.com"))
    record = list(ledger._journal.entries())[-1]
    old = msgspec.structs.replace(record, synced=("blobs/never-synced.whl",), checks={})
    payload = msgspec.msgpack.encode(old)
    ledger._journal.reset()
    ledger._journal.path.write_bytes(journal._HEADER.pack(journal._MAGIC, len(payload),
                                                          hashlib.sha256(payload).digest()[:16]) + payload)
    _lose_ref_updates(ledger, base)
    assert Ledger.open(ledger.path).head() == base and ledger.damage.unresolved() == []


def test_a_record_torn_by_a_killed_writer_does_not_hide_the_commits_after_it(ledger):
    """A worker killed mid-append leaves a torn record at the journal's end while the others carry
    on: their records must not land behind it, where a replay (which stops at a torn record) would
    never reach them."""
    other = Ledger.open(ledger.path)  # another worker process, already running
    base = ledger.head()
    ledger.transact(lambda snap: user_change("a@example.com"))
    journal = ledger._journal.path
    whole = journal.read_bytes()
    with open(journal, "ab") as fh:  # the killed worker's half-written record
        fh.write(whole[: len(whole) // 2])
    tip = other.transact(lambda snap: user_change("b@example.com")).commit.id
    assert [e.commit for e in ledger._journal.entries()][-1] == tip
    _lose_ref_updates(ledger, base)
    assert Ledger.open(ledger.path).head() == tip


def test_a_journal_record_written_in_parts_or_cut_short_by_a_full_disk(ledger, monkeypatch):
    """os.write may take part of a record (a full disk, a quota): the rest is written, or the
    commit fails and leaves no torn record for the next one to land behind."""
    real_write, state = os.write, {"mode": "halves"}
    journal_fd, _ = ledger._journal._current()

    def write(fd, data):
        if fd != journal_fd or state["mode"] is None:
            return real_write(fd, data)
        if state["mode"] == "full" and state["calls"]:  # half a record went in; then the disk is full
            raise OSError(28, "No space left on device")
        state["calls"] = state.get("calls", 0) + (state["mode"] == "full")
        return real_write(fd, bytes(data[: max(1, len(data) // 2)]))

    monkeypatch.setattr(os, "write", write)
    first = ledger.transact(lambda snap: user_change("halves@example.com")).commit.id
    assert [e.commit for e in ledger._journal.entries()][-1] == first
    state.update(mode="full", calls=0)
    with pytest.raises(OSError):
        ledger.transact(lambda snap: user_change("full@example.com"))
    assert [e.commit for e in ledger._journal.entries()][-1] == first  # and nothing torn after it
    state["mode"] = None
    tip = ledger.transact(lambda snap: user_change("after@example.com")).commit.id
    assert [e.commit for e in ledger._journal.entries()][-1] == tip
    _lose_ref_updates(ledger, first)
    assert Ledger.open(ledger.path).head() == tip


def test_a_replay_writes_nothing_outside_the_data_directory(ledger, tmp_path):
    """Whatever bytes a record holds, a replay only writes where a commit's own files live."""
    import hashlib

    import msgspec

    from registry.ledger import journal

    ledger.transact(lambda snap: user_change("a@example.com"))
    good = list(ledger._journal.entries())[-1]
    name = f"../../escaped-{tmp_path.name}"
    escape = (ledger._journal.base / name).resolve()
    forged = {f: getattr(good, f) for f in good.__struct_fields__} | {"copies": {name: b"owned"}}
    payload = msgspec.msgpack.encode(forged)
    with open(ledger._journal.path, "ab") as fh:
        fh.write(journal._HEADER.pack(journal._MAGIC, len(payload), hashlib.sha256(payload).digest()[:16]) + payload)
    assert [e.commit for e in ledger._journal.entries()] == [good.commit]  # the forged one is skipped
    Ledger.open(ledger.path)
    assert not escape.exists()


def test_writers_follow_a_journal_emptied_by_another_process(ledger):
    """`Ledger.open` (every CLI command) checkpoints and empties the journal under a running server;
    the server's writers must start again at its beginning, not where they last wrote."""
    server = Ledger.open(ledger.path)
    base = ledger.head()
    for i in range(3):
        server.transact(lambda snap, i=i: user_change(f"s{i}@example.com"))
    Ledger.open(ledger.path)  # a CLI command: checkpoints, empties the journal
    cli = Ledger.open(ledger.path)
    cli.transact(lambda snap: user_change("cli@example.com"))
    tip = server.transact(lambda snap: user_change("s3@example.com")).commit.id
    assert [e.commit for e in ledger._journal.entries()][-1] == tip
    _lose_ref_updates(ledger, base)
    assert Ledger.open(ledger.path).head() == tip


def test_the_journal_is_emptied_at_checkpoints(ledger, monkeypatch):

    monkeypatch.setattr(writing, "CHECKPOINT_AT", 6000)
    def checkpointed():  # the background checkpoint syncs the retired journal, then drops it
        deadline = time.monotonic() + 10
        while ledger._journal.retired.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ledger._journal.retired.exists()

    for i in range(12):
        # (while a retired journal waits for its checkpoint the journal can't retire again, and grows:
        # on a busy machine that is a slow thread, not a failure, so each write waits for the last)
        checkpointed()
        ledger.transact(lambda snap, i=i: user_change(f"u{i}@example.com"))
        assert ledger._journal.size() <= 6000 + 4000  # retired and started afresh as it fills
    checkpointed()
    tip = ledger.head()
    assert Ledger.open(ledger.path).head() == tip
    assert ledger._journal.size() == 0  # opening checkpoints too


# --- folding packs: git's geometric rule, without git's walk over the whole ledger ---------------


