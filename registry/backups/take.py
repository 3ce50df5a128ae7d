"""`registry backup DEST`: the commits since the last backup into DEST as a git bundle, every file
they name that DEST lacks, and a signed manifest (manifest.py) written last. DEST is a directory or
s3://BUCKET/PREFIX (places.py): the same files, made here and put there.

Safe while the server runs: everything is read at one commit, the head when the backup starts. A
branch moves only once its commit is durable (ledger/journal.py), and every file a commit names is
in the store before its commit is (blobs are immutable and named by their content), so what is read
is committed history, never a state a crash could take back. The bundle is made in a scratch
repository that borrows the ledger's objects (git's alternates) and names that commit: the live
ledger gets no ref and no write, and packs are not folded away under git meanwhile.

Which files: every file the head references (its core metadata too, a cache, when it is there and
whole), and every file a commit since the last backup published that the store still holds (one
deleted since is still served at the commits it was there, until gc frees it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pygit2
from pygit2.enums import SortMode

from .. import layout
from ..audit import Action, T, action
from ..datadir import Registry, ledger_info
from ..errors import RegistryError
from ..ledger import Commit
from ..maintenance import referenced_files
from ..model import SigningKeys
from ..trust import keys as signing
from ..trust import sshsig
from . import manifest as mf
from . import places

CHUNK = 2**20


@dataclass
class Taken:
    number: int | None  # None: nothing new since the last backup
    head: str
    previous: str | None
    commits: int = 0
    blobs: int = 0
    bytes: int = 0
    bundle_bytes: int = 0


def backup(reg: Registry, dest: str | Path) -> Taken:
    """A backup into ``dest``: a directory, or s3://BUCKET/PREFIX (places.py)."""
    if reg.primary is not None:
        raise RegistryError(f"This data directory is a read replica of {reg.primary}: it holds no signing keys to "
                            "sign a backup with. Back up the primary.")
    place = places.place(str(dest), timeout=reg.settings.blobs_timeout, create=True)
    with place.held():
        return _take(reg, place, str(dest))


def _take(reg: Registry, place: places.Place, dest: str) -> Taken:
    last = place.latest()
    head = reg.ledger.head()
    snap = reg.snapshot_at(head)
    registry_id = ledger_info(snap).registry
    previous = last.manifest.head if last else None
    if last is not None:
        _continues(reg, dest, last.manifest, head, registry_id)
        if previous == head:
            return Taken(None, head, previous)
    number = last.manifest.number + 1 if last else 1
    wanted, commits = _wanted(reg, snap, previous)
    have = {b.sha256 for b in last.manifest.blobs} if last else set()
    there = place.present()
    taken = Taken(number, head, previous, commits=commits)
    added = []
    for sha, (required, where) in sorted(wanted.items()):
        if sha in have:
            continue
        size = there.get(sha)  # (sent by a backup cut short before its manifest: not sent again)
        if size is None:
            size = _copy(reg, sha, place, required, where)
            if size is None:
                continue
            taken.blobs += 1
            taken.bytes += size
        added.append(mf.Blob(sha, size, number))
    bundle = _bundle(reg, place, number, head, previous, commits)
    taken.bundle_bytes = bundle.size
    place.durable()  # (every file and the bundle, names included, before a manifest names them)
    record = snap.get(layout.SIGNING_KEYS, SigningKeys)
    if record is None:
        raise RegistryError("The ledger has no signing keys yet: start the registry once (it adopts them), then "
                            "back it up.")
    key = signing.current(record, "commit")
    made = mf.Manifest(format=mf.FORMAT, registry=registry_id, number=number, head=head, previous=previous,
                       created=datetime.now(UTC).replace(microsecond=0), key=key.fingerprint,
                       bundles=[*(last.manifest.bundles if last else []), bundle],
                       blobs=[*(last.manifest.blobs if last else []), *added])
    raw = mf.encode(made)
    private, blob = reg.keys.private("commit", key.public_key)
    place.put_manifest(number, raw, sshsig.sign(private, raw, mf.NAMESPACE, public=blob).encode())
    return taken


def _continues(reg: Registry, dest: str, last: mf.Manifest, head: str, registry_id: str) -> None:
    """Refuse a DEST holding another registry's backups, or a history this ledger doesn't continue."""
    if last.registry != registry_id:
        raise RegistryError(f"{dest} holds backups of another registry ({last.registry}; this one is {registry_id}): "
                            "back up into a new directory.")
    repo = reg.ledger.repo()
    try:
        continues = head == last.head or repo.descendant_of(head, last.head)
    except (KeyError, ValueError, pygit2.GitError):
        continues = False
    if not continues:
        raise RegistryError(f"The last backup in {dest} (number {last.number}) is of commit {last.head}, which this "
                            f"ledger's head {head} does not descend from: its history was rewritten or restored from "
                            "an older point. Back up into a new directory.")


def _wanted(reg: Registry, snap, previous: str | None) -> tuple[dict[str, tuple[bool, str]], int]:
    """sha256 → (whether the backup must have it, where it is named) of every file to back up, and
    how many commits there are since ``previous``."""
    wanted: dict[str, tuple[bool, str]] = {}
    for sha, (where, metadata) in referenced_files(snap).items():
        wanted[sha] = (True, where)
        if metadata:
            wanted.setdefault(metadata, (False, f"{where} (core metadata)"))
    repo = reg.ledger.repo()
    walker = repo.walk(snap.commit_id, SortMode.TOPOLOGICAL)
    if previous:
        walker.hide(previous)
    commits = 0
    for c in walker:
        commits += 1
        commit = Commit.of(c)
        if action(commit) in (Action.PUBLISH, Action.FETCH_UPSTREAM):
            for sha in commit.trailers_named(T.SHA256):
                wanted.setdefault(sha, (False, f"published by commit {commit.id}"))
    return wanted, commits


def _copy(reg: Registry, sha: str, place: places.Place, required: bool, where: str) -> int | None:
    """Copy one file into the backup, checking it is what its name says; its size, or None for one
    the backup can do without that is gone (freed since) or torn (a cache)."""
    temp = place.scratch / f"{sha}.{os.getpid()}.tmp"
    try:
        source = reg.blobs.open(sha)
    except FileNotFoundError:
        if required:
            raise RegistryError(f"{where}: blob {sha} is missing from the registry's store, so it can't be backed up. "
                                "Run `registry verify` and restore the file first.") from None
        return None
    digest, size = hashlib.sha256(), 0
    with source, open(temp, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if digest.hexdigest() != sha:
        temp.unlink()
        if required:
            raise RegistryError(f"{where}: blob {sha} in the registry's store is corrupt (its content hashes to "
                                f"{digest.hexdigest()}), so it can't be backed up. Run `registry verify`.")
        return None
    place.put(places.blob_name(sha), temp)
    return size


def _bundle(reg: Registry, place: places.Place, number: int, head: str, previous: str | None,
            commits: int) -> mf.Bundle:
    """The commits after ``previous`` up to ``head``, as a bundle made in a scratch repository that
    borrows the ledger's objects."""
    git = shutil.which("git")
    if git is None:
        raise RegistryError("git is not installed: a backup's ledger is a git bundle. Install git.")
    name = mf.bundle_name(number)
    temp = (place.scratch / f"{number:06d}.bundle.tmp").resolve()
    with tempfile.TemporaryDirectory(prefix="registry-backup-") as tmp:
        scratch = Path(tmp) / "scratch.git"
        pygit2.init_repository(str(scratch), bare=True)
        (scratch / "objects" / "info" / "alternates").write_text(f"{reg.ledger.path.resolve() / 'objects'}\n")
        pygit2.Repository(str(scratch)).references.create("refs/heads/main", head, force=True)
        revs = f"{previous}..main" if previous else "main"
        with reg.ledger.repack_lock():  # (no pack folded away while git reads it)
            proc = subprocess.run([git, "-C", str(scratch), "bundle", "create", "-q", str(temp), revs],
                                  capture_output=True, text=True)
        if proc.returncode != 0:
            temp.unlink(missing_ok=True)
            raise RegistryError(f"git bundle failed: {proc.stderr.strip()}", status=500)
    digest = hashlib.sha256()
    with open(temp, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    size = temp.stat().st_size
    place.put(name, temp)
    return mf.Bundle(file=name, sha256=digest.hexdigest(), size=size, head=head, previous=previous, commits=commits)
