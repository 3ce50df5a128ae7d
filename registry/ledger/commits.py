"""What goes into a commit (`Change`) and what comes out of one (`Commit`), in git's own terms:
paths and bytes, an author, a message with trailers. What the trailers mean is the registry's
business (registry/audit.py), not the ledger's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import pygit2

from ..fsync import Needed


@dataclass(frozen=True)
class Change:
    """One state change: becomes exactly one commit.

    ``writes`` maps ledger paths to a record (written canonically), raw bytes, or ``None`` (delete).
    ``result`` is what `transact` hands back to its caller beside the commit.
    """

    summary: str
    author: tuple[str, str]  # (name, email)
    time: datetime
    writes: Mapping[str, msgspec.Struct | bytes | None]
    trailers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    needs: tuple[Needed, ...] = ()  # files outside the ledger the commit depends on (blobs): durable first
    result: Any = None
    committed: datetime | None = None  # the committer time, when it must be exactly this (a key rotation)

    def message(self) -> str:
        """The commit message: the summary, the body, then the trailers, each on one line."""
        lines = [_one_line(self.summary), ""]
        if self.body:
            lines += [self.body.rstrip(), ""]
        lines += [f"{k}: {_one_line(v)}" for k, v in self.trailers]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NoChange:
    """What a transaction's build returns when there is nothing to write, with its answer."""

    result: Any = None


@dataclass(frozen=True)
class Committed:
    """What `transact` returns: the new commit (None when nothing changed) and the build's result."""

    commit: Commit | None
    result: Any = None
    parent: str | None = None  # the commit it was made on


class Signer(Protocol):
    """Signs a commit's content (git's text of it, without the signature): the armoured signature
    to put in its `gpgsig` header, or None to leave it unsigned."""

    def __call__(self, repo: pygit2.Repository, parent: pygit2.Commit | None, tree: pygit2.Oid,
                 content: bytes) -> str | None: ...


def with_signature(content: bytes, armoured: str) -> bytes:
    """The commit with its `gpgsig` header, byte for byte as git writes it (after the committer
    line; continuation lines start with a space): removing the header gives back ``content``."""
    head, _, body = content.partition(b"\n\n")  # (git always writes a message, so the blank line)
    header = b"gpgsig " + armoured.rstrip("\n").encode().replace(b"\n", b"\n ")
    return head + b"\n" + header + b"\n\n" + body


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


@dataclass(frozen=True)
class Commit:
    """A ledger commit as an auditor sees it."""

    id: str
    time: datetime
    author_name: str
    author_email: str
    summary: str
    trailers: tuple[tuple[str, str], ...] = field(default=())

    def trailer(self, key: str) -> str | None:
        """The value of the first trailer named ``key``, or None."""
        return next((v for k, v in self.trailers if k == key), None)

    def trailers_named(self, key: str) -> list[str]:
        """The values of every trailer named ``key``, in order."""
        return [v for k, v in self.trailers if k == key]

    @classmethod
    def of(cls, commit: pygit2.Commit) -> Commit:
        """What ``commit`` says: its id, author, author time (UTC), summary and trailers."""
        return cls(
            id=str(commit.id),
            time=datetime.fromtimestamp(commit.author.time, UTC),
            author_name=commit.author.name,
            author_email=commit.author.email,
            summary=commit.message.split("\n", 1)[0],
            trailers=tuple(parse_trailers(commit.message)),
        )


def commit_at(repo: pygit2.Repository, commit_id: str | pygit2.Oid) -> pygit2.Commit:
    """The commit ``commit_id`` names; KeyError if there is none, ValueError if it names another object."""
    found = repo[commit_id]
    if not isinstance(found, pygit2.Commit):
        raise ValueError(f"{commit_id} is not a commit")
    return found


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The trailer block: the last paragraph, if every line in it is `Key: value`."""
    paragraphs = message.strip().split("\n\n")
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or not key.replace("-", "").isalnum():
            return []
        out.append((key, value))
    return out
