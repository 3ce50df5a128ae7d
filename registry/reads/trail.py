"""History: the commits that touched a package, a workspace's (or a repository's) audit trail as
one caller may see it, and one commit's changed records. All of it from the history index
(history.py), as it stands: a read never catches it up (whoever commits and the background do)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pygit2

from .. import layout, visibility
from ..audit import T, creates_package, touched
from ..errors import Invalid, NotFound
from ..history import Filed
from ..layout import version_key
from ..ledger import Commit, lookup, trees
from ..model import Version
from .catalog import Catalog
from .unnamed import Unnamed

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


class Trail(Catalog):
    """The Reader's history and audit trail, from the history index as it stands (a read never
    catches it up: right after a commit it may lack the newest, for a moment). A page costs its own
    rows in the index, never the rows before it nor the ones the caller may not see. Every commit and
    record shown names a repository the caller can't read by its UUID only (`unnamed.py`)."""

    def history(self, ws: str, name: str, version: str | None = None, *, limit: int = 100,
                before: str | None = None, after: str | None = None) -> list[Commit]:
        """The commits that touched a readable package (or one of its versions), newest first: this
        package's, from the commit that created it on (an earlier package of the same name, deleted
        since, has a history of its own that isn't this one's). A deleted version's history still
        answers, while its package exists. A page: the newest ``limit`` before commit ``before``, or
        the oldest ``limit`` after commit ``after`` (ids from an earlier page); Invalid for a cursor
        that is no commit of the index. The package is `hidden` as in `package`; NotFound for a
        version it never had. Empty while the index hasn't caught up to the package's creation."""
        read = self.package(ws, name)
        record = None
        if version is not None:
            record = self.snapshot.get(layout.version(ws, read.package.name, version_key(version)), Version)
        label = record.version if record else version
        created = self.created(ws, read.package.name)
        commits = [] if created is None else self.reg.history.package(
            ws, read.package.name, label, limit=limit, since=created[0], before=self._cursor(before),
            after=self._cursor(after))
        if version is not None and not commits and label == version and record is None and before is after is None:
            raise NotFound(f"Package {read.package.name!r} has no version {version!r}, and never had.")
        unnamed = Unnamed(self.now, self.who, ws)
        return [unnamed.commit(c) for c in commits]

    def version_label(self, ws: str, name: str, version: str) -> str:
        """How a version is spelt in the records (and the history): as published, if it still is;
        otherwise as given. Whoever asks (it only respells what they gave). One lookup."""
        record = self.snapshot.get(layout.version(ws, name, version_key(version)), Version)
        return record.version if record else version

    def created(self, ws: str, name: str) -> tuple[int, str] | None:
        """The commit that created the package read here (of this commit's packages of that name,
        the one that exists), as (its position in the history index, its id); None while the index
        hasn't caught up to it. The package must exist at this commit and be the caller's to read:
        ask `package` first (no check here). A lookup in the index, and a walk of at most
        history.TAIL commits it hasn't caught up to."""
        base = self.reg.history.base(self.snapshot.commit_id)
        if base is None:
            return None
        at, tail = base
        for commit in map(Commit.of, tail):  # (newer than the index: a creation there is this package's)
            if creates_package(commit) and touched(commit) == (ws, name):
                return None
        return self.reg.history.incarnation(ws, name, at)

    def created_by(self, ws: str, name: str) -> str | None:
        """The id of the commit that created the package (see `created`: ask `package` first)."""
        found = self.created(ws, name)
        return found[1] if found else None

    def serial(self) -> int:
        """How many commits the history index holds (the JSON API's last serial). Whoever asks. One
        query."""
        return self.reg.history.serial()

    def trail(self, ws: str, repository: str | None = None, *, limit: int = 50, before: str | None = None,
              after: str | None = None) -> list[Filed]:
        """A workspace's (or one repository's) commits that the caller may see, newest first: those
        concerning a package of a repository they may read, a repository's own where they administer
        it, all of them where they administer the workspace. Paged as `history` is. The workspace
        (and the repository) is `hidden` to whoever doesn't see it. A role check per repository of
        the workspace, and an index range per repository the caller may see."""
        self.workspace(ws)
        if repository is not None:
            self.repository(ws, repository)
        audience = visibility.trail_audience(self.now, self.who, ws)  # (former slugs included)
        readable = None if audience.everything else set(audience.readable)
        slugs = None if repository is None else set(visibility.with_former({repository},
                                                                          visibility.former_slugs(self.now, ws)))
        found = self.reg.history.trail(ws, repository=slugs, readable=readable,
                                       administered=set(audience.administered), limit=limit,
                                       before=self._cursor(before), after=self._cursor(after))
        unnamed = Unnamed(self.now, self.who, ws)  # (another repository a commit names: see unnamed.py)
        return [replace(f, commit=unnamed.commit(f.commit)) for f in found]

    def _cursor(self, commit_id: str | None) -> int | None:
        """Where a page begins: the history index's position of the commit an earlier page ended on."""
        if commit_id is None:
            return None
        found = self.reg.history.position(commit_id) if _HEX.fullmatch(commit_id) else None
        if found is None:
            raise Invalid(f"{commit_id!r} is no commit the history is paged by: follow the page's Newer and Older "
                          "links (they name a commit of the page, by its full id).")
        return found

    def trail_catching_up(self) -> bool:
        """Whether the audit trail lacks the newest commits yet (a page may say so). Whoever asks."""
        return self.reg.history.trail_behind()

    def commit_changes(self, ws: str, commit_id: str) -> CommitRead:
        """A commit of the workspace (by its id or a unique prefix of 7 or more hex digits) and the
        records it changed, if the caller may see it in the workspace's trail (`trail`). A commit
        they may not see, of another workspace, or not (yet) in the index is `hidden`, all alike;
        Invalid for what is no commit id, or a prefix more than one commit starts with. An index
        lookup, and a diff of the commit's tree with its parent's (what the commit changed)."""
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
        current = repo[filed.commit.id].peel(pygit2.Commit)
        parent = current.parents[0] if current.parents else None
        records = []
        try:
            diff = parent.tree.diff_to_tree(current.tree) if parent else current.tree.diff_to_tree(swap=True)
            for delta in diff.deltas:  # (the paths are all it takes: no patch is made)
                old, new = delta.old_file.path, delta.new_file.path
                records.append(RecordChange(new or old, _blob(parent.tree, old) if parent else None,
                                            _blob(current.tree, new)))
        except pygit2.GitError:  # a tree libgit2 can't parse (an older release's; `registry repair` removes it)
            records = [RecordChange(path, _raw(repo, old), _raw(repo, new)) for path, old, new in
                       trees.changes(repo, parent.tree_id if parent else None, current.tree_id)]
        unnamed = Unnamed(self.now, self.who, ws)  # (another repository a commit names: see unnamed.py)
        shown = [RecordChange(r.path, unnamed.record(r.old), unnamed.record(r.new)) for r in records
                 if not unnamed.hides(r.path, r.old, r.new)]
        return CommitRead(replace(filed, commit=unnamed.commit(filed.commit)), str(parent.id) if parent else None,
                          shown)

    def log(self, ws: str | None = None, package: str | None = None, *, limit: int = 100) -> list[Commit]:
        """The audit trail as the operator reads it (deleted packages included): the commits that
        touched a package of a workspace, from the history index, or the newest commits of a
        workspace or of the whole ledger, from git (``limit`` 0: all). The operator's only: NotFound
        for anyone else. NotFound for a workspace that doesn't exist, or a package that never did.
        The whole ledger's log walks git, newest first, until ``limit`` commits are found."""
        if self.who.kind != "operator":
            raise NotFound("The audit log is the operator's.")
        if ws is not None:
            self.workspace(ws)
        if package:
            if ws is None:
                raise Invalid("A package's log names its workspace too: `registry log WS PACKAGE`.")
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


def _blob(tree: pygit2.Tree, path: str | None) -> bytes | None:
    found = lookup.entry(tree, path) if path is not None else None
    return found.read_raw() if found is not None else None


def _raw(repo: pygit2.Repository, raw_id: bytes | None) -> bytes | None:
    return repo.odb.read(pygit2.Oid(raw=raw_id))[1] if raw_id else None

