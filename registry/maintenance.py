"""Keeping the data directory honest: freeing unreferenced blobs, and checking everything.

Collection never removes a blob the ledger still references, even with a publish racing it: the
referenced set is computed from a snapshot, then, under the ledger's write lock, what commits since
that snapshot referenced is added. Files are deleted right there (a publish adopts its file under
that same lock, so none can slip in between). A bucket's objects are deleted after the lock is
released (a round trip must never hold it), each held by its claim (blobs/claims.py): a publish
stores its object under the same claim and holds it until its commit has landed, so an object being
deleted is never one a commit is about to name, and one a publish holds is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import audit, layout, model, repair
from .config import Settings
from .datadir import Registry
from .errors import RegistryError
from .ledger import Ledger, Snapshot
from .reads.records import list_packages
from .reads.usage import counted
from .trust import commit_signatures as signatures
from .trust import keys as signing

if TYPE_CHECKING:
    from .blobs.migrate import Migrated

log = logging.getLogger("registry.maintenance")
CLAIMED_AT_ONCE = 256  # objects of a bucket the collector holds (and deletes) at a time


def referenced_blobs(snap: Snapshot, workspaces: list[str] | None = None,
                     packages: set[tuple[str | None, str | None]] | None = None) -> set[str]:
    """Every sha256 the snapshot's versions refer to (files and their core metadata); ``packages``:
    only those of these (workspace, package) pairs (`audit.touched`: None where a commit names none)."""
    snap = snap.scanning()  # (a walk: it keeps no record it reads)
    found: set[str] = set()
    for ws in workspaces if workspaces is not None else snap.names("workspaces"):
        for package in list_packages(snap, ws):
            if packages is not None and (ws, package.name) not in packages:
                continue
            for version in snap.records(layout.versions_dir(ws, package.name), model.Version):
                for f in version.files:
                    found.update((f.sha256, f.metadata_sha256))
        for name, files in _upstream_files(snap, ws):
            if packages is None or (ws, name) in packages:
                found.update(sha for f in files for sha in (f.sha256, f.metadata_sha256) if sha)
    return found


def _upstream_files(snap: Snapshot, ws: str) -> Iterator[tuple[str, list[model.UpstreamFile]]]:
    """The files fetched from upstream, by project."""
    root = layout.upstream_projects_dir(ws)
    for shard in snap.names(root):
        for name in snap.names(f"{root}/{shard}"):
            yield name, list(snap.records(layout.upstream_files_dir(ws, name), model.UpstreamFile))


def _files(snap: Snapshot) -> Iterator[tuple[str, model.DistFile | model.UpstreamFile]]:
    """Every distribution file the snapshot names (published, or fetched from upstream), with where
    it is (for a report)."""
    snap = snap.scanning()  # (a walk: it keeps no record it reads)
    for ws in snap.names("workspaces"):
        for package in list_packages(snap, ws):
            for version in snap.records(layout.versions_dir(ws, package.name), model.Version):
                for f in version.files:
                    yield f"{ws}/{package.name} {version.version}: {f.filename}", f
        for name, files in _upstream_files(snap, ws):
            for u in files:
                yield f"{ws}/{name} {u.version} (from upstream {u.upstream}): {u.filename}", u


def referenced_files(snap: Snapshot) -> dict[str, tuple[str, str | None]]:
    """Every distribution file the snapshot names: sha256 → (where, for a report; the sha256 of its
    core metadata, if it has one)."""
    return {f.sha256: (where, f.metadata_sha256) for where, f in _files(snap)}


def check_blobs(reg: Registry) -> dict[str, str]:
    """The files the ledger references that the store lacks (by one listing of the store, not a
    request per file), recorded for /_/health: sha256 → where. Held meanwhile: each file's digest,
    as 32 bytes (a few MiB at 100,000 files); where a file is, only for those found missing."""
    snap = reg.snapshot()
    unseen = {bytes.fromhex(f.sha256) for _, f in _files(snap)}
    for sha, _ in reg.blobs.list():
        try:
            unseen.discard(bytes.fromhex(sha))
        except ValueError:  # (a name in the store that is no digest: not one of ours)
            continue
    missing = {f.sha256: where for where, f in _files(snap) if bytes.fromhex(f.sha256) in unseen} if unseen else {}
    reg.missing.replace(missing)
    return missing


def _deleted_at(snap: Snapshot) -> dict[str, float]:
    """When each blob of a deleted file was deleted (the grace period counts from then)."""
    out: dict[str, float] = {}
    for ws in snap.names("workspaces"):
        for record in snap.records(layout.deleted_files_dir(ws), model.DeletedFiles):
            for f in record.files.values():
                at = f.deleted.at.timestamp()
                for sha in (f.sha256, f.metadata_sha256):
                    if sha:
                        out[sha] = max(out.get(sha, 0.0), at)
    return out


@dataclass
class Collected:
    freed: int = 0
    bytes: int = 0
    kept_in_grace: int = 0
    repacked: bool = False


def collect(reg: Registry, grace_seconds: float = 0, repack: bool = True) -> Collected:
    """Free blobs no version references any more, once unreferenced for ``grace_seconds``."""
    snap = reg.snapshot()
    files = referenced_files(snap)
    referenced = set(files) | {metadata for _, metadata in files.values() if metadata}
    unseen = {sha: where for sha, (where, _) in files.items()}  # (what the store lacks: damage)
    deleted_at = _deleted_at(snap)
    now = time.time()
    result = Collected()
    candidates = []
    for sha, mtime in reg.blobs.list():
        unseen.pop(sha, None)
        if sha in referenced:
            continue
        # a deleted file's blob waits from its deletion; an orphan (a publish that never committed) from its write
        since = deleted_at.get(sha, mtime)
        if now - since < grace_seconds:
            result.kept_in_grace += 1
            continue
        candidates.append(sha)
    reg.missing.replace(unseen)
    step = CLAIMED_AT_ONCE if reg.blobs.remote else max(len(candidates), 1)  # (files: all under one lock)
    for batch in range(0, len(candidates), step):
        with reg.blobs.held(candidates[batch:batch + step]) as held:
            with reg.ledger.write_lock(timeout=300):
                reg.ledger.checkpoint()  # a journal replay must not bring back what is deleted here
                head = reg.ledger.head()
                if head != snap.commit_id:  # what changed since our snapshot may reference a candidate again
                    touched = {audit.touched(c) for c in reg.ledger.walk(since=snap.commit_id)}
                    referenced |= referenced_blobs(reg.ledger.snapshot_at(head), packages=touched)
                    snap = reg.ledger.snapshot_at(head)
                doomed = [sha for sha in held if sha not in referenced]
                if not reg.blobs.remote:
                    _free(reg, doomed, result)
            if reg.blobs.remote:  # (round trips: after the lock, each object held by its claim)
                _free(reg, doomed, result)
    reg.blobs.sweep_staging()
    if repack:
        reg.ledger.repack(full=True)
        result.repacked = True
    return result


def _free(reg: Registry, shas: list[str], result: Collected) -> None:
    for sha in shas:
        size = reg.blobs.size(sha) if reg.blobs.exists(sha) else 0
        reg.blobs.delete(sha)
        result.freed += 1
        result.bytes += size


# --- verify --------------------------------------------------------------------------------------


@dataclass
class Report:
    checked_records: int = 0
    checked_blobs: int = 0
    checked_commits: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, nothing wrong
    damaged: list[repair.Damaged] = field(default_factory=list)  # what `registry repair` would remove

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(reg: Registry, *, hash_blobs: bool = True) -> Report:
    """Every tree entry can be read back by git and created by a checkout, every record decodes as
    its type (the types the schemas in schemas/ are generated from), sits where its content says and
    keeps today's rules on names (repair.scan: what fails is named by its path, and `registry repair`
    removes what can't be read back; a readable record that breaks a newer rule is only noted),
    every referenced blob exists with the right size and sha256, and git's own fsck passes."""
    from .blobs.s3 import S3BlobStore  # (botocore: only when verifying)

    report = Report()
    snap = reg.snapshot()
    wanted: dict[str, tuple[int, str]] = {}
    for checked in repair.scan(snap):
        if checked.note is not None:
            report.notes.append(f"{checked.note.shown}: {checked.note.reason} (kept; `registry repair "
                                f"{checked.note.shown} --apply` removes it, if it must go)")
        if checked.damage is not None:
            report.damaged.append(checked.damage)
            report.problems.append(f"{repair.Damaged(checked.path, '').shown}: {checked.damage.reason}")
            if checked.path.endswith(".json"):
                report.checked_records += 1
            continue
        report.checked_records += 1
        record = checked.record
        if isinstance(record, model.Version):
            for f in record.files:
                wanted[f.sha256] = (f.size, f"{checked.path} {f.filename}")
                wanted.setdefault(f.metadata_sha256, (-1, f"{checked.path} {f.filename} (core metadata)"))
        elif isinstance(record, model.UpstreamFile):
            wanted[record.sha256] = (record.size, f"{checked.path} (fetched from upstream {record.upstream})")
    torn_caches = 0
    missing: dict[str, str] = {}
    bucket = reg.blobs if isinstance(reg.blobs, S3BlobStore) else None
    remote = dict(bucket.inventory()) if bucket is not None else {}  # (a bucket's sizes: one listing)
    for sha, (size, where) in sorted(wanted.items()):
        report.checked_blobs += 1
        local = reg.blobs.local_path(sha)
        actual = local.stat().st_size if local is not None else remote.get(sha) if size >= 0 else None
        if actual is None:
            if size >= 0:  # (core metadata is a cache: re-extracted from its file when asked for)
                report.problems.append(f"{where}: blob {sha} is missing")
                missing[sha] = where
            continue
        if size >= 0 and actual != size:
            report.problems.append(f"{where}: blob {sha} is corrupt: it has {actual} bytes, the ledger says {size}")
            continue
        if size < 0 or hash_blobs:
            digest = hashlib.sha256()
            with open(local, "rb") if local is not None else reg.blobs.open(sha) as fh:
                while chunk := fh.read(2**20):
                    digest.update(chunk)
            if digest.hexdigest() != sha and size < 0:
                torn_caches += 1  # never synced, by design: a power cut may leave one torn
            elif digest.hexdigest() != sha:
                report.problems.append(f"{where}: blob {sha} is corrupt (its content hashes to {digest.hexdigest()})")
    reg.missing.replace(missing)  # (what /_/health reports, as of now)
    if missing and bucket is not None:
        report.notes.append(f"{len(missing)} file(s) missing from the blob store {bucket.location}: if the files "
                            "were moved to the bucket, run `registry blobs migrate --to "
                            f"{str(bucket.location).rstrip('/')}` again where the old files are")
    elif missing:
        report.notes.append(f"{len(missing)} file(s) missing from {reg.settings.blobs_path}: restore them from a "
                            "backup, or have the same files uploaded again")
    if torn_caches:
        report.notes.append(f"{torn_caches} cached core-metadata file(s) torn by a crash: each is extracted again "
                            "from its distribution on its next request")
    for d in reg.ledger.damage.unresolved(deep=hash_blobs):
        report.problems.append(f"journal replay of {d.found} (commit {d.commit[:12] or 'unknown'}): {d.problem}"
                               + ("" if d.path else f"; once dealt with, delete {reg.ledger.damage.path}"))
    if not report.damaged:  # (a record that can't be read can't be counted: repair first)
        _verify_usage(snap, report)
    _verify_signatures(reg, snap, report)
    git = shutil.which("git")
    if git:
        with reg.ledger.repack_lock():  # a repack deleting packs under fsck would look like damage
            proc = subprocess.run([git, "-C", str(reg.ledger.path), "fsck", "--strict", "--no-dangling",
                                   "--no-progress"], capture_output=True, text=True)
        if proc.returncode != 0:
            report.problems += [f"git fsck: {line}" for line in (proc.stdout + proc.stderr).splitlines()
                                if line.strip()]
    else:
        report.problems.append("git is not installed: the ledger's objects could not be fsck'd")
    return report


def _verify_usage(snap: Snapshot, report: Report) -> None:
    """Each workspace's running usage figure (what uploads are checked against its quota) agrees with
    a count of its published files; a drift is a problem, since the quota would be checked against
    the wrong figure. Counting it afresh is `registry workspace quota`, which keeps the quota given."""
    for ws in snap.names("workspaces"):
        figure = snap.get(layout.usage(ws), model.StorageUsage)
        if figure is None:
            continue  # (a ledger from before the figure: it is counted when asked for)
        fresh = counted(snap, ws)
        if (figure.bytes, figure.files) != (fresh.bytes, fresh.files):
            workspace = snap.get(layout.workspace(ws), model.Workspace)
            quota = "none" if workspace is None or workspace.quota_bytes is None else str(workspace.quota_bytes)
            report.problems.append(
                f"{layout.usage(ws)}: workspace {ws}'s usage figure says {figure.bytes} bytes in {figure.files} "
                f"files, but its published files count {fresh.bytes} bytes in {fresh.files} files (uploads are "
                f"checked against its quota by the figure): run `registry workspace quota {ws} {quota}` to count "
                "it afresh, keeping its quota")


def _verify_signatures(reg: Registry, snap: Snapshot, report: Report) -> None:
    """Every commit signed by the commit key of its time (trust/commit_signatures.py), and the data directory
    holding the private keys the ledger names as current (without them nothing can be committed)."""
    checked = signatures.check_history(reg.ledger.repo(), snap.commit_id)
    report.checked_commits = checked.signed + checked.before_signing + (0 if checked.ok else 1)
    if not checked.ok:
        report.problems.append(f"signatures: {checked.problem} (the first such commit; nothing after it was checked)")
    if checked.before_signing:
        report.notes.append(f"{checked.before_signing} commits from before the ledger adopted signing keys are "
                            "unsigned")
    record = snap.get(layout.SIGNING_KEYS, model.SigningKeys)
    if reg.primary is not None or record is None:  # a read replica commits nothing: it holds no keys
        return
    for purpose in ("commit", "checkpoint"):
        try:
            reg.keys.private(purpose, signing.current(record, purpose).public_key)
        except signing.KeyMissing as exc:
            report.problems.append(exc.message)


# --- moving blobs --------------------------------------------------------------------------------


def migrate_blobs(settings: Settings, to: str, *, jobs: int = 4, delete_local: bool = False,
                  progress: bool = True) -> Migrated:
    """Send the data directory's blobs to the bucket ``to`` (blobs/migrate.py), then record it there."""
    from .blobs import FileBlobStore, bucket_store, record_location, recorded_location
    from .blobs.migrate import migrate

    target, recorded = bucket_store(settings, to), recorded_location(settings)
    if recorded and recorded != str(target.location):
        raise RegistryError(f"This registry's files are in {recorded} already; they can't move to {to} from here.")
    ledger = Ledger.open(settings.ledger_path)  # (replays the journal a crash left)
    with ledger.write_lock(timeout=300):
        ledger.checkpoint()  # small files its records carry are whole at their names from here on
    snap = ledger.snapshot()
    metadata = {f.metadata_sha256 for ws in snap.names("workspaces") for package in list_packages(snap, ws)
                for v in snap.records(layout.versions_dir(ws, package.name), model.Version) for f in v.files}
    done = migrate(FileBlobStore(settings.blobs_path), target, metadata, jobs=jobs, delete_local=delete_local,
                   progress=progress)
    if not done.problems:
        record_location(settings, str(target.location))
    return done
