"""The registry's signing keys: Ed25519, private halves in the data directory (`keys/`, mode 0600,
never in the ledger), public halves with their validity in the ledger (`signing-keys.json`).

Two keys are current at a time: the *commit* key signs every ledger commit (an SSH signature in its
`gpgsig` header, see sshsig.py), the *checkpoint* key signs checkpoints (checkpoints.py). One key
per protocol, so that no signature made for one can be replayed as the other. A commit is signed
by the commit key its parent's record names as current (the first commit, and the one that adopts
signing on an older ledger, by the one they introduce): a rotation is signed by the old key, and
everything after it by the new one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import msgspec
import pygit2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .. import layout
from ..errors import RegistryError
from ..fsync import fsync_path, make_dirs, write_file
from ..ledger import codec, lookup
from ..model import KeyPurpose, Provenance, SigningKey, SigningKeys
from . import checkpoints as checkpoint
from . import sshsig


class KeyMissing(RegistryError):
    """The private key the ledger names as current is not in the data directory."""

    status = 503


class KeyStore:
    """Private keys, one file each, named by purpose and a digest of the public key."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: dict[str, tuple[Ed25519PrivateKey, bytes]] = {}
        self._lock = threading.Lock()

    def file(self, purpose: KeyPurpose, public_key: str) -> Path:
        return self.path / f"{purpose}-{hashlib.sha256(public_key.encode()).hexdigest()[:16]}.key"

    def create(self, purpose: KeyPurpose) -> str:
        """A new key, durable (data and name) before anything can name it; its public line."""
        key = Ed25519PrivateKey.generate()
        public = sshsig.public_line(key.public_key())
        make_dirs(self.path)
        os.chmod(self.path, 0o700)
        write_file(self.file(purpose, public), sshsig.private_pem(key), 0o600, sync=True)
        fsync_path(self.path)
        return public

    def private(self, purpose: KeyPurpose, public_key: str) -> tuple[Ed25519PrivateKey, bytes]:
        """(the private key, its public wire blob) for the public key the ledger names."""
        hit = self._cache.get(public_key)
        if hit is not None:
            return hit
        path = self.file(purpose, public_key)
        try:
            key = sshsig.load_private(path.read_bytes())
        except FileNotFoundError:
            raise KeyMissing(f"The ledger's {purpose} signing key ({public_key[:40]}...) is not in {self.path}: "
                             "restore that directory from a backup. Nothing is committed unsigned.") from None
        except ValueError as exc:
            raise KeyMissing(f"{path} is not an Ed25519 OpenSSH private key ({exc}): restore it from a "
                             "backup.") from None
        if sshsig.public_line(key.public_key()) != public_key:
            raise KeyMissing(f"{path} holds another key than the one the ledger names as current: it was replaced. "
                             "Restore the original from a backup.")
        with self._lock:
            self._cache[public_key] = (key, sshsig.public_blob(key.public_key()))
        return self._cache[public_key]

    def discard_except(self, keep: set[tuple[KeyPurpose, str]]) -> None:
        """Delete the private keys but those ``keep`` names as (purpose, public key): the ones a
        rotation retired (no one may sign with them), and any a failed rotation left."""
        wanted = {self.file(p, k).name for p, k in keep}
        for path in self.path.glob("*.key"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)
        fsync_path(self.path)


def current(record: SigningKeys, purpose: KeyPurpose) -> SigningKey:
    """The key of ``purpose`` that signs now (the record always has one of each)."""
    return next(k for k in reversed(record.keys) if k.purpose == purpose and k.valid_until is None)


def note_name(key: SigningKey) -> str:
    """A checkpoint key's note key name (the checkpoints' origin), which every checkpoint key has."""
    if key.note_name is None:  # (damage: `new_keys` and `rotated` always give one)
        raise RegistryError(f"Checkpoint key {key.fingerprint} has no note name: the ledger's signing-keys record is "
                            "damaged. The operator should run `registry verify`.", status=500)
    return key.note_name


def keys_in(repo: pygit2.Repository, tree: pygit2.Tree | None) -> SigningKeys | None:
    """The signing-keys record in a commit's tree (decoded once per blob, like every record)."""
    if tree is None:
        return None
    entry = lookup.entry(tree, layout.SIGNING_KEYS)
    if entry is None:
        return None
    hit = codec.cached(entry.id.raw, SigningKeys)
    if hit is not None:
        return hit
    try:
        data = repo[entry.id].read_raw()
        return codec.remember(entry.id.raw, SigningKeys, codec.decode(data, SigningKeys), len(data))
    except Exception:  # (a record that doesn't decode names no key: its commit answers for that)
        return None


def new_keys(store: KeyStore, principal: str, registry_uuid: str, provenance: Provenance) -> SigningKeys:
    """The first keys of a ledger (or of one that had none)."""
    return SigningKeys(principal=principal,
                       keys=[_new(store, "commit", provenance),
                             _new(store, "checkpoint", provenance, checkpoint.origin(registry_uuid))])


def rotated(store: KeyStore, record: SigningKeys, provenance: Provenance) -> SigningKeys:
    """The record with the current keys retired as of now and new ones current from now."""
    at = provenance.at
    old = [k if k.valid_until is not None else _replace(k, valid_until=at, retired=provenance) for k in record.keys]
    name = current(record, "checkpoint").note_name
    return SigningKeys(principal=record.principal, keys=[*old, _new(store, "commit", provenance),
                                                         _new(store, "checkpoint", provenance, name)])


def _new(store: KeyStore, purpose: KeyPurpose, provenance: Provenance, note_name: str | None = None) -> SigningKey:
    public = store.create(purpose)
    return SigningKey(purpose=purpose, public_key=public,
                      fingerprint=sshsig.fingerprint(sshsig.parse_public_line(public)),
                      valid_from=provenance.at.replace(microsecond=0), note_name=note_name, added=provenance)


def _replace(key: SigningKey, **changes) -> SigningKey:
    return msgspec.structs.replace(key, **changes)


def allowed_signers(record: SigningKeys) -> str:
    """The OpenSSH allowed_signers file for `git verify-commit` (gpg.ssh.allowedSignersFile): every
    commit key the ledger ever had, each valid only for its time."""
    lines = [sshsig.allowed_signer(record.principal, k.public_key, k.valid_from, k.valid_until)
             for k in record.keys if k.purpose == "commit"]
    return "\n".join(lines) + "\n"


def checkpoint_verifiers(record: SigningKeys, *, current_only: bool = False) -> list[checkpoint.Verifier]:
    keys = [current(record, "checkpoint")] if current_only else [k for k in record.keys if k.purpose == "checkpoint"]
    return [checkpoint.Verifier.parse(checkpoint.verifier_key(note_name(k), sshsig.parse_public_line(k.public_key)))
            for k in keys]


class LedgerSigner:
    """What the ledger calls to sign a commit: the commit key current in the parent's record."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        # The record a commit without one in its parent introduces (an older ledger adopting keys):
        # told, since a blob written in the same transaction can't be read back through libgit2.
        self.introducing: SigningKeys | None = None

    def __call__(self, repo: pygit2.Repository, parent: pygit2.Commit | None, tree: pygit2.Oid,
                 content: bytes) -> str | None:
        record = keys_in(repo, parent.tree if parent is not None else None)
        if record is None:
            record = self.introducing if parent is not None else keys_in(repo, repo[tree].peel(pygit2.Tree))
        if record is None:  # an older ledger whose keys are not adopted yet (Registry.open adopts them)
            return None
        key, blob = self.store.private("commit", current(record, "commit").public_key)
        return sshsig.sign(key, content, public=blob)
