"""History: the commits that touched a package, a workspace's (or a repository's) audit trail as
one caller may see it, and one commit's changed records. All of it from the history index
(history.py), as it stands: a read never catches it up (whoever commits and the background do)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pygit2

from .. import layout, visibility
from ..audit import Action, T, action
from ..errors import Invalid, NotFound
from ..history import Filed
from ..ledger import Commit, trees
from ..model import Version
from ..operations import version_key

_HEX = re.compile(r"[0-9a-f]{7,40}")
CATCHING_UP = " (the registry's history index is catching up: if the commit is new, try again in a minute)"


@dataclass(frozen=True)
class RecordChange:
    path: str
    old: bytes | None  # None: the commit added it
    new: bytes | None  # None: the commit removed it


@dataclass(frozen=True)
class CommitRead:
    filed: Filed
    parent: str | None
    records: list[RecordChange]


class Trail:
    """The Reader's history and audit trail (a mixin: ``self`` is the Reader)."""

    def history(self, ws: str, name: str, version: str | None = None, *, limit: int = 100,
                before: int | None = None) -> list[Commit]:
        """The commits that touched a readable package (or one of its versions), newest first. A
        deleted version's history still answers, while its package exists."""
        read = self.package(ws, name)
        label = version
        if version is not None:
            record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
            label = record.version if record else version
        commits = self.reg.history.package(ws, read.package.name, label, limit=limit, before=before)
        if version is not None and not commits and label == version and record is None:
            raise NotFound(f"Package {read.package.name!r} has no version {version!r}, and never had.")
        return commits

    def version_label(self, ws: str, name: str, version: str) -> str:
        """How a version is spelt in the records (and the history): as published, if it still is."""
        record = self.snapshot.get(layout.version(ws, name, version_key(version)), Version)
        return record.version if record else version

    def created_by(self, ws: str, name: str) -> str | None:
        """The commit that created the package (its latest creation, if it was deleted and made again)."""
        commits = self.reg.history.package(ws, name, limit=1_000_000)
        return next((c.id for c in commits if action(c) is Action.CREATE_PACKAGE), None)

    def serial(self) -> int:
        return self.reg.history.serial()

    def trail(self, ws: str, repository: str | None = None, *, limit: int = 50, offset: int = 0) -> list[Filed]:
        """A workspace's (or one repository's) commits that the caller may see, newest first."""
        self.workspace(ws)
        if repository is not None:
            self.repository(ws, repository)
        audience = visibility.trail_audience(self.now, self.who, ws)
        readable = None if audience.everything else set(audience.readable)
        return self.reg.history.trail(ws, repository=repository, readable=readable, administered=set(audience.administered),
                                      limit=limit, offset=offset)

    def trail_catching_up(self) -> bool:
        """Whether the audit trail lacks the newest commits yet (a page may say so)."""
        return self.reg.history.trail_behind()

    def commit_changes(self, ws: str, commit_id: str) -> CommitRead:
        """A commit of the workspace and the records it changed, if the caller may see what it concerns."""
        self.workspace(ws)
        given = commit_id.strip().lower()
        if not _HEX.fullmatch(given):
            raise Invalid(f"{commit_id!r} is no commit id: give 7 to 40 hex digits, as `git log` or `registry log` "
                          "print them.")
        found = self.reg.history.completions(given)
        if len(found) > 1:  # (commit ids are no secret: what a prefix may not say is whose they are)
            raise Invalid(f"More than one commit starts with {given}: give more of its digits.")
        filed = self.reg.history.filed(found[0]) if found else None
        if filed is None or filed.workspace != ws or not visibility.trail_audience(self.now, self.who, ws).sees(filed):
            behind = CATCHING_UP if self.trail_catching_up() else ""  # (whatever the reason: hidden reads as missing)
            raise self.hidden(ws, f"Workspace {ws} has no commit {commit_id!r}{behind}.")
        repo = self.reg.ledger.repo()
        current = repo[filed.commit.id]
        parent = current.parents[0] if current.parents else None
        records = []
        try:
            for patch in (parent.tree.diff_to_tree(current.tree) if parent else current.tree.diff_to_tree(swap=True)):
                old, new = patch.delta.old_file.path, patch.delta.new_file.path
                records.append(RecordChange(new or old, _blob(repo, parent.tree, old) if parent else None,
                                            _blob(repo, current.tree, new)))
        except pygit2.GitError:  # a tree libgit2 can't parse (an older release's; `registry repair` removes it)
            records = [RecordChange(path, _raw(repo, old), _raw(repo, new)) for path, old, new in
                       trees.changes(repo, parent.tree_id if parent else None, current.tree_id)]
        return CommitRead(filed, str(parent.id) if parent else None, records)

    def log(self, ws: str | None = None, package: str | None = None, *, limit: int = 100) -> list[Commit]:
        """The audit trail as the operator reads it (deleted packages included): the commits that
        touched a package, from the history index, or the newest commits of a workspace or of the
        whole ledger, from git (``limit`` 0: all)."""
        if self.who.kind != "operator":
            raise NotFound("The audit log is the operator's.")
        if ws is not None:
            self.workspace(ws)
        if package:
            name = visibility.project_name(package)
            found = self.reg.history.package(ws, name, limit=limit or 1_000_000_000)
            if not found:
                raise NotFound(f"Package {name!r} does not exist in workspace {ws}, and never did.")
            return found
        found = []
        for commit in self.reg.ledger.walk():
            if ws is None or commit.trailer(T.WORKSPACE) == ws:
                found.append(commit)
                if limit and len(found) >= limit:
                    break
        return found


def _blob(repo, tree, path: str) -> bytes | None:
    return repo[tree[path].id].data if path in tree else None


def _raw(repo, raw_id: bytes | None) -> bytes | None:
    return repo.odb.read(pygit2.Oid(raw=raw_id))[1] if raw_id else None
