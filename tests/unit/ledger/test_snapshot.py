

from unittest.mock import patch

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygit2.enums import ObjectType

from registry import layout
from registry.datadir import first_commit
from registry.ledger import Change, Ledger, Snapshot, codec, guard, trees
from registry.model import User
from tests.support.ledger import P, user_change


def test_snapshot_is_reused_until_another_writer_moves_the_branch(ledger, tmp_path):
    first = ledger.snapshot()
    assert ledger.snapshot() is first
    other = Ledger.open(ledger.path)  # as another process would: its own objects, same files
    other.transact(lambda snap: user_change("b@example.com"))
    fresh = ledger.snapshot()
    assert fresh is not first and fresh.get(layout.user("b@example.com"), User).email == "b@example.com"


def test_a_scanning_snapshot_reads_as_its_snapshot_and_keeps_nothing_it_decodes(ledger):
    emails = [f"u{n}@example.com" for n in range(5)]
    for email in emails:
        ledger.transact(lambda snap, email=email: user_change(email))
    codec._records.clear()
    snap = ledger.snapshot()
    kept = snap.get(layout.user(emails[0]), User)  # (read by a request: kept)
    assert len(codec._records) == 1
    scan = snap.scanning()
    assert scan.commit_id == snap.commit_id
    read = [scan.get(layout.user(email), User) for email in emails]
    walked = list(scan.records("users", User))
    assert [u.email for u in read] == emails and sorted(u.email for u in walked) == emails
    assert read[0] is kept  # (what the cache held is used)...
    assert len(codec._records) == 1  # ...and nothing the scan decoded was added
    assert list(snap.records("users", User)) == walked  # (the snapshot itself still keeps them)
    assert len(codec._records) == 5


# Records under a directory, as a walk reads them (by the ids their trees give): exactly those
# written there that decode, whatever the tree holds. Names: nested directories, records that
# decode, records that don't, files that aren't records, and a name libgit2 can't parse in its tree
# (that tree is read by hand, entry by entry, and the name itself left out, with what is under it).
HUGE = "z" * 100_000
_SEGMENT = st.sampled_from(["a", "b", "c", "d1", "é", "x.json", "y.txt", HUGE])
_CONTENT = st.sampled_from(["user", "broken", "other"])


def _user(n: int) -> bytes:
    return codec.encode(User(email=f"u{n}@example.com", name="U", created=P))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(st.lists(_SEGMENT, min_size=1, max_size=4).map(lambda parts: "/".join(parts)),
                             _CONTENT, min_size=1, max_size=12),
       suffix=st.sampled_from([".json", ".txt"]))
def test_a_walk_reads_exactly_the_records_written_under_a_directory(tmp_path_factory, files, suffix):
    ledger = Ledger.create(tmp_path_factory.mktemp("l") / "ledger.git", first_commit(),
                           committer=("registry", "registry@test"))
    writes: dict[str, bytes] = {}
    for n, (path, content) in enumerate(files.items()):
        if any(f.startswith(f"walk/{path}/") or f"walk/{path}{suffix}".startswith(f[:-len(suffix)] + "/")
               for f in writes):
            continue  # (a name is a file or a directory, not both)
        writes[f"walk/{path}{suffix}"] = {"user": _user(n), "broken": b'{"email": 42', "other": b"not json"}[content]
    users = {body for body in writes.values() if body.startswith(b"{\n")}  # (what decodes as a User)
    change = Change(summary="records", author=("Dev", "dev@example.com"), time=P.at, writes=writes)
    with patch.object(guard, "check", lambda change: None):  # (an older release's names, unguarded)
        ledger.transact(lambda snap: change)
    snap = ledger.snapshot()
    for top in ["walk", *{p.rsplit("/", 1)[0] for p in writes}]:
        if HUGE in top.split("/"):
            continue
        expected = sorted(codec.decode(body, User).email for path, body in writes.items()
                          if path.startswith(top + "/") and path.endswith(".json") and body in users
                          and not any(part.startswith(HUGE) for part in path.split("/")))
        assert sorted(u.email for u in snap.records(top, User)) == expected
        assert sorted(u.email for u in snap.scanning().records(top, User)) == expected
        # (and each is what a lookup by its path reads)
        assert sorted(u.email for p in snap.files(top) if p.endswith(".json") and (u := snap.get(p, User))) == expected


def _raw_tree(repo, entries: dict[bytes, tuple[bytes, pygit2.Oid]]) -> pygit2.Oid:
    tree = trees.Tree()
    for name, (mode, oid) in entries.items():
        tree.set(name, mode, oid.raw)
    return repo.odb.write(ObjectType.TREE, tree.encode())


@pytest.mark.parametrize("parseable", [True, False], ids=["read by libgit2", "read by hand"])
def test_a_walk_reads_what_a_lookup_reads_in_a_tree_no_writer_of_ours_makes(ledger, parseable):
    """A gitlink (a submodule's commit: never read as a record) and a name that isn't UTF-8 (read
    where libgit2 reads the tree, left out where it is read by hand), beside a record: a walk reads
    what lookups by path read, in a tree libgit2 reads and in one it can't."""
    repo = ledger.repo()
    good, stray = (repo.create_blob(_user(n)) for n in (1, 2))
    entries = {b"good.json": (trees.BLOB_MODE, good), b"\xff.json": (trees.BLOB_MODE, stray),
               b"sub.json": (trees.GITLINK_MODE, stray)}
    if not parseable:
        entries[HUGE.encode()] = (trees.BLOB_MODE, stray)
    top = _raw_tree(repo, {b"walk": (trees.TREE_MODE, _raw_tree(repo, entries))})
    commit = repo.create_commit(None, pygit2.Signature("t", "t@t"), pygit2.Signature("t", "t@t"), "raw", top, [])
    snap = Snapshot(repo, repo[commit])
    expected = ["u1@example.com", "u2@example.com"] if parseable else ["u1@example.com"]
    assert [u.email for u in snap.records("walk", User)] == expected
    assert [u.email for p in snap.files("walk") if (u := snap.get(p, User))] == expected
