

from registry import layout
from registry.ledger import Ledger, codec
from registry.model import User
from tests.support.ledger import user_change


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
