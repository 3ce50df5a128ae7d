"""`registry restore SRC --data DIR [--at COMMIT]`: a new data directory from a backup directory.

It is built beside DIR (`DIR.restoring`) and renamed into place only once whole, so DIR either does
not exist or holds a registry that checks: the latest manifest's bundles match their sha256 and
sizes and fetch in order (git checks each one's objects), its signature verifies by the commit key
the restored ledger itself records at that head, the branch is set to its head (or COMMIT, which must
be in its history), every file copied hashes to its name, every file the restored head references
is there, the signing keys given match the ones the ledger names, and `registry verify` finds
nothing. A refusal names the file and says what to do; nothing of DIR is left behind.

The commits are git's own, so the restored head is the original commit id: a witness that watched
the original accepts the restored registry as the same history.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pygit2

from .. import maintenance
from ..config import Settings
from ..datadir import Registry, ledger_info
from ..errors import Forbidden, Invalid, RegistryError
from ..fsync import fsync_all, fsync_path, make_dirs
from ..ledger import Ledger
from ..ledger.branch import BRANCH, REF
from ..model import SigningKeys
from ..trust import keys as signing
from ..trust import sshsig
from . import manifest as mf
from . import places

CHUNK = 2**20


FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


@dataclass
class Restored:
    head: str
    number: int  # of the manifest restored from
    key: str = ""  # the fingerprint of the commit key the manifest's signature was checked against
    blobs: int = 0
    bytes: int = 0
    keys: int = 0  # private keys copied in


def expected_key(text: str) -> str:
    """``--expect-key``'s fingerprint as `registry key list` prints it (`SHA256:` and 43 base64
    characters), else a refusal saying so."""
    if not FINGERPRINT.fullmatch(text.strip()):
        raise Invalid(f"--expect-key {text!r} is not a key fingerprint: give the commit key's as `registry key "
                      "list` prints it on the original registry (SHA256: and 43 characters, as ssh-keygen -l "
                      "shows).")
    return text.strip()


def restore(src: str | Path, settings: Settings, *, at: str | None = None, keys: Path | None = None,
            expect_key: str | None = None) -> Restored:
    """A new data directory from the backup in ``src`` (a directory or s3://BUCKET/PREFIX). With
    ``expect_key`` the manifest must be signed by that commit key, the one the ledger names at its
    head; otherwise by whichever key the backup's own ledger names (`Restored.key` says which)."""
    if expect_key is not None:
        expect_key = expected_key(expect_key)
    data = settings.data_path
    if data.exists() and (not data.is_dir() or any(data.iterdir())):
        raise RegistryError(f"{data} is not empty: a restore makes a new data directory and never writes over one. "
                            "Give --data a new (or empty) directory.")
    place = places.place(str(src), timeout=settings.blobs_timeout)  # (a bucket is asked before anything is made)
    found = place.latest()
    if found is None:
        raise RegistryError(f"No backup in {src} (no manifests/NNNNNN.json): give the directory or s3:// location "
                            "`registry backup` wrote.")
    building = data.with_name(data.name + ".restoring")
    if building.exists():
        shutil.rmtree(building)  # (what a restore cut short left: never a registry, since it is renamed only whole)
    here = msgspec.structs.replace(settings, data=str(building), blobs="")
    try:
        done = _restore(place, found, here, at, keys, expect_key)
        if data.exists():
            data.rmdir()
        os.replace(building, data)
        fsync_path(data.parent)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return done


def _restore(place: places.Place, found: mf.Found, settings: Settings, at: str | None, keys: Path | None,
             expect_key: str | None) -> Restored:
    m = found.manifest
    make_dirs(settings.data_path)
    scratch = settings.data_path / "backup-download"  # (a bucket's bundles, fetched to be checked: removed below)
    scratch.mkdir()
    local = [_check_file(place, scratch, bundle.file, bundle.size, bundle.sha256, "bundle") for bundle in m.bundles]
    path = settings.ledger_path
    pygit2.init_repository(str(path), bare=True, initial_head=BRANCH)
    for bundle, file in zip(m.bundles, local, strict=True):
        _fetch(path, file, place.where(bundle.file))
    shutil.rmtree(scratch)
    repo = pygit2.Repository(str(path))
    if str(repo.references[REF].target) != m.head:
        raise RegistryError(f"The bundles of {found.where} end at {repo.references[REF].target}, not at its head "
                            f"{m.head}: the backup was altered.")
    snap_keys, key = _check_signature(repo, found, expect_key)
    head = _target(repo, m, at)
    repo.references.create(REF, head, force=True)
    ledger = Ledger(path)
    ledger._journal.path.touch()  # (what Ledger.create leaves: an empty journal)
    info = ledger_info(ledger.snapshot())
    if info.registry != m.registry:
        raise RegistryError(f"{found.where} is of registry {m.registry}, but its bundles hold {info.registry}: the "
                            "backup was altered.")
    done = Restored(head=head, number=m.number, key=key)
    _copy_blobs(place, m, settings.blobs_path, done)
    _referenced_present(ledger, m, head)
    done.keys = _keys(keys, settings, snap_keys)
    fsync_all([path, path / "objects", path / "objects" / "pack", path / "refs" / "heads", settings.data_path])
    _verified(settings)
    return done


def _check_file(place: places.Place, scratch: Path, name: str, size: int, sha256: str, what: str) -> Path:
    """The file ``name`` of the backup, here (fetched into ``scratch`` from a bucket), checked whole."""
    where = place.where(name)
    try:
        path = place.fetch(name, scratch)
    except FileNotFoundError:
        raise RegistryError(f"{where} is missing: the backup's {what} can't be restored without it. Copy the whole "
                            "backup back.") from None
    actual = path.stat().st_size
    if actual != size:
        raise RegistryError(f"{where} has {actual} bytes, the manifest says {size}: it is truncated or altered. Copy "
                            "it again from where the backup was kept.")
    digest = _sha256(path)
    if digest != sha256:
        raise RegistryError(f"{where} is corrupt: it hashes to {digest}, the manifest says {sha256}. Copy it again "
                            "from where the backup was kept.")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(ledger: Path, file: Path, where: str) -> None:
    git = shutil.which("git")
    if git is None:
        raise RegistryError("git is not installed: a backup's ledger is a git bundle. Install git.")
    proc = subprocess.run([git, "-C", str(ledger), "fetch", "-q", "--no-tags", "--no-write-fetch-head",
                           str(file.resolve()), f"+{REF}:{REF}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RegistryError(f"{where} could not be fetched into the ledger ({proc.stderr.strip()}): restore from a "
                            "whole backup.")


def _check_signature(repo: pygit2.Repository, found: mf.Found, expect_key: str | None) -> tuple[SigningKeys, str]:
    """The manifest is signed by the commit key its own head's ledger names as current, and that is
    the key the operator expects if they named one (else the backup vouches for itself: its
    fingerprint is returned, for the operator to compare)."""
    head = repo[found.manifest.head].peel(pygit2.Commit)
    record = signing.keys_in(repo, head.tree)
    if record is None:
        raise RegistryError(f"The ledger at {found.manifest.head} has no signing keys: {found.where} can't be checked.")
    named = signing.current(record, "commit")
    try:
        key = sshsig.verify(found.signature, found.raw, mf.NAMESPACE)
    except sshsig.BadSignature as exc:
        raise RegistryError(f"{found.signature_where} does not verify {found.where} ({exc}): the manifest was "
                            "altered.") from None
    if sshsig.public_line(key) != named.public_key:
        raise RegistryError(f"{found.signature_where} is signed by {sshsig.fingerprint(key)}, not by the ledger's "
                            f"commit key {named.fingerprint}: the manifest is not this registry's.")
    if expect_key is not None and named.fingerprint != expect_key:
        raise Forbidden(f"The backup is signed by commit key {named.fingerprint} (the one its ledger names at "
                        f"{found.manifest.head}), not by {expect_key}, the key expected: it is not the registry you "
                        "named, or it was re-signed. Nothing was restored. If the original rotated its keys since "
                        "this backup, `registry key list` on it shows when each commit key was current: name the "
                        "one current when the backup was taken.")
    return record, named.fingerprint


def _target(repo: pygit2.Repository, m: mf.Manifest, at: str | None) -> str:
    if at is None:
        return m.head
    try:
        commit = str(repo.revparse_single(at).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError):
        commit = None
    if commit is None or not (commit == m.head or repo.descendant_of(m.head, commit)):
        raise RegistryError(f"--at {at}: no such commit in the backup's history (up to {m.head}). `registry log` on "
                            "the original, or `git log` on the ledger, lists them.")
    return commit


def _copy_blobs(place: places.Place, m: mf.Manifest, root: Path, done: Restored) -> None:
    """Every file the manifest lists, each checked against its name and size as it is copied."""
    bad = []
    written = []
    make_dirs(root / "sha256")
    for b in m.blobs:
        source, target = place.where(places.blob_name(b.sha256)), mf.blob_path(root, b.sha256)
        target.parent.mkdir(exist_ok=True)
        digest, size = hashlib.sha256(), 0
        try:
            with place.open(places.blob_name(b.sha256)) as fh, open(target, "wb") as out:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            bad.append(f"{source} is missing")
            continue
        if digest.hexdigest() != b.sha256 or size != b.size:
            target.unlink()
            bad.append(f"{source} is corrupt: {size} bytes hashing to {digest.hexdigest()} (the manifest says "
                       f"{b.size} bytes)")
            continue
        written.append(target)
        done.blobs += 1
        done.bytes += size
    if bad:
        raise RegistryError("the backup's files are not whole, so the restore stopped:\n  " + "\n  ".join(bad)
                            + "\nCopy them again from where the backup was kept, or restore from an older copy.")
    fsync_all([*written, *{p.parent for p in written}, root / "sha256"])


def _referenced_present(ledger: Ledger, m: mf.Manifest, head: str) -> None:
    """Every distribution file the restored head references came with the backup."""
    listed = {b.sha256 for b in m.blobs}
    files = maintenance.referenced_files(ledger.snapshot_at(head))
    lacking = [f"{where}: blob {sha}" for sha, (where, _) in files.items() if sha not in listed]
    if lacking:
        raise RegistryError("the backup lacks files its history references:\n  " + "\n  ".join(lacking[:20])
                            + ("\n  ..." if len(lacking) > 20 else "") + "\nBack up again from the registry.")


def _keys(keys: Path | None, settings: Settings, record: SigningKeys) -> int:
    """The private keys, from where they were kept apart from the backup (the data directory's
    keys/), checked against those the ledger names as current: without them nothing can be committed."""
    if keys is None:
        return 0
    files = sorted(keys.glob("*.key")) if keys.is_dir() else []
    if not files:
        raise RegistryError(f"--keys {keys}: no *.key files there. Give the copy of the data directory's keys/.")
    make_dirs(settings.keys_path)
    os.chmod(settings.keys_path, 0o700)
    for f in files:
        target = settings.keys_path / f.name
        shutil.copyfile(f, target)
        os.chmod(target, 0o600)
    fsync_all([*(settings.keys_path / f.name for f in files), settings.keys_path])
    store = signing.KeyStore(settings.keys_path)
    for purpose in ("commit", "checkpoint"):
        try:
            store.private(purpose, signing.current(record, purpose).public_key)
        except signing.KeyMissing as exc:
            raise RegistryError(f"--keys {keys}: {exc.message}") from None
    return len(files)


def _verified(settings: Settings) -> None:
    """`registry verify` on the result: clean, or the restore is refused with what it found."""
    reg = Registry.open(settings)
    try:
        reg.catch_up_history()  # (the past, `@<commit>`, answers at once)
        report = maintenance.verify(reg)
    finally:
        reg.history.close()
    # (restored with --no-keys: the keys' absence is what was asked for, said by the command)
    problems = [p for p in report.problems if not (p.startswith("The ledger's ") and "signing key" in p)] \
        if not settings.keys_path.exists() else report.problems
    if problems:
        raise RegistryError("`registry verify` on the restored data directory found problems, so the restore "
                            "stopped:\n  " + "\n  ".join(problems))

