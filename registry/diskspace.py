"""Free space on the data directory's filesystem: writes are refused (507) before the disk is full.

Everything the registry writes goes to the data directory (the ledger, the blobs, the staging of
uploads, even with a bucket). A full disk must not be a 500 halfway through a write, so:

- an upload is refused when it would leave less than `REGISTRY_MIN_FREE_BYTES` free: before its
  body is read (by its declared length), and again while it is staged (`Staged` checks every few
  MiB, not per byte: one statvfs call);
- any other write (a commit: a few KiB) is refused when less than a quarter of that is left: the
  rest of the floor keeps room for yanks, grants and sign-ins once no upload fits, and for the
  ledger's own upkeep;
- a write that meets a full disk anyway (ENOSPC or EDQUOT: a race under the floor, a floor of 0)
  is the same 507, and leaves nothing half-written (fsync.write_file, ledger/writing.py).

Reads never write but to caches, which skip what a full disk refuses (reads/records.core_metadata).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import RegistryError, size

FULL = (errno.ENOSPC, errno.EDQUOT)
SETTING = "REGISTRY_MIN_FREE_BYTES"
ALL_BUT_FULL = 1 * 2**20  # free bytes below which health says the disk is full, whatever the floor


class DiskFull(RegistryError):
    status = 507  # Insufficient Storage


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found the disk (or the quota) full."""
    return isinstance(exc, OSError) and exc.errno in FULL


class DiskSpace:
    """The free space of the filesystem ``path`` is on, and the floor kept free there."""

    def __init__(self, path: Path, floor: int) -> None:
        self.path = Path(path)
        self.floor = floor

    def free(self) -> int:
        """The bytes an unprivileged writer may still use there (one statvfs)."""
        try:
            st = os.statvfs(self.path)
        except OSError:  # (not there yet: nothing to say)
            return 2**63
        return st.f_bavail * st.f_frsize

    def check(self, adding: int = 0, *, upload: bool = False) -> None:
        """Refuse a write now if the disk can't take it: an upload of ``adding`` bytes needs the
        whole floor free besides; anything else a quarter of it."""
        keep = self.floor if upload else self.floor // 4
        free = self.free()
        if free < keep + adding:
            what = f"this upload ({size(adding)})" if upload and adding else "this upload" if upload else "this write"
            raise DiskFull(f"The registry's disk is full: the filesystem of its data directory has "
                           f"{size(free)} free, and {what} needs {size(keep + adding - free)} more, to keep "
                           f"{size(keep)} free ({SETTING}={self.floor}). Nothing was changed; reads go on. The "
                           "operator must free space there (`registry gc` frees deleted files) or grow the disk; "
                           "then try again.")

    def report(self) -> dict:
        """For /_/health: the free bytes, the floor, and whether uploads (or all writes) are refused."""
        free = self.free()
        state = "full" if free < max(self.floor // 4, ALL_BUT_FULL) else "low" if free < self.floor else "ok"
        return {"free": free, "floor": self.floor, "state": state}


def met(exc: OSError) -> DiskFull:
    """The 507 for a write that found the disk full anyway (undone by whoever wrote). (The data
    directory's path is not said, here or above: the message goes to whoever made the request.)"""
    reason = os.strerror(exc.errno or errno.ENOSPC)  # (ENOSPC or EDQUOT: see disk_full)
    return DiskFull(f"The registry's disk is full: the filesystem of its data directory had no room for this write "
                    f"({reason}). Nothing was changed; reads go on. The operator must free space "
                    "there (`registry gc` frees deleted files) or grow the disk; then try again.")
