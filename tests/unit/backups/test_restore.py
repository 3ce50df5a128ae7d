"""`registry restore`: a data directory that is the same history, or a refusal that names what is
wrong and leaves nothing behind."""

from __future__ import annotations

import hashlib
import re

import msgspec
import pytest

from registry import identity, layout, maintenance, operations
from registry.backups import manifest as mf
from registry.backups.restore import restore
from registry.backups.take import backup
from registry.config import Settings
from registry.datadir import Registry
from registry.errors import RegistryError
from registry.model import SigningKeys
from registry.reads import Reader
from registry.trust import keys as signing
from registry.trust import sshsig
from tests.support.helpers import make_sdist, make_wheel
from tests.support.world import WS, publish


@pytest.fixture
def backed_up(world, tmp_path):
    """Two backups in tmp_path/backup: 1.0 (wheel and sdist), then 1.1; the heads of each."""
    dists = tmp_path / "dists"
    dists.mkdir()
    op = identity.operator()
    for path in (make_wheel(dists, "Acme.Utils", "1.0"), make_sdist(dists, "Acme.Utils", "1.0")):
        publish(world.reg, op, path)
    first = backup(world.reg, tmp_path / "backup").head
    publish(world.reg, op, make_wheel(dists, "Acme.Utils", "1.1"))
    second = backup(world.reg, tmp_path / "backup").head
    return tmp_path / "backup", first, second


def _into(settings: Settings, tmp_path, name: str = "restored") -> Settings:
    return msgspec.structs.replace(settings, data=str(tmp_path / name))


def test_a_restore_is_the_same_history_with_every_file_and_can_commit(world, backed_up, tmp_path, settings):
    src, _, head = backed_up
    into = _into(settings, tmp_path)
    done = restore(src, into, keys=settings.keys_path)
    assert done.head == head == world.reg.ledger.head() and done.number == 2
    reg = Registry.open(into)
    assert reg.ledger.head() == head  # (the original commit id: a witness sees the same history)
    assert [c.id for c in reg.ledger.walk()] == [c.id for c in world.reg.ledger.walk()]
    assert maintenance.verify(reg).ok
    read = Reader(reg, identity.operator())
    assert sorted(v.version for v in read.versions(WS, "acme-utils")) == ["1.0", "1.1"]
    for sha in maintenance.referenced_files(reg.snapshot()):
        assert hashlib.sha256(reg.blobs.read(sha)).hexdigest() == sha
    operations.create_user(reg, identity.operator(), "cli", "after@acme.test")  # (its keys sign on)
    assert maintenance.verify(reg).ok


def test_at_an_older_commit_restores_that_state(backed_up, tmp_path, settings):
    src, first, _ = backed_up
    into = _into(settings, tmp_path)
    assert restore(src, into, at=first[:10], keys=settings.keys_path).head == first
    read = Reader(Registry.open(into), identity.operator())
    assert [v.version for v in read.versions(WS, "acme-utils")] == ["1.0"]


@pytest.mark.parametrize("at", ["0" * 40, "nonsense", "main~99"])
def test_at_a_commit_outside_the_history_is_refused(backed_up, tmp_path, settings, at):
    into = _into(settings, tmp_path)
    with pytest.raises(RegistryError, match=f"--at {at}: no such commit"):
        restore(backed_up[0], into, at=at, keys=settings.keys_path)
    assert not into.data_path.exists() and not (tmp_path / "restored.restoring").exists()


@pytest.mark.parametrize("damage", ["flipped", "truncated", "emptied", "missing"])
def test_a_damaged_file_in_the_backup_is_named_and_nothing_is_left(backed_up, tmp_path, settings, damage):
    src = backed_up[0]
    victim = next((src / "blobs" / "sha256").glob("*/*"))
    data = victim.read_bytes()
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes({"flipped": bytes([data[0] ^ 1]) + data[1:], "truncated": data[:-1], "emptied": b""}[damage])
    into = _into(settings, tmp_path)
    with pytest.raises(RegistryError, match=rf"{victim} is (corrupt|missing)"):
        restore(src, into, keys=settings.keys_path)
    assert not into.data_path.exists() and not (tmp_path / "restored.restoring").exists()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "missing", "swapped"])
def test_a_damaged_or_missing_bundle_is_named(backed_up, tmp_path, settings, damage):
    src = backed_up[0]
    first, second = src / "bundles" / "000001.bundle", src / "bundles" / "000002.bundle"
    data = second.read_bytes()
    if damage == "missing":
        second.unlink()
    elif damage == "swapped":
        second.write_bytes(first.read_bytes())
    else:
        second.write_bytes(data[:-10] if damage == "truncated" else data[:-1] + bytes([data[-1] ^ 1]))
    into = _into(settings, tmp_path)
    with pytest.raises(RegistryError, match=rf"{second} (is missing|has \d+ bytes|is corrupt)"):
        restore(src, into, keys=settings.keys_path)
    assert not into.data_path.exists()


def test_an_altered_manifest_or_its_signature_is_refused(backed_up, tmp_path, settings):
    src = backed_up[0]
    manifest = mf.manifest_path(src, 2)
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"number": 2', b'"number": 2 '))
    with pytest.raises(RegistryError, match="does not verify"):
        restore(src, _into(settings, tmp_path), keys=settings.keys_path)
    manifest.write_bytes(original)
    mf.signature_path(src, 2).unlink()
    with pytest.raises(RegistryError, match="000002.sig is missing"):
        restore(src, _into(settings, tmp_path), keys=settings.keys_path)


def test_a_data_directory_that_is_not_empty_is_refused(backed_up, tmp_path, settings):
    into = _into(settings, tmp_path)
    into.data_path.mkdir()
    (into.data_path / "something").write_text("mine")
    with pytest.raises(RegistryError, match="is not empty"):
        restore(backed_up[0], into, keys=settings.keys_path)
    assert (into.data_path / "something").read_text() == "mine"
    empty = _into(settings, tmp_path, "empty")
    empty.data_path.mkdir()
    assert restore(backed_up[0], empty, keys=settings.keys_path).head == backed_up[2]


def test_keys_that_are_not_the_ledgers_are_refused(backed_up, tmp_path, settings):
    stranger = Registry.open(_into(settings, tmp_path, "stranger"), create=True)
    with pytest.raises(RegistryError, match="signing key .* is not in"):
        restore(backed_up[0], _into(settings, tmp_path), keys=stranger.settings.keys_path)
    with pytest.raises(RegistryError, match="no \\*.key files"):
        restore(backed_up[0], _into(settings, tmp_path), keys=tmp_path / "nowhere")
    assert not (tmp_path / "restored").exists()


def test_no_backup_there_is_refused(tmp_path, settings):
    with pytest.raises(RegistryError, match="No backup in"):
        restore(tmp_path, _into(settings, tmp_path))


def _commit_key(reg: Registry) -> tuple[str, str]:
    """(fingerprint, public key line) of a registry's current commit key, as `registry key list` shows it."""
    key = signing.current(reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys), "commit")
    return key.fingerprint, key.public_key


def test_the_expected_key_is_checked_and_the_key_trusted_is_said(world, backed_up, tmp_path, settings):
    fingerprint = _commit_key(world.reg)[0]
    done = restore(backed_up[0], _into(settings, tmp_path), expect_key=fingerprint)
    assert done.key == fingerprint and done.head == backed_up[2] and done.keys == 0
    assert restore(backed_up[0], _into(settings, tmp_path, "again"), keys=settings.keys_path).key == fingerprint


@pytest.fixture
def stranger(settings, tmp_path) -> Registry:
    """Another registry, with its own signing keys."""
    return Registry.open(_into(settings, tmp_path, "stranger"), create=True)


@pytest.mark.parametrize("forgery", ["another registry's whole backup", "the manifest re-signed"])
def test_a_backup_signed_by_another_key_than_the_expected_is_refused(world, backed_up, tmp_path, settings, stranger,
                                                                     forgery):
    expected, found = _commit_key(world.reg)[0], _commit_key(stranger)[0]
    if forgery == "another registry's whole backup":
        src = tmp_path / "forged"
        backup(stranger, src)  # (a whole backup whose own ledger names its key: it vouches for itself)
        assert restore(src, _into(settings, tmp_path, "trusting")).key == found  # (said, for the operator)
        said = f"signed by commit key {re.escape(found)} .* not by {re.escape(expected)}, the key expected"
    else:
        src = backed_up[0]
        raw = mf.manifest_path(src, 2).read_bytes()
        private, blob = stranger.keys.private("commit", _commit_key(stranger)[1])
        mf.signature_path(src, 2).write_text(sshsig.sign(private, raw, mf.NAMESPACE, public=blob))
        said = f"signed by {re.escape(found)}, not by the ledger's commit key {re.escape(expected)}"
    into = _into(settings, tmp_path)
    with pytest.raises(RegistryError, match=said) as refused:
        restore(src, into, expect_key=expected)
    assert refused.value.status in (400, 403)
    assert not into.data_path.exists() and not (tmp_path / "restored.restoring").exists()


@pytest.mark.parametrize("given", ["", "SHA256:", "SHA256:tooshort", "sha256:" + "A" * 43, "MD5:aa:bb:cc",
                                   "SHA256:" + "A" * 42 + "!", "SHA256:" + "A" * 44, "A" * 43,
                                   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"])
def test_a_malformed_expected_key_is_refused_before_anything(backed_up, tmp_path, settings, given):
    into = _into(settings, tmp_path)
    with pytest.raises(RegistryError, match="is not a key fingerprint: give the commit key's as `registry key list`") \
            as refused:
        restore(backed_up[0], into, expect_key=given)
    assert refused.value.status == 400
    assert not into.data_path.exists() and not (tmp_path / "restored.restoring").exists()
