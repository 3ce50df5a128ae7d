"""Package lists: a workspace's, a project's or a repository's (filtered, sorted, paged), the
Simple index's, and every workspace's. A workspace's list is cached by the git id of its packages
directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version as PkgVersion

from .. import layout, model, visibility
from ..cache import Cache, weight
from ..errors import Invalid
from ..ledger import Snapshot
from ..model import Package, Repository, Version
from .records import list_packages

MAX_PER_PAGE = 500
Sort = Literal["name", "published"]


@dataclass(frozen=True)
class Listed:
    package: Package
    repository: Repository
    latest: Version | None = None  # when asked for (the UI shows it)


@dataclass(frozen=True)
class Page:
    items: list[Listed]
    total: int
    page: int
    per_page: int

    @property
    def more(self) -> bool:
        return self.page * self.per_page < self.total


class Lists:
    """The Reader's lists (a mixin: ``self`` is the Reader)."""

    def packages(self, ws: str, *, project: str | None = None, repository: str | None = None, q: str | None = None,
                 sort: Sort = "name", page: int = 1, per_page: int = 50, with_latest: bool = False) -> Page:
        """The readable packages of a workspace, a project or a repository: filtered by part of the
        name, sorted, one page. The scope itself answers as missing to whoever may not see it."""
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            raise Invalid(f"page starts at 1 and per_page is 1 to {MAX_PER_PAGE}.")
        if sort not in ("name", "published"):
            raise Invalid(f"Unknown sort {sort!r}: use name or published.")
        self.workspace(ws)
        if project is not None:
            project = self.project(ws, project).key
        if repository is not None:
            self.repository(ws, repository)
        # (a filter, not a name: anything may be typed; what no name holds matches nothing)
        needle = canonicalize_name(q.strip()) if q and q.strip() else None
        snap, readable, repos = self.snapshot, {}, {}
        items = []
        for package in self.all_packages(ws):
            if needle and needle not in package.name:
                continue
            slug = package.repository
            if slug not in readable:
                repos[slug] = snap.get(layout.repository(ws, slug), Repository)
                readable[slug] = repos[slug] is not None and visibility.can_read(snap, self.who, ws, slug)
            r = repos[slug]
            if readable[slug] and (project is None or r.project == project) and (repository is None or r.slug == repository):
                items.append((package, r))
        if sort == "published":  # (needs every package's versions: the UI's choice, paged after)
            latest = {p.name: model.latest_release(sorted_versions(snap, ws, p.name)) for p, _ in items}
            items.sort(key=lambda i: (latest[i[0].name].created.at if latest[i[0].name] else i[0].created.at), reverse=True)
        start = (page - 1) * per_page
        chosen = items[start:start + per_page]
        return Page([Listed(p, r, model.latest_release(sorted_versions(snap, ws, p.name)) if with_latest else None)
                     for p, r in chosen], total=len(items), page=page, per_page=per_page)

    def all_packages(self, ws: str) -> list[Package]:
        """Every package of a workspace, by name, whoever may read them (callers filter)."""
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        if tree_id is None:
            return []
        found = _LISTS.get(tree_id)
        if found is None:
            found = list_packages(self.snapshot, ws)
            _LISTS.put(tree_id, found, weight(found))
        return found

    def index(self, ws: str) -> tuple[str | None, list[Package]] | None:
        """A workspace's Simple index: (what it depends on, the readable packages), or None if the
        caller may not see the workspace (the URL then names no workspace, for them)."""
        if not self.sees_workspace(ws):
            return None
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        packages = self.all_packages(ws)
        can_read = visibility.can_read_now if self._past else visibility.can_read
        readable = {r: can_read(self.now, self.who, ws, r) for r in {p.repository for p in packages}}
        return tree_id, [p for p in packages if readable[p.repository]]

    def everywhere(self) -> list[tuple[str, str | None, list[Package]]]:
        """Every workspace's readable packages: (workspace, state, packages)."""
        out = []
        for ws in self.snapshot.names("workspaces"):
            found = self.index(ws)
            if found is not None:
                out.append((ws, *found))
        return out

    def named_everywhere(self, name: str) -> list[Package]:
        """The readable packages called ``name``, in whichever workspace they are."""
        canonical, snap, found = visibility.project_name(name), self.snapshot, []
        for ws in snap.names("workspaces"):
            package = snap.get(layout.package(ws, canonical), Package)
            if package is not None and visibility.can_read(snap, self.who, ws, package.repository):
                found.append(package)
        return found


def sorted_versions(snap: Snapshot, ws: str, name: str) -> list[Version]:
    """Every version of a package, oldest release first (PEP 440 order)."""
    return sorted(snap.records(layout.versions_dir(ws, name), Version), key=_release)


def _release(v: Version):
    try:
        return (0, PkgVersion(v.version))
    except InvalidVersion:  # (never stored: every version is checked at upload; but never a 500)
        return (1, v.version)


_LISTS = Cache("package-lists", "a workspace's packages, by the git id of its packages directory")
