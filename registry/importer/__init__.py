"""`registry import`: distribution files from another index or a directory, each checked and
committed as an upload is (core.py: the loop; directory.py and index.py: the sources)."""

from .core import CHANNEL, Candidate, Outcome, Summary, run
from .directory import DirectorySource
from .index import IndexSource

__all__ = ["CHANNEL", "Candidate", "DirectorySource", "IndexSource", "Outcome", "Summary", "run"]
