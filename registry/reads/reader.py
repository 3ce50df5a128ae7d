"""The Reader: the registry as one caller may see it, at one commit, everything the web, the CLI
and the UI ask. It is its parts at once, each a `Catalog` (catalog.py: the caller, the commit, single
things) extended with one kind of question:

    Catalog      workspaces, projects, repositories, packages, versions, files      catalog.py
    Lists        package lists, the Simple index's                                  lists.py
    Summaries    packages summarised (latest, count, last upload)                   summaries.py
    Trail        a package's history, the audit trail, a commit's changes           trail.py
    People       credentials, users, tokens, sessions, sign-in links                people.py
    Members      who holds which grant: a workspace's grants and members, users     members.py
    LedgerReads  signing keys, the signed checkpoint, the ledger whole              ledger.py
    UpstreamReads  upstream settings, owned names, files fetched from upstream       upstream.py
    WebhookReads   webhooks and their deliveries (the data directory's state)        webhooks.py

What is left here is what makes another Reader: the same commit for another caller, or an earlier
commit of the ledger.
"""

from __future__ import annotations

from ..identity import Principal
from . import timeline
from .ledger import LedgerReads
from .lists import Lists
from .members import Members
from .people import People
from .summaries import Summaries, all_summaries
from .trail import Trail
from .upstream import UpstreamReads
from .webhooks import WebhookReads


class Reader(Lists, Summaries, Trail, People, Members, LedgerReads, UpstreamReads, WebhookReads):
    """The registry as one caller may see it, at one commit (see `Catalog`). Cheap to make: a
    snapshot and a principal; every answer costs what its method says."""

    def as_(self, who: Principal) -> Reader:
        """The same commit (and the same present), another caller."""
        return Reader(self.reg, who, self.snapshot, self.now if self._past else None)

    def resolve(self, ref: str) -> str:
        """The commit of main (as of this Reader's present) that ``ref`` names: a commit id (7 to 40
        hex digits), or an ISO 8601 time (the last commit made by then). Whoever asks (commit ids
        and times name no workspace). NotFound says why a ref names nothing (or, while the history
        index is catching up, to try again). O(log n) lookups in the history index, cached per tip.
        Blocking (the history index and git): a server calls it from a worker thread."""
        return timeline.resolve(self.reg, ref, self.now.commit_id)

    def at(self, commit: str) -> Reader:
        """The registry at an earlier commit of main (one `resolve` answered), read with this Reader's
        caller and today's permissions."""
        return Reader(self.reg, self.who, self.reg.snapshot_at(commit), self.now)

    def warm(self) -> None:
        """Fill the package-list and summary caches for every workspace (a server does it at start,
        so that no first request pays for them). Whoever the caller; a list per workspace."""
        for ws in self.snapshot.names("workspaces"):
            self.all_packages(ws)
            all_summaries(self.snapshot, ws)
