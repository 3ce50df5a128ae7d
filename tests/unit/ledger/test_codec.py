import json

from registry import layout
from tests.support.ledger import user_change


def test_records_are_canonical_json(ledger):
    ledger.transact(lambda snap: user_change("a@example.com", "Ann"))
    data = ledger.snapshot().raw(layout.user("a@example.com"))
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed) and data.endswith(b"}\n") and b'\n  "email"' in data
    # equal content gives the equal git object
    assert ledger.repo().create_blob(data) == ledger.snapshot().tree[layout.user("a@example.com")].id
