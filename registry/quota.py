"""A workspace's quota: the figure after a commit, and the refusal of one that would pass the limit
(the figure itself, and counting it, are reads: `reads/usage.py`).

Usage counts each published file by its size, once per file: two files with the same bytes count
twice (their blob is stored once, but each is a file its users see listed, and deleting either frees
what the figure says). Files fetched from upstream indexes are a cache and don't count. The figure
is a record (`StorageUsage`) that every publish and deletion updates in its own commit, so an
upload compares against it without counting; the commit checks the quota on the snapshot it builds
on, under the ledger's lock, so two uploads that fit alone never pass together.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import model
from .errors import RegistryError, size


class OverQuota(RegistryError):
    """A 413: a client error (the workspace's own limit, not the server's state), which twine, uv and
    poetry show as such and none retries, unlike the 507 of a full disk."""

    status = 413


def changed(current: model.StorageUsage, added: Sequence[model.DistFile] = (),
            removed: Sequence[model.DistFile] = ()) -> model.StorageUsage:
    """The figure after a commit that adds and removes these files."""
    return model.StorageUsage(bytes=max(0, current.bytes + sum(f.size for f in added) - sum(f.size for f in removed)),
                              files=max(0, current.files + len(added) - len(removed)))


def check(workspace: model.Workspace, current: model.StorageUsage, adding: int | None, what: str) -> None:
    """Refuse ``what`` (``adding`` bytes; None: not known yet, refused only if the workspace is full)
    if it would take the workspace over its quota."""
    limit = workspace.quota_bytes
    if limit is None or current.bytes + (adding or 0) <= limit and (adding is not None or current.bytes < limit):
        return
    needs = f"needs {size(adding)}" if adding is not None else "can't fit"
    raise OverQuota(
        f"Workspace {workspace.slug} is over its storage quota: {what} {needs}, its published files "
        f"take {size(current.bytes)} of its {size(limit)} limit ({size(max(0, limit - current.bytes))} free). "
        f"Delete old versions (`registry version delete {workspace.slug} NAME VERSION`, or a retention policy: "
        f"`registry retention apply`), or ask the registry's operator to raise the quota "
        f"(`registry workspace quota {workspace.slug} BYTES`).")
