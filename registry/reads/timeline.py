"""The ledger through time: how many commits lead to one, which commit an `@<commit>` or
`@<ISO-8601 time>` names, and which commit deleted a file since.

Only commits on main count: an object the repository happens to hold (a compare-and-swap that
lost, a rewrite's leftovers) is no state the registry was ever in. Answers are cached per tip of
main, so a point-in-time index costs one resolution per ref while the tip holds.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime

import pygit2

from .. import layout
from ..cache import Cache
from ..datadir import Registry
from ..errors import NotFound
from ..history import first_parents
from ..ledger import Snapshot
from ..model import DeletedFiles

_HEX = re.compile(r"[0-9a-f]{7,40}")
_resolved = Cache("timeline-refs", "(tip of main, @<commit> or @<time>) to the commit it names")
_counts = Cache("commit-counts", "commits of main to how many commits lead to them")


def commit_count(reg: Registry, head: str) -> int:
    """Commits on main up to ``head``, the root included: the history index's position of it, or
    of its nearest indexed (or counted) ancestor plus the steps to it. The walk goes over what the
    index hasn't caught up to yet, once per head (a head is made by a writer, never by a reader)."""
    hit = _counts.get(head)
    if hit is not None:
        return hit
    steps = 0
    for commit in first_parents(reg.ledger.repo(), head):
        known = _counts.get(str(commit.id)) or reg.history.position(str(commit.id))
        if known is not None:
            return _counts.put(head, known + steps, sys.getsizeof(known + steps))
        steps += 1
    return _counts.put(head, steps, sys.getsizeof(steps))


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (a date alone is its midnight; no zone is UTC), or None if ``text`` is none."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def resolve(reg: Registry, ref: str, head: str) -> str:
    """The commit on main (as of ``head``) that ``ref`` names: a commit id (7 to 40 hex digits) or
    an ISO 8601 time (the last commit made at or before it). From the history index, in O(log n)
    lookups, and a walk of at most history.TAIL commits it hasn't caught up to: a stranger choosing
    refs never makes the server walk the ledger. Blocking: call it from a worker thread."""
    hit = _resolved.get((head, ref))
    if hit is not None:
        return hit
    when = None if _HEX.fullmatch(ref) else parse_time(ref)
    if when is None and not _HEX.fullmatch(ref):
        raise NotFound(f"@{ref} names no point in the ledger's history: use a commit id (7 to 40 hex digits) or an "
                       "ISO 8601 time, e.g. @2026-01-31T12:00:00Z.")
    base = reg.history.base(head)
    if base is None:
        raise _catching_up(ref)
    if when is not None:
        found = _at_time(reg, base, when, ref)
        if found is None:
            raise NotFound(f"The ledger has no commit at or before {when.isoformat()}: it begins later.")
    else:
        at, tail = base
        named = [str(c.id) for c in tail if str(c.id).startswith(ref)]
        named += [c for c in reg.history.completions(ref)
                  if (position := reg.history.position(c)) is not None and position <= at]  # (not newer than head)
        if len(named) != 1:
            raise NotFound(f"No commit of the ledger's main branch is named {ref!r} (or more than one is: give more "
                           "digits).")
        found = named[0]
    _resolved.put((head, found), found, sys.getsizeof(found))  # (a Reader made from the answer asks again, by its id)
    return _resolved.put((head, ref), found, sys.getsizeof(found))


def _catching_up(ref: str) -> NotFound:
    return NotFound(f"@{ref} can't be looked up yet: the registry's history index is catching up with the ledger. "
                    "Try again in a minute.")


def _at_time(reg: Registry, base: tuple[int, list[pygit2.Commit]], when: datetime, ref: str) -> str | None:
    """The last commit at or before ``when`` by committer time, which never goes back along main
    (see ledger/writing.py; author times may): the tail's newest first, then a binary search over
    the index's positions, each probe one commit read."""
    limit, (at, tail) = when.timestamp(), base
    for commit in tail:
        if commit.committer.time <= limit:
            return str(commit.id)
    repo = reg.ledger.repo()

    def ids(position: int) -> str:
        found = reg.history.commit_at(position)
        if found is None:  # (every position up to the base's is indexed, unless the index is being rebuilt)
            raise _catching_up(ref)
        return found

    def made(position: int) -> int:
        return repo[ids(position)].peel(pygit2.Commit).committer.time

    if at == 0 or made(1) > limit:
        return None
    low, high = 1, at  # made(low) <= limit; the answer is in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if made(middle) <= limit:
            low = middle
        else:
            high = middle - 1
    return ids(low)


def deleted_by(reg: Registry, now: Snapshot, ws: str, name: str, since: str, filename: str, sha256: str) -> str | None:
    """The commit after ``since`` (a commit that had ``filename`` with these bytes) that deleted
    it, if the current state says it was deleted; None if it wasn't (then its bytes are simply
    missing). One lookup in the history index's deletions."""
    spent = now.get(layout.deleted_files(ws, name), DeletedFiles)
    if spent is None or filename not in spent.files:
        return None
    after = reg.history.position(since)
    found = reg.history.deleted(ws, name, sha256, after) if after is not None else None
    return found or ""  # (the history index is catching up: the deletion is certain, its commit not known yet)
