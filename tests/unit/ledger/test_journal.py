import dataclasses
import hashlib
import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pygit2
import pytest

from registry import identity, layout, model, operations
from registry.datadir import first_commit
from registry.errors import Conflict
from registry.fsync import Needed
from registry.ledger import REF, Change, Ledger, parse_trailers, repack, writing
from registry.model import Provenance, User

P = Provenance(at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), by="dev@example.com", channel="cli")


def user_change(email: str, name: str = "") -> Change:
    record = User(email=email, name=name or email, created=P)
    return Change(summary=f"create user {email}", author=("Dev", "dev@example.com"), time=P.at,
                  writes={layout.user(email): record}, trailers=(("Actor", P.by), ("Channel", P.channel), ("User", email)))


@pytest.fixture
def ledger(tmp_path):
    return Ledger.create(tmp_path / "ledger.git", first_commit(), committer=("registry", "registry@test"))


def git(ledger, *args):
    return subprocess.run(["git", "-C", str(ledger.path), *args], capture_output=True, text=True, check=True).stdout


def test_new_ledger_explains_itself(ledger):
    snap = ledger.snapshot()
    info = json.loads(snap.raw(layout.LEDGER_INFO))
    assert info["format"] == 1
    assert b"Every change is one commit" in snap.raw(layout.README)
    assert git(ledger, "log", "--format=%s").strip() == "init ledger"
    assert git(ledger, "symbolic-ref", "HEAD").strip() == REF


def test_a_change_is_one_commit_with_author_committer_and_trailers(ledger):
    commit = ledger.transact(lambda snap: user_change("a@example.com")).commit
    raw = ledger.repo()[commit.id]
    assert (raw.author.name, raw.author.email) == ("Dev", "dev@example.com")
    assert (raw.committer.name, raw.committer.email) == ("registry", "registry@test")
    assert raw.author.time == int(P.at.timestamp())
    assert raw.message.splitlines()[0] == "create user a@example.com"
    assert parse_trailers(raw.message) == [("Actor", "dev@example.com"), ("Channel", "cli"), ("User", "a@example.com")]
    assert git(ledger, "log", "--format=%(trailers:key=Actor,valueonly)", "-1").strip() == "dev@example.com"
    assert int(git(ledger, "rev-list", "--count", "HEAD")) == 2


def test_records_are_canonical_json(ledger):
    ledger.transact(lambda snap: user_change("a@example.com", "Ann"))
    data = ledger.snapshot().raw(layout.user("a@example.com"))
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed) and data.endswith(b"}\n") and b'\n  "email"' in data
    # equal content gives the equal git object
    assert ledger.repo().create_blob(data) == ledger.snapshot().tree[layout.user("a@example.com")].id


def test_nothing_to_change_makes_no_commit(ledger):
    ledger.transact(lambda snap: user_change("a@example.com"))
    head = ledger.head()
    assert ledger.transact(lambda snap: None).commit is None
    assert ledger.transact(lambda snap: user_change("a@example.com")).commit is None  # identical content
    assert ledger.head() == head


def test_refusal_inside_build_commits_nothing(ledger):
    head = ledger.head()

    def build(snap):
        raise Conflict("no")

    with pytest.raises(Conflict):
        ledger.transact(build)
    assert ledger.head() == head


def test_deleting_the_last_file_removes_its_directories(ledger):
    ledger.transact(lambda snap: user_change("a@example.com"))
    ledger.transact(lambda snap: Change(summary="delete", author=("x", "x@y"), time=P.at,
                                        writes={layout.user("a@example.com"): None}))
    assert set(ledger.snapshot().names("")) == {layout.README, layout.LEDGER_INFO}


def test_a_commit_rewrites_only_the_trees_on_its_path(ledger):
    """Commit cost doesn't grow with the registry: sibling shards keep their tree ids."""
    for i in range(40):
        ledger.transact(lambda snap, i=i: user_change(f"u{i}@example.com"))
    before = ledger.snapshot()
    shards_before = {name: before.tree_id(f"users/{name}") for name in before.names("users")}
    ledger.transact(lambda snap: user_change("new@example.com"))
    after = ledger.snapshot()
    changed = {name for name in after.names("users") if after.tree_id(f"users/{name}") != shards_before.get(name)}
    assert changed == {layout.shard("new@example.com")}


def test_snapshot_is_reused_until_another_writer_moves_the_branch(ledger, tmp_path):
    first = ledger.snapshot()
    assert ledger.snapshot() is first
    other = Ledger.open(ledger.path)  # as another process would: its own objects, same files
    other.transact(lambda snap: user_change("b@example.com"))
    fresh = ledger.snapshot()
    assert fresh is not first and fresh.get(layout.user("b@example.com"), User).email == "b@example.com"


def test_compare_and_swap_retries_when_the_branch_moves_underneath(ledger):
    """A writer that bypasses our lock still can't make us lose its commit or ours."""
    sneaky = Ledger.open(ledger.path)
    calls = []

    def build(snap):
        calls.append(snap.commit_id)
        if len(calls) == 1:  # move the branch behind our back, between our read and our CAS
            repo = sneaky.repo()
            tip = repo.lookup_reference(REF).target
            tree = repo[tip].tree.id
            sig = pygit2.Signature("other", "other@x")
            repo.create_commit(REF, sig, sig, "concurrent\n", tree, [tip])
        return user_change("c@example.com")

    ledger.transact(build)
    assert len(calls) == 2 and calls[0] != calls[1]
    subjects = git(ledger, "log", "--format=%s").splitlines()
    assert subjects[:2] == ["create user c@example.com", "concurrent"]


def test_stale_ref_lock_from_a_killed_writer_is_recovered(ledger):
    (ledger.path / f"{REF}.lock").write_text("left by a process that died mid-update\n")
    ledger.transact(lambda snap: user_change("d@example.com"))
    assert not (ledger.path / f"{REF}.lock").exists()
    assert ledger.snapshot().exists(layout.user("d@example.com"))


def test_threads_writing_at_once_lose_nothing(ledger):
    def work(t):
        for i in range(15):
            ledger.transact(lambda snap, t=t, i=i: user_change(f"t{t}-{i}@example.com"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    subjects = git(ledger, "log", "--format=%s").splitlines()
    assert len(subjects) == 61 and len(set(subjects)) == 61


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


def test_package_history_is_indexed_and_rebuilt_from_git(reg):
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", "acme")
    operations.create_project(reg, op, "cli", "acme", "CORE")
    operations.create_repository(reg, op, "cli", "acme", "r", "CORE")
    operations.create_package(reg, op, "cli", "acme", "one", "r")
    operations.create_package(reg, op, "cli", "acme", "two", "r")
    history = reg.history
    assert [e.summary for e in history.package("acme", "one")] == ["create package one in acme, linked to acme/r"]
    # the index is derived: throw it away and it is rebuilt from the commits, in bounded steps
    history.close()
    history.path.unlink()
    assert history.package("acme", "two") == []  # (a read never walks the ledger: it answers from the index)
    reg.catch_up_history()
    assert [e.summary for e in history.package("acme", "two")] == ["create package two in acme, linked to acme/r"]
    # a commit made behind the index's back (another process, a crash) is caught up off the request path
    other = operations.Registry(reg.settings, Ledger.open(reg.ledger.path), reg.blobs)
    other.history = type(history)(other.ledger, reg.settings.cache_path / "elsewhere.sqlite3")
    operations.delete_package(other, op, "cli", "acme", "one")
    assert history.behind()
    reg.catch_up_history()
    assert [e.summary.split(" (")[0] for e in history.package("acme", "one")] == [
        "delete package one", "create package one in acme, linked to acme/r"]



def test_the_history_catch_up_resumes_one_walk_and_a_failed_step_skips_nothing(reg, monkeypatch):
    op = identity.operator()
    operations.create_workspace(reg, op, "cli", "acme")
    operations.create_project(reg, op, "cli", "acme", "CORE")
    operations.create_repository(reg, op, "cli", "acme", "r", "CORE")
    for i in range(7):
        operations.create_package(reg, op, "cli", "acme", f"p{i}", "r")
    history = reg.history
    history.close()
    history.path.unlink()
    assert history.catch_up(limit=3) == 3 and history.catch_up(limit=3) == 3  # (the second resumes the first's walk)
    real = type(history).__module__ + "._insert_many"
    calls = []

    def failing(db, position, commits, **_):
        calls.append(position)
        raise OSError("disk full")

    monkeypatch.setattr(real, failing)
    with pytest.raises(OSError):
        history.catch_up(limit=3)
    monkeypatch.undo()
    while history.catch_up(limit=3):
        pass
    ids = [c.id for c in reg.ledger.walk()][::-1]
    assert history.serial() == len(ids)
    assert [history.position(c) for c in ids] == list(range(1, len(ids) + 1))

def test_layout_shards_growing_directories():
    assert layout.version("acme", "acme-utils", "1.2.0") == (
        f"workspaces/acme/packages/pypi/{layout.shard('acme-utils')}/acme-utils/versions/{layout.shard('1.2.0')}/1.2.0.json")
    assert layout.user("a@b.c").startswith(f"users/{layout.shard('a@b.c')}/")
    assert len({layout.shard(str(i)) for i in range(5000)}) == 256


def test_model_names_are_enforced_by_schema_types():
    with pytest.raises(Exception):
        import msgspec

        msgspec.json.decode(b'{"slug":"a","uuid":"nope","name":"a","created":{"at":"2026-01-01T00:00:00Z","by":"x","channel":"cli"}}',
                            type=model.Workspace)


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
def test_a_big_file_damaged_after_its_record_is_reported_and_no_later_record_is_dropped(ledger, tmp_path, monkeypatch, harm):
    """A big file is durable before its record is (it travels beside the journal, not in it), so a
    replay that finds it missing or not what the record says has found damage: it says so loudly,
    and still replays that record and every one after it (they were acknowledged)."""
    monkeypatch.setattr(writing, "COPY_LIMIT", 4)
    base = ledger.head()
    big = tmp_path / "big.whl"
    big.write_bytes(b"more than four bytes")
    damaged = _publish_like(ledger, "b@example.com", big)
    record = list(ledger._journal.entries())[-1]
    assert record.copies == {} and record.checks == {ledger._journal.relative(big): (20, hashlib.sha256(b"more than four bytes").hexdigest())}
    later = ledger.transact(lambda snap: user_change("c@example.com")).commit.id
    {"missing": big.unlink, "emptied": lambda: big.write_bytes(b""), "altered": lambda: big.write_bytes(b"MORE than four bytes")}[harm]()
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
    ledger._journal.path.write_bytes(journal._HEADER.pack(journal._MAGIC, len(payload), hashlib.sha256(payload).digest()[:16]) + payload)
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
    for i in range(12):
        ledger.transact(lambda snap, i=i: user_change(f"u{i}@example.com"))
        assert ledger._journal.size() <= 6000 + 4000  # retired and started afresh as it fills
    deadline = time.monotonic() + 10  # the background checkpoint syncs the retired one, then drops it
    while ledger._journal.retired.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ledger._journal.retired.exists()
    tip = ledger.head()
    assert Ledger.open(ledger.path).head() == tip
    assert ledger._journal.size() == 0  # opening checkpoints too


def test_trees_are_encoded_in_gits_own_order(tmp_path):
    """Edited entry by entry, a tree encodes exactly as libgit2 builds it (a directory sorts as if
    its name ended with '/')."""
    from registry.ledger.trees import BLOB_MODE, TREE_MODE, Tree

    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    blob, subtree = repo.create_blob(b"x"), repo.TreeBuilder().write()
    names = [(b"a", TREE_MODE), (b"a.b", BLOB_MODE), (b"a-b", TREE_MODE), (b"a0", BLOB_MODE), (b"ab", TREE_MODE), (b"A", BLOB_MODE)]
    tree, builder = Tree(), repo.TreeBuilder()
    for name, mode in names:
        oid = subtree if mode == TREE_MODE else blob
        tree.set(name, mode, oid.raw)
        builder.insert(name.decode(), oid, pygit2.enums.FileMode.TREE if mode == TREE_MODE else pygit2.enums.FileMode.BLOB)
    expected = repo[builder.write()].read_raw()
    assert tree.encode() == expected and Tree.parse(expected).encode() == expected
    tree.remove(b"a0")
    tree.set(b"a.b", TREE_MODE, subtree.raw)  # a file becoming a directory moves
    builder.remove("a0")
    builder.insert("a.b", subtree, pygit2.enums.FileMode.TREE)
    assert tree.encode() == repo[builder.write()].read_raw()


# --- folding packs: git's geometric rule, without git's walk over the whole ledger ---------------


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
    fsck = subprocess.run(["git", "-C", str(ledger.path), "fsck", "--strict", "--no-dangling"], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
