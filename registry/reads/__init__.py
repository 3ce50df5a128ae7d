"""The read layer: every question the web, the CLI and the UI ask of the registry, answered for one
caller at one commit. Nothing else reads records: visibility is decided here (through
visibility.py) and only here, so every surface hides the same things the same way.

A `Reader` is cheap (a snapshot and a principal); each answer costs what it returns: a record
lookup per thing shown, never a walk of the ledger's past (history and the audit trail come from
their index, written by whoever commits and caught up in the background, never on a read).

reader.py     the Reader: all the parts below at once, and another Reader (another caller, an earlier commit)
catalog.py    what every part stands on (one caller, one commit): workspaces, projects, repositories,
              packages, versions, files
lists.py      package lists (cached by the git id of their directory), the Simple index's
summaries.py  every package of a workspace summarised (latest, count, last upload), cached by shard
trail.py      history: a package's, a workspace's audit trail, one commit's changed records
unnamed.py    other repositories' slugs in the trail, as the caller may know them (their UUIDs otherwise)
people.py     credentials (tokens, pipelines, web sessions, sign-in links), users, their tokens and sessions
members.py    who holds which grant: a workspace's grants and members, the users an admin sees
ledger.py     the ledger itself: signing keys, checkpoints, fetching it whole
timeline.py   the ledger through time: commit counts, which commit an @<commit> or @<time> names
records.py    records by what names them, on one snapshot: the lookups reads and verbs share

Nothing here imports `operations` (the verbs): reads are below them (tests/adversarial's import
graph test holds it so).
"""

from .catalog import PackageRead, project_name
from .lists import MAX_PER_PAGE, Listed, Page, Sort
from .reader import Reader
from .summaries import Summary
from .trail import CommitRead, RecordChange

__all__ = ["MAX_PER_PAGE", "CommitRead", "Listed", "Page", "PackageRead", "Reader", "RecordChange", "Sort", "Summary",
           "project_name"]
