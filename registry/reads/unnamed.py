"""Other repositories' slugs in the audit trail, as one caller may know them.

A commit the caller may see (a package's, of a repository they read; a repository's own, where they
administer it) can name another repository: a grant of read to its pipelines names it in its subject
and its `Pipelines-Of` trailer, and the granting repository's record lists it (`pipeline_readers`)
in that commit's diff and in every later one; a rename rewrites other repositories' grants in its
own commit. A repository the caller can't read is as missing, so to them it is named by its UUID
(`{...}`), as the listings name it (`members.seen_readers`), and a record of it is left out of a
diff. The workspace's admins (and the operator) see every slug.

Only what names a repository by construction is rewritten (the trailers a verb writes a slug in,
the records' slug fields), never free text such as a package's metadata: rewriting a word a caller
wrote would tell them it is a hidden repository's slug.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from .. import layout
from ..audit import T
from ..identity import Principal
from ..ledger import Commit, Snapshot
from ..model import ALL_PIPELINES, Repository, RetiredRepository
from ..permissions import role_on_workspace
from ..visibility import can_read

SLUG_TRAILERS = (T.REPOSITORY, T.RENAMED_FROM, T.PIPELINES_OF)  # (trailers whose value is a repository's slug)
SLUG_FIELDS = ("pipeline_readers", "renamed_to", "repository")  # (record fields that hold slugs)
DELETED = "(a deleted repository)"  # a slug that names no repository, nor a retired one (an older ledger's)


class Unnamed:
    """A workspace's repository slugs as one caller may know them, asked slug by slug (a few lookups
    each, once per slug)."""

    def __init__(self, now: Snapshot, who: Principal, ws: str) -> None:
        self.now, self.who, self.ws = now, who, ws
        self.everything = role_on_workspace(now, who, ws) == "admin"
        self._named: dict[str, str] = {}

    def name(self, slug: str) -> str:
        """``slug`` as the caller may know it: itself, where they read the repository (or the one it
        was renamed to); otherwise that repository's UUID. `*` (every pipeline) stays."""
        if self.everything or slug == ALL_PIPELINES:
            return slug
        if slug not in self._named:
            self._named[slug] = self._look_up(slug)
        return self._named[slug]

    def _look_up(self, slug: str) -> str:
        current = self.now.get(layout.repository(self.ws, slug), Repository)
        if current is not None:
            return slug if can_read(self.now, self.who, self.ws, slug) else current.uuid
        retired, seen = self.now.get(layout.retired_repository(self.ws, slug), RetiredRepository), {slug}
        if retired is None:
            return DELETED
        now = retired.renamed_to
        while now is not None and now not in seen:  # (renames followed: a→b, b→c is c)
            seen.add(now)
            if self.now.exists(layout.repository(self.ws, now)):
                return slug if can_read(self.now, self.who, self.ws, now) else retired.uuid
            later = self.now.get(layout.retired_repository(self.ws, now), RetiredRepository)
            now = later.renamed_to if later else None
        return retired.uuid  # (deleted since: read by no one)

    def hidden(self, slug: str) -> bool:
        return self.name(slug) != slug

    def commit(self, commit: Commit) -> Commit:
        """The commit with each slug of a repository the caller can't read, in its slug trailers and
        where its subject names them, replaced by that repository's UUID."""
        if self.everything:
            return commit
        swapped = {v: self.name(v) for k, v in commit.trailers if k in SLUG_TRAILERS and self.hidden(v)}
        if not swapped:
            return commit
        summary = commit.summary
        for slug, shown in swapped.items():
            said = re.compile(rf"(?<![\w.-])(?:{re.escape(self.ws)}/)?{re.escape(slug)}(?![\w-]|\.\w)")
            summary = said.sub(f"{self.ws}/{shown}".replace("\\", "\\\\"), summary)
        trailers = tuple((k, swapped.get(v, v) if k in SLUG_TRAILERS else v) for k, v in commit.trailers)
        return replace(commit, summary=summary, trailers=trailers)

    def hides(self, path: str, *contents: bytes | None) -> bool:
        """Whether a changed record is of a repository the caller can't read (its record, its retired
        slug's, a package of it): left out of the commit's diff."""
        for place in (layout.repository(self.ws, "\0"), layout.retired_repository(self.ws, "\0")):
            head, _, tail = place.partition("\0")
            if path.startswith(head) and path.endswith(tail) and self.hidden(path[len(head):len(path) - len(tail)]):
                return True
        return any(isinstance(doc := _json(c), dict) and isinstance(doc.get("repository"), str)
                   and self.hidden(doc["repository"]) for c in contents)

    def record(self, data: bytes | None) -> bytes | None:
        """A record's bytes with the slugs of repositories the caller can't read replaced by their
        UUIDs (as they were, if it names none)."""
        doc = None if self.everything else _json(data)
        if not isinstance(doc, dict):
            return data
        changed = False
        for key in SLUG_FIELDS:
            value = doc.get(key)
            if isinstance(value, str) and self.hidden(value):
                doc[key], changed = self.name(value), True
            elif isinstance(value, list) and any(isinstance(v, str) and self.hidden(v) for v in value):
                doc[key], changed = [self.name(v) if isinstance(v, str) else v for v in value], True
        if not changed:
            return data
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _json(data: bytes | None) -> object:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None
