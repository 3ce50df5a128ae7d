"""What a caller may read of the workspace's upstream indexes: the settings, whether a name is the
workspace's own, and the files fetched from upstream (at this Reader's commit: an install of the
past is reproduced from them).

Upstream projects are read through a workspace by those who see it (a role on one of its
repositories, or its admins), never by strangers: an anonymous caller is told what they'd be told
of any name. An upstream project never makes a private one visible: a name the workspace owns is
answered from here alone, for everyone.
"""

from __future__ import annotations

from .. import layout, visibility
from ..model import UpstreamFile, UpstreamPolicy
from . import records
from .catalog import Catalog


class UpstreamReads(Catalog):
    def upstream_policy(self, ws: str) -> UpstreamPolicy | None:
        """The workspace's upstream settings as of this commit, for its members (`visibility.member`;
        None for anyone else, or if it has none): which indexes it uses and what its rules guard are
        its own business. Credentials are never in them. One lookup, and those of `member`."""
        policy = records.upstream_policy(self.snapshot, ws)
        return policy if policy is not None and visibility.member(self.now, self.who, ws) else None

    def is_member(self, ws: str) -> bool:
        return visibility.member(self.now, self.who, ws)

    def upstream_for(self, ws: str) -> UpstreamPolicy | None:
        """The upstream settings through which the caller may read upstream projects of ``ws``: only
        a member of the workspace (`visibility.member`: not anyone who reads a public repository of
        it), and only if it has an upstream index. The lookups of `member`."""
        if self.who.kind == "anonymous":
            return None
        policy = records.upstream_policy(self.snapshot, ws)  # (one lookup first: most workspaces have none)
        if policy is None or not policy.upstreams or not visibility.member(self.now, self.who, ws):
            return None
        return policy

    def owns(self, ws: str, name: str) -> bool:
        """Whether ``name`` is, or was, a package of the workspace (whoever asks: used only to keep
        upstream from answering for it). One or two lookups."""
        return records.owns(self.snapshot, ws, name)

    def upstream_files(self, ws: str, name: str) -> dict[str, UpstreamFile]:
        """The files of ``name`` fetched from upstream by this commit, by filename. A lookup per file."""
        return records.upstream_files(self.snapshot, ws, name)

    def upstream_state(self, ws: str, name: str) -> str | None:
        """A token that changes exactly when a file of ``name`` is fetched, or the settings change."""
        files, settings = layout.upstream_files_dir(ws, name), layout.upstream(ws)
        return f"{self.snapshot.tree_id(files)}:{self.snapshot.object_id(settings)}"
