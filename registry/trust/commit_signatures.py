"""Checking the ledger's commit signatures, commit by commit, against the keys the ledger itself
named: used by `registry verify` on the data directory and by `registry witness` on its copy.

A commit must be signed by the commit key current in its parent's signing-keys record (see
keys.py); the commit that introduces the record (the first one, or the adoption on an older
ledger) by the key it introduces. Commits before any record existed (an older release's) can't be
signed after the fact: they are counted, not flagged. Once a record has existed, every commit
must be signed, and by the right key: a rewrite signed with another key fails here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygit2
from pygit2.enums import SortMode

from . import sshsig
from .keys import current, keys_in


@dataclass
class Checked:
    signed: int = 0
    before_signing: int = 0  # commits older than the first signing-keys record
    problem: str | None = None  # the first unsigned or badly signed commit, in words
    commit: str | None = None  # ... and its id

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_commit(repo: pygit2.Repository, commit: pygit2.Commit, required: bool) -> tuple[str | None, bool]:
    """(what is wrong with this commit's signature or None, whether signing has begun by it)."""
    if len(commit.parents) > 1:
        return "is a merge: the ledger's history is a single line", True
    parent = commit.parents[0] if commit.parents else None
    record = keys_in(repo, parent.tree) if parent is not None else None
    if record is None:
        if required:
            return "has no signing-keys record in its parent: the record was removed", True
        record = keys_in(repo, commit.tree)
        if record is None:
            return None, False
    signature, payload = signed_parts(repo, commit.id)
    if signature is None:
        return "is not signed", True
    try:
        key = sshsig.verify(signature, payload)
    except sshsig.BadSignature as exc:
        return f"is badly signed: {exc}", True
    want = current(record, "commit")
    if sshsig.public_line(key) != want.public_key:
        return (f"is signed by {sshsig.fingerprint(key)}, not by the ledger's commit key of the time "
                f"({want.fingerprint})"), True
    return None, True


def signed_parts(repo: pygit2.Repository, commit_id: pygit2.Oid) -> tuple[str | None, bytes]:
    """(the armoured signature or None, the content it signs) of a commit, from its raw object: the
    commit without its `gpgsig` header. (libgit2's own extraction, `Commit.gpg_signature`, scans the
    object as a C string: one served by our in-memory object backends has no NUL after it, so what
    it returns may run on into whatever memory follows, and a good signature reads as bad.)"""
    raw = repo.odb.read(commit_id)[1]
    head, sep, body = raw.partition(b"\n\n")
    kept, signature, in_signature = [], [], False
    for line in head.split(b"\n"):
        if line.startswith(b"gpgsig "):
            in_signature = True
            signature.append(line[len(b"gpgsig "):])
        elif in_signature and line.startswith(b" "):  # (a header's continuation lines)
            signature.append(line[1:])
        else:
            in_signature = False
            kept.append(line)
    armoured = b"\n".join(signature).decode("ascii", "replace") + "\n" if signature else None
    return armoured, b"\n".join(kept) + sep + body


def check_history(repo: pygit2.Repository, head: str, since: str | None = None) -> Checked:
    """Every commit reachable from ``head`` (after ``since``, whose signing was checked before),
    oldest first, up to the first problem."""
    walker = repo.walk(head, SortMode.TOPOLOGICAL | SortMode.REVERSE)
    required = False
    if since is not None:
        walker.hide(since)
        required = keys_in(repo, repo[since].peel(pygit2.Commit).tree) is not None
    out = Checked()
    for commit in walker:
        problem, required = check_commit(repo, commit, required)
        if problem:
            out.problem, out.commit = f"commit {commit.id} {problem}", str(commit.id)
            return out
        if required:
            out.signed += 1
        else:
            out.before_signing += 1
    return out
