

from registry import layout
from registry.ledger import REF
from tests.support.ledger import user_change


def test_stale_ref_lock_from_a_killed_writer_is_recovered(ledger):
    (ledger.path / f"{REF}.lock").write_text("left by a process that died mid-update\n")
    ledger.transact(lambda snap: user_change("d@example.com"))
    assert not (ledger.path / f"{REF}.lock").exists()
    assert ledger.snapshot().exists(layout.user("d@example.com"))
