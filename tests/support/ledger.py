"""A ledger change to write in tests (creating a user), its provenance, and git run on a ledger."""

import subprocess
from datetime import UTC, datetime

from registry import layout
from registry.ledger import Change
from registry.model import Provenance, User

P = Provenance(at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), by="dev@example.com", channel="cli")


def user_change(email: str, name: str = "") -> Change:
    record = User(email=email, name=name or email, created=P)
    return Change(summary=f"create user {email}", author=("Dev", "dev@example.com"), time=P.at,
                  writes={layout.user(email): record},
                  trailers=(("Actor", P.by), ("Channel", P.channel), ("User", email)))


def git(ledger, *args):
    return subprocess.run(["git", "-C", str(ledger.path), *args], capture_output=True, text=True, check=True).stdout
