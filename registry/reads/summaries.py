"""Every package of a workspace summarised (its latest release, how many versions, its last
upload), for lists that show or sort by them (the web UI's). A summary is remade only when its
shard of the packages directory changed: the cache is keyed by the shard's git id."""

from __future__ import annotations

from dataclasses import dataclass

from .. import layout, model
from ..cache import Cache, weight
from ..ledger import Snapshot
from ..model import DistFile, Package
from . import records
from .catalog import Catalog


@dataclass(frozen=True)
class Summary:
    package: Package
    latest: str | None  # the latest release's version
    versions: int
    newest: DistFile | None  # the file uploaded last


_shards = Cache("summaries", "package summaries, by the git id of their shard of a packages directory")


class Summaries(Catalog):
    """The Reader's package summaries."""

    def summaries(self, ws: str, *, project: str | None = None, repository: str | None = None) -> list[Summary]:
        """The packages the caller may read in a workspace, a project or a repository, summarised,
        in no particular order (the ones they may not read are left out); the scope itself is
        `hidden` to whoever may not see it. Costs a role check per repository of the workspace and
        the workspace's summaries, cached per shard of its packages directory (a shard that changed
        is summarised again: a lookup per version of its packages)."""
        self.workspace(ws)
        if project is not None:
            project = self.project(ws, project).key
        if repository is not None:
            self.repository(ws, repository)
        in_scope = {r.slug for r in self.repositories(ws)
                    if (project is None or r.project == project) and (repository is None or r.slug == repository)}
        return [s for s in all_summaries(self.snapshot, ws) if s.package.repository in in_scope]


def all_summaries(snap: Snapshot, ws: str) -> list[Summary]:
    """Every package of the workspace summarised, whoever may read it (callers filter)."""
    root = layout.packages_dir(ws)
    found: list[Summary] = []
    for shard in snap.names(root):
        tree_id = snap.tree_id(f"{root}/{shard}")
        summaries = _shards.get(tree_id)
        if summaries is None:
            packages = (snap.get(f"{root}/{shard}/{name}/package.json", Package)
                        for name in snap.names(f"{root}/{shard}"))
            summaries = tuple(_summary(snap, ws, p) for p in packages if p is not None)
            _shards.put(tree_id, summaries, weight(summaries))
        found += summaries
    return found


def _summary(snap: Snapshot, ws: str, package: Package) -> Summary:
    versions = records.versions(snap, ws, package.name)
    latest = model.latest_release(versions)
    newest = max((f for v in versions for f in v.files), key=lambda f: f.uploaded.at, default=None)
    return Summary(package, latest.version if latest else None, len(versions), newest)
