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
from pygit2.enums import SortMode

from . import layout
from .audit import Action, T, action
from .cache import Cache
from .errors import NotFound
from .model import DeletedFiles
from .operations import Registry

_HEX = re.compile(r"[0-9a-f]{7,40}")
_resolved = Cache("timeline-refs", "(tip of main, @<commit> or @<time>) to the commit it names")
_counts = Cache("commit-counts", "commits of main to how many commits lead to them")


def commit_count(reg: Registry, head: str) -> int:
    """Commits on main up to ``head``, the root included: the history index's position of it, or
    of its nearest indexed ancestor plus the steps to it (the index may be catching up)."""
    hit = _counts.get(head)
    if hit is not None:
        return hit
    repo, steps = reg.ledger.repo(), 0
    for commit in repo.walk(head, SortMode.TOPOLOGICAL):
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
    an ISO 8601 time (the last commit made at or before it)."""
    hit = _resolved.get((head, ref))
    if hit is not None:
        return hit
    repo = reg.ledger.repo()
    when = None if _HEX.fullmatch(ref) else parse_time(ref)
    if when is not None:
        found = _at_time(repo, head, when)
        if found is None:
            raise NotFound(f"The ledger has no commit at or before {when.isoformat()}: it begins later.")
    elif _HEX.fullmatch(ref):
        try:
            found = str(repo.revparse_single(ref).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            found = None
        if found is None or not (found == head or repo.descendant_of(head, found)):
            raise NotFound(f"No commit of the ledger's main branch is named {ref!r} (or more than one is: give more "
                           "digits).")
    else:
        raise NotFound(f"@{ref} names no point in the ledger's history: use a commit id (7 to 40 hex digits) or an "
                       "ISO 8601 time, e.g. @2026-01-31T12:00:00Z.")
    return _resolved.put((head, ref), found, sys.getsizeof(found))


def _at_time(repo: pygit2.Repository, head: str, when: datetime) -> str | None:
    limit = when.timestamp()
    for commit in repo.walk(head, SortMode.TOPOLOGICAL):  # (committer times never go back: see writing.py)
        if commit.committer.time <= limit:
            return str(commit.id)
    return None


def deleted_by(reg: Registry, now, ws: str, name: str, version: str, filename: str, sha256: str) -> str | None:
    """The commit that deleted ``filename`` (with these bytes), if the current state says it was
    deleted; None if it wasn't (then its bytes are simply missing)."""
    spent = now.get(layout.deleted_files(ws, name), DeletedFiles)
    if spent is None or filename not in spent.files:
        return None
    for commit in reg.history.package(ws, name, version, limit=10_000):
        if action(commit) in (Action.DELETE_VERSION, Action.DELETE_PACKAGE) and sha256 in commit.trailers_named(T.SHA256):
            return commit.id
    return ""  # (the history index is catching up: the deletion is certain, its commit not known yet)
