"""A read replica (`registry serve --follow PRIMARY_URL`): a registry that serves every read from its
own copy of the primary's ledger and sends every write to the primary.

follow.py   the copy: git fetch over the primary's smart HTTP, each fetch checked as a witness checks
            it (witness.py), woken by the primary's long-polled checkpoint; its status for /_/health
blobs.py    files the replica lacks (no shared bucket), fetched from the primary
fill.py     every file the ledger references, fetched in the background by a durable cursor
primary.py  talking to the primary in bounded time, and its errors in words
start.py    what `registry serve --follow` does before serving: the token, the first fetch
run.py      what its workers do while serving: index what was fetched; the leader follows and fills

The web's side of a replica is in web/ (it is served as the rest is): forward.py sends the writes to
the primary and waits for their commit; replication.py is what a primary serves its replicas.
"""

from .follow import Follower, Stopped

__all__ = ["Follower", "Stopped"]
