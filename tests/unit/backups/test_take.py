"""`registry backup`'s taking: a chain of bundles that each hold only the commits since the one
before, the files new since, and a manifest signed so that a verifier needs only the ledger."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import msgspec
import pytest

from registry import identity, layout, operations
from registry.backups import manifest as mf
from registry.backups.take import backup
from registry.datadir import Registry
from registry.errors import RegistryError
from registry.model import SigningKeys
from registry.trust import keys as signing
from tests.support.helpers import make_wheel
from tests.support.world import WS, overwrite_blob, publish


def _publish(world, tmp_path, version: str) -> str:
    """A wheel of Acme.Utils published; its sha256."""
    (tmp_path / "dists").mkdir(exist_ok=True)
    wheel = make_wheel(tmp_path / "dists", "Acme.Utils", version)
    publish(world.reg, identity.operator(), wheel)
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_the_second_backup_holds_only_what_is_new(world, tmp_path):
    reg, dest = world.reg, tmp_path / "backup"
    first_sha = _publish(world, tmp_path, "1.0")
    one = backup(reg, dest)
    assert one.number == 1 and one.previous is None and one.blobs == 1
    new = {_publish(world, tmp_path, v) for v in ("1.1", "1.2")}
    two = backup(reg, dest)
    assert two.number == 2 and two.previous == one.head and two.head == reg.ledger.head() and two.commits == 2
    m = mf.latest(dest).manifest
    assert {b.sha256 for b in m.blobs if b.backup == 2} == new  # (only the new files)
    assert {b.sha256 for b in m.blobs if b.backup == 1} == {first_sha}
    assert [b.file for b in m.bundles] == ["bundles/000001.bundle", "bundles/000002.bundle"]
    # git's own view of the second bundle: it needs the first's head and brings the two new commits
    listed = subprocess.run(["git", "bundle", "list-heads", str(dest / m.bundles[1].file)], capture_output=True,
                            text=True, check=True).stdout
    assert listed.split()[0] == two.head
    head = dest / "bundles" / "000002.bundle"
    assert f"-{one.head}".encode() in head.read_bytes()[:400]  # (its prerequisite: the first backup's head)
    again = backup(reg, dest)
    assert again.number is None and not mf.manifest_path(dest, 3).exists()


def test_the_manifest_verifies_with_ssh_keygen_and_the_ledgers_public_key(world, tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    _publish(world, tmp_path, "1.0")
    backup(world.reg, tmp_path / "backup")
    record = world.reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    for_git = signing.allowed_signers(record)  # (`registry key list --allowed-signers`: for git's namespace)
    signers = tmp_path / "allowed_signers"
    manifest, sig = mf.manifest_path(tmp_path / "backup", 1), mf.signature_path(tmp_path / "backup", 1)

    def check(data: bytes, namespace: str = mf.NAMESPACE) -> int:
        signers.write_text(for_git.replace('namespaces="git"', f'namespaces="{namespace}"'))
        return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", record.principal, "-n",
                               namespace, "-s", str(sig)], input=data, capture_output=True).returncode

    assert check(manifest.read_bytes()) == 0
    assert check(manifest.read_bytes().replace(b'"number": 1', b'"number": 2')) != 0
    assert check(manifest.read_bytes(), "git") != 0  # (never taken for a commit's signature)


def test_a_corrupt_or_missing_file_in_the_store_is_refused_by_name(world, tmp_path):
    sha = _publish(world, tmp_path, "1.0")
    overwrite_blob(world.reg, sha, b"rotten")
    with pytest.raises(RegistryError, match=rf"acme_utils-1.0-py3-none-any.whl: blob {sha} .*is corrupt"):
        backup(world.reg, tmp_path / "backup")
    world.reg.blobs.delete(sha)
    with pytest.raises(RegistryError, match=rf"acme_utils-1.0-py3-none-any.whl: blob {sha} is missing"):
        backup(world.reg, tmp_path / "backup")
    assert mf.latest(tmp_path / "backup") is None  # (no manifest: nothing a restore would take)


def test_a_directory_of_another_registrys_backups_is_refused(world, tmp_path, settings):
    dest = tmp_path / "backup"
    backup(world.reg, dest)
    other = Registry.open(msgspec.structs.replace(settings, data=str(tmp_path / "other")), create=True)
    with pytest.raises(RegistryError, match="holds backups of another registry"):
        backup(other, dest)


def test_a_history_that_does_not_continue_the_last_backup_is_refused(world, tmp_path):
    dest = tmp_path / "backup"
    _publish(world, tmp_path, "1.0")
    backup(world.reg, dest)
    found = mf.latest(dest)
    # the last backup names a commit this ledger never had (as after restoring an older copy and going on)
    forged = msgspec.structs.replace(found.manifest, head="0" * 40)
    mf.manifest_path(dest, 1).write_bytes(mf.encode(forged))
    operations.create_user(world.reg, identity.operator(), "cli", "new@acme.test")
    with pytest.raises(RegistryError, match="does not descend from"):
        backup(world.reg, dest)
    assert WS  # (the world's workspace is what was backed up)
