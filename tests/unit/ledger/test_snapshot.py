

from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import layout
from registry.datadir import first_commit
from registry.ledger import Change, Ledger, codec, guard
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


# Records under a directory, as a walk reads them (by the ids their trees give) and as one lookup
# each reads them (from the top, by path): the same, whatever the tree holds. Names: nested
# directories, records that decode, records that don't, files that aren't records, and a name
# libgit2 can't parse in its tree (read by hand, entry by entry).
_SEGMENT = st.sampled_from(["a", "b", "c", "d1", "é", "x.json", "y.txt", "z" * 100_000])
_CONTENT = st.sampled_from(["user", "broken", "other"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(st.lists(_SEGMENT, min_size=1, max_size=4).map(lambda parts: "/".join(parts)),
                             _CONTENT, min_size=1, max_size=12),
       suffix=st.sampled_from([".json", ".txt"]))
def test_a_walk_reads_each_record_as_a_lookup_by_its_path_does(tmp_path_factory, files, suffix):
    ledger = Ledger.create(tmp_path_factory.mktemp("l") / "ledger.git", first_commit(),
                           committer=("registry", "registry@test"))
    writes: dict[str, bytes] = {}
    for n, (path, content) in enumerate(files.items()):
        if any(f.startswith(path + "/") or path.startswith(f + "/") for f in writes):
            continue  # (a name is a file or a directory, not both)
        body = {"user": codec.encode(User(email=f"u{n}@example.com", name="U", created=P)),
                "broken": b'{"email": 42', "other": b"not json"}[content]
        writes[f"walk/{path}{suffix}"] = body
    change = Change(summary="records", author=("Dev", "dev@example.com"), time=P.at, writes=writes)
    with patch.object(guard, "check", lambda change: None):  # (an older release's names, unguarded)
        ledger.transact(lambda snap: change)
    snap = ledger.snapshot()
    for top in ["walk", *{p.rsplit("/", 1)[0] for p in writes}]:
        one_by_one = [snap.get(p, User) for p in snap.files(top) if p.endswith(".json")]
        assert list(snap.records(top, User)) == [r for r in one_by_one if r is not None]
        assert list(snap.scanning().records(top, User)) == [r for r in one_by_one if r is not None]
