"""The fixture of the ledger package's tests: an empty ledger in a temporary directory."""


import pytest

from registry.datadir import first_commit
from registry.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    return Ledger.create(tmp_path / "ledger.git", first_commit(), committer=("registry", "registry@test"))
