"""Package lists: a workspace's, a project's or a repository's (filtered, sorted, paged), the
Simple index's, and every workspace's. A workspace's list is cached by the git id of its packages
directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from .. import layout, model, visibility
from ..cache import Cache, weight
from ..errors import Invalid
from ..model import Package, Repository, Version
from . import records
from .catalog import Catalog

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
        """Whether a page follows this one."""
        return self.page * self.per_page < self.total


class Lists(Catalog):
    """The Reader's lists. A workspace's packages come from a cache keyed by the git id of its
    packages directory (remade, a lookup per package, when that changed); what the caller may read
    of them is decided per repository (a role check each, not one per package)."""

    def packages(self, ws: str, *, project: str | None = None, repository: str | None = None, q: str | None = None,
                 sort: Sort = "name", page: int = 1, per_page: int = 50, with_latest: bool = False) -> Page:
        """One page of the readable packages of a workspace, a project or a repository, filtered by
        part of the name (``q``), sorted by name or by last release (``sort``), each with its latest
        release if ``with_latest``. The packages the caller may not read are left out and not
        counted; the scope itself is `hidden` to whoever may not see it. Invalid for a bad page,
        page size or sort. Costs the workspace's list (cached) and a role check per repository;
        ``sort="published"`` also reads every matching package's versions, ``with_latest`` the
        page's."""
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
        snap = self.snapshot
        readable: dict[str, Repository | None] = {}  # slug -> the repository, if the caller may read it
        items: list[tuple[Package, Repository]] = []
        for package in self.all_packages(ws):
            if needle and needle not in package.name:
                continue
            slug = package.repository
            if slug not in readable:
                found = snap.get(layout.repository(ws, slug), Repository)
                readable[slug] = found if found is not None and visibility.can_read(snap, self.who, ws, slug) else None
            r = readable[slug]
            if r is not None and project in (None, r.project) and repository in (None, r.slug):
                items.append((package, r))
        if sort == "published":  # (needs every package's versions: the UI's choice, paged after)
            latest = {p.name: model.latest_release(records.versions(snap, ws, p.name)) for p, _ in items}
            items.sort(key=lambda i: (latest[i[0].name] or i[0]).created.at, reverse=True)
        start = (page - 1) * per_page
        chosen = items[start:start + per_page]
        return Page([Listed(p, r, model.latest_release(records.versions(snap, ws, p.name)) if with_latest else None)
                     for p, r in chosen], total=len(items), page=page, per_page=per_page)

    def all_packages(self, ws: str) -> list[Package]:
        """Every package of a workspace, by name, WHOEVER MAY READ THEM: callers filter (`index`,
        `packages`); an empty list for a workspace that has none or doesn't exist. Cached by the
        git id of the packages directory; the list returned is the cache's (don't change it)."""
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        if tree_id is None:
            return []
        found = _LISTS.get(tree_id)
        if found is None:
            found = records.list_packages(self.snapshot, ws)
            _LISTS.put(tree_id, found, weight(found))
        return found

    def index(self, ws: str) -> tuple[str | None, list[Package]] | None:
        """A workspace's Simple index: (a token that changes whenever its packages do: the git id of
        the packages directory, the packages the caller may read, by name), or None if the caller
        doesn't see the workspace or it doesn't exist (the URL then names no workspace, for them:
        the caller renders the refusal). Read with today's permissions on a Reader of the past.
        Costs the workspace's list (cached) and a role check per repository."""
        if not self.sees_workspace(ws):
            return None
        tree_id = self.snapshot.tree_id(layout.packages_dir(ws))
        packages = self.all_packages(ws)
        can_read = visibility.can_read_now if self._past else visibility.can_read
        readable = {r: can_read(self.now, self.who, ws, r) for r in {p.repository for p in packages}}
        return tree_id, [p for p in packages if readable[p.repository]]

    def everywhere(self) -> list[tuple[str, str | None, list[Package]]]:
        """Every workspace's Simple index the caller sees, by workspace name: (workspace, state,
        packages), as `index` answers each (the workspaces they don't see are left out). An `index`
        per workspace of the registry."""
        out = []
        for ws in self.snapshot.names("workspaces"):
            found = self.index(ws)
            if found is not None:
                out.append((ws, *found))
        return out

    def named_everywhere(self, name: str) -> list[Package]:
        """The packages called ``name`` (any spelling of it) that the caller may read, in whichever
        workspace they are, by workspace; none is no refusal. NotFound for what can't be a project
        name. A lookup per workspace of the registry."""
        canonical, snap, found = visibility.project_name(name), self.snapshot, []
        for ws in snap.names("workspaces"):
            package = snap.get(layout.package(ws, canonical), Package)
            if package is not None and visibility.can_read(snap, self.who, ws, package.repository):
                found.append(package)
        return found


_LISTS = Cache("package-lists", "a workspace's packages, by the git id of its packages directory")
