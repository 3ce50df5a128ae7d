

from registry import layout
from registry.ledger import Ledger
from registry.model import User
from tests.support.ledger import user_change


def test_snapshot_is_reused_until_another_writer_moves_the_branch(ledger, tmp_path):
    first = ledger.snapshot()
    assert ledger.snapshot() is first
    other = Ledger.open(ledger.path)  # as another process would: its own objects, same files
    other.transact(lambda snap: user_change("b@example.com"))
    fresh = ledger.snapshot()
    assert fresh is not first and fresh.get(layout.user("b@example.com"), User).email == "b@example.com"
