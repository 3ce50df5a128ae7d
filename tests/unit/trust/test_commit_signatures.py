"""Signed commits: every ledger commit carries an SSH signature that stock git accepts, by the key
of its time; rotation, adoption by an older ledger, and `registry verify` on what isn't signed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pygit2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import identity, layout, maintenance, operations
from registry.cli import main as cli_main
from registry.config import Settings
from registry.datadir import Registry, first_commit
from registry.ledger import Ledger, with_signature
from registry.model import SigningKeys
from registry.trust import keys as signing
from registry.trust import sshsig
from tests.support.helpers import free_port
from tests.support.world import WS, publish

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def allowed_signers(reg: Registry, tmp_path) -> str:
    path = tmp_path / "allowed_signers"
    path.write_text(signing.allowed_signers(reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)))
    return str(path)


def git(reg: Registry, allowed: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([GIT, "-C", str(reg.ledger.path), "-c", "gpg.format=ssh",
                           "-c", f"gpg.ssh.allowedSignersFile={allowed}", *args], capture_output=True, text=True)


def every_commit(reg: Registry) -> list[str]:
    return [c.id for c in reg.ledger.walk()]


def test_every_commit_is_signed_and_stock_git_verifies_each(world, dists, tmp_path):
    reg = world.reg
    publish(reg, identity.operator(), dists[("Acme.Utils", "1.0.0")][1])
    operations.yank(reg, identity.operator(), "cli", WS, "acme-utils", "1.0.0", "bad")
    allowed = allowed_signers(reg, tmp_path)
    commits = every_commit(reg)
    assert len(commits) > 20
    for commit in commits:  # the first commit included
        proc = git(reg, allowed, "verify-commit", commit)
        assert proc.returncode == 0 and 'Good "git" signature for registry@localhost' in proc.stderr, proc.stderr
    marks = git(reg, allowed, "log", "--format=%G?", "main").stdout.split()
    assert marks == ["G"] * len(commits)
    shown = git(reg, allowed, "log", "--show-signature", "-1").stdout
    assert "Good \"git\" signature" in shown
    assert maintenance.verify(reg).ok and maintenance.verify(reg).checked_commits == len(commits)


def test_our_signature_header_is_gits_and_ssh_keygen_verifies_it(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    key = Ed25519PrivateKey.generate()
    sig = pygit2.Signature("registry", "registry@localhost", 1_800_000_000, 0)
    tree = repo.TreeBuilder().write()
    content = repo.create_commit_string(sig, sig, "a commit\n\nAction: init\n", tree, []).encode()
    armoured = sshsig.sign(key, content)
    ours = with_signature(content, armoured)
    theirs = repo.create_commit_with_signature(content.decode(), armoured.rstrip("\n"), "gpgsig")
    assert repo.odb.write(pygit2.enums.ObjectType.COMMIT, ours) == theirs
    signature, payload = repo[theirs].gpg_signature
    assert payload == content and sshsig.verify(signature,
                                                payload).public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(sshsig.BadSignature):
        sshsig.verify(signature, payload.replace(b"a commit", b"another commit"))
    with pytest.raises(sshsig.BadSignature):
        sshsig.verify(sshsig.sign(key, content, namespace="file"), content)
    if shutil.which("ssh-keygen"):
        (tmp_path / "sig").write_text(armoured)
        (tmp_path / "allowed").write_text(f'ledger namespaces="git" {sshsig.public_line(key.public_key())}\n')
        proc = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "ledger", "-n",
                               "git",
                               "-s", str(tmp_path / "sig")], input=content, capture_output=True)
        assert proc.returncode == 0, proc.stderr


def test_keys_live_in_the_data_directory_only(reg):
    keys = reg.settings.keys_path
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    files = sorted(keys.iterdir())
    assert [f.name.split("-")[0] for f in files] == ["checkpoint", "commit"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    repo = reg.ledger.repo()
    for oid in repo.odb:  # nothing secret in any object of the ledger
        assert b"PRIVATE KEY" not in repo.odb.read(oid)[1]
    record = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    assert [k.purpose for k in record.keys] == ["commit", "checkpoint"]
    assert all(k.public_key.startswith("ssh-ed25519 ") and k.valid_until is None for k in record.keys)


def test_rotation_is_signed_by_the_old_key_and_git_accepts_each_key_in_its_time(world, tmp_path, capsys):
    reg = world.reg
    before = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    old = signing.current(before, "commit")
    assert cli_main(["--data", str(reg.settings.data_path), "key", "rotate"]) == 0
    assert "rotated the signing keys" in capsys.readouterr().out
    operations.create_user(reg, identity.operator(), "cli", "after@acme.test")
    after = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    new = signing.current(after, "commit")
    assert new.public_key != old.public_key
    retired = next(k for k in after.keys if k.public_key == old.public_key)
    assert retired.valid_until == new.valid_from and retired.retired is not None
    repo = reg.ledger.repo()
    head = repo[reg.ledger.head()]
    rotation = head.parents[0]
    assert sshsig.public_line(sshsig.verify(*rotation.gpg_signature)) == old.public_key
    assert sshsig.public_line(sshsig.verify(*head.gpg_signature)) == new.public_key
    assert rotation.committer.time == int(new.valid_from.timestamp())
    assert not reg.keys.file("commit", old.public_key).exists()  # the retired private key is gone
    allowed = allowed_signers(reg, tmp_path)
    assert "valid-before" in open(allowed).read()
    assert git(reg, allowed, "log", "--format=%G?", "main").stdout.split() == ["G"] * len(every_commit(reg))
    assert maintenance.verify(reg).ok


def test_verify_reports_the_first_unsigned_or_badly_signed_commit(world, capsys):
    reg = world.reg
    data = ["--data", str(reg.settings.data_path)]
    repo = reg.ledger.repo()
    tip = repo[reg.ledger.head()]
    sig = pygit2.Signature("vandal", "vandal@example.com")
    forged_key = Ed25519PrivateKey.generate()
    content = repo.create_commit_string(sig, sig, "forged\n", tip.tree.id, [tip.id]).encode()
    forged = repo.odb.write(pygit2.enums.ObjectType.COMMIT, with_signature(content, sshsig.sign(forged_key, content)))
    unsigned = repo.create_commit(None, sig, sig, "unsigned\n", tip.tree.id, [forged])
    repo.references["refs/heads/main"].set_target(unsigned)
    assert cli_main([*data, "verify"]) == 1
    out = capsys.readouterr().out
    assert (f"signatures: commit {forged} is signed by {sshsig.fingerprint(forged_key.public_key())}, "
            "not by the ledger's commit key") in out
    assert str(unsigned) not in out  # the first one is reported
    repo.references["refs/heads/main"].set_target(
        repo.create_commit(None, sig, sig, "unsigned\n", tip.tree.id, [tip.id]))
    assert cli_main([*data, "verify"]) == 1
    assert "is not signed" in capsys.readouterr().out


def test_an_older_ledger_adopts_keys_in_a_signed_commit(tmp_path):
    settings = Settings(data=str(tmp_path / "data"))
    old = Ledger.create(settings.ledger_path, first_commit())  # as an older release made it: no keys, unsigned
    assert old.repo()[old.head()].gpg_signature == (None, None)
    reg = Registry.open(settings)
    assert reg.snapshot().exists(layout.SIGNING_KEYS)
    operations.create_workspace(reg, identity.operator(), "cli", "acme")
    report = maintenance.verify(reg)
    assert report.ok and any("1 commits from before the ledger adopted signing keys" in n for n in report.notes)
    Registry.open(settings)  # adopted once
    assert sum(1 for c in reg.ledger.walk() if c.summary.startswith("adopt signing keys")) == 1


def test_without_its_key_the_registry_commits_nothing(reg):
    op = identity.operator()
    record = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    key_file = reg.keys.file("commit", signing.current(record, "commit").public_key)
    original = key_file.read_bytes()
    key_file.write_bytes(sshsig.private_pem(Ed25519PrivateKey.generate()))  # swapped for another key
    fresh = Registry.open(reg.settings)
    head = fresh.ledger.head()
    with pytest.raises(signing.KeyMissing, match="holds another key than the one the ledger names"):
        operations.create_workspace(fresh, op, "cli", "acme")
    key_file.unlink()
    with pytest.raises(signing.KeyMissing, match="restore that directory from a backup") as refused:
        operations.create_workspace(Registry.open(reg.settings), op, "cli", "acme")
    assert refused.value.status == 503 and fresh.ledger.head() == head
    assert not maintenance.verify(fresh).ok
    key_file.write_bytes(original)
    operations.create_workspace(Registry.open(reg.settings), op, "cli", "acme")


def test_init_signs_the_first_commit(tmp_path, capsys):
    data = tmp_path / "data"
    assert cli_main(["--data", str(data), "init"]) == 0
    assert "signed with keys in" in capsys.readouterr().out
    ledger = Ledger.open(data / "ledger.git")
    signature, payload = ledger.repo()[ledger.head()].gpg_signature
    assert sshsig.verify(signature, payload)
    assert cli_main(["--data", str(data), "key", "list", "--allowed-signers"]) == 0
    assert capsys.readouterr().out.startswith('registry@localhost namespaces="git",valid-after="')


def test_serve_refuses_a_data_directory_without_its_keys(reg):
    record = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    reg.keys.file("commit", signing.current(record, "commit").public_key).unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(reg.settings.data_path), "serve",
                           "--port", str(free_port())], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1 and "signing key" in proc.stderr and "restore" in proc.stderr, proc.stderr
