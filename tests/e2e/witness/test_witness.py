"""`registry witness` against a live registry on 127.0.0.1: an honest stream of changes passes (key
rotations included), and every way of rewriting the ledger we could think of is caught."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from registry.trust import checkpoints as checkpoint
from registry.trust import witness
from tests.support import tampering
from tests.support.helpers import make_wheel, run, start_server

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")]


class Live:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.server = start_server(tmp_path / "data", workers=1)
        self.server.cli("user", "create", "witness@example.com")
        self.token = self.server.cli("token", "create", "witness@example.com", "--witness").stdout.strip()
        self.state = tmp_path / "witness" / "state.json"
        self.state.parent.mkdir()
        self.changes = 0

    @property
    def data(self) -> Path:
        return self.server.data

    def witness(self, *extra: str, state: Path | None = None) -> subprocess.CompletedProcess:
        return run([sys.executable, "-m", "registry", "witness", self.server.url, "--state", str(state or self.state),
                    *extra], env={"PATH": "/usr/bin:/bin", "REGISTRY_WITNESS_TOKEN": self.token}, check=False)

    def head(self) -> str:
        return json.loads(self.state.read_text())["head"]

    def activity(self) -> None:
        """What a registry does all day: people, packages, uploads, a yank, a deletion."""
        self.changes += 1
        n, admin = self.changes, (self.server.admin, self.server.token)
        self.server.cli("user", "create", f"dev{n}@example.com")
        name = f"pkg{n}"
        r = httpx.post(f"{self.server.url}/api/workspaces/default/packages", auth=admin,
                       json={"name": name, "repository": "packages"}, timeout=30)
        assert r.status_code == 201, r.text
        for version in ("1.0", "1.1", "2.0"):
            wheel = make_wheel(self.tmp, name, version)
            r = httpx.post(f"{self.server.url}/default/", auth=admin, timeout=30,
                           data={":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
                                 "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
                                 "sha256_digest": hashlib.sha256(wheel.read_bytes()).hexdigest()},
                           files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")})
            assert r.status_code == 200, r.text
        api = f"{self.server.url}/api/workspaces/default/packages/pypi/{name}/versions"
        assert httpx.post(f"{api}/1.1/yank", auth=admin, json={"reason": "bad"}, timeout=30).status_code == 200
        assert httpx.delete(f"{api}/1.0", auth=admin, timeout=30).status_code == 200

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def live(tmp_path):
    registry = Live(tmp_path)
    registry.activity()
    first = registry.witness()
    assert first.returncode == 0 and "first run" in first.stdout, first.stderr
    registry.activity()  # a normal stream of changes between two runs passes
    second = registry.witness()
    assert second.returncode == 0 and "new commits since" in second.stdout, second.stderr
    yield registry
    registry.stop()


def caught(live: Live, *phrases: str, state: Path | None = None) -> str:
    """The witness fails, naming both heads and what it found."""
    seen = json.loads((state or live.state).read_text())["head"]
    proc = live.witness(state=state)
    said = proc.stderr
    assert proc.returncode == 1, (proc.stdout, said)
    assert "TAMPERED" in said and f"last head seen {seen}" in said and "checkpoint head " in said, said
    for phrase in phrases:
        assert phrase in said, said
    again = live.witness(state=state)  # and it keeps failing: the state did not move on
    assert again.returncode == 1 and json.loads((state or live.state).read_text())["head"] == seen
    return said


def test_an_honest_stream_passes_rotations_included(live):
    before = live.head()
    live.activity()
    proc = live.witness()
    assert proc.returncode == 0, proc.stderr
    assert f"new commits since {before}" in proc.stdout and "each signed by the key of its time" in proc.stdout
    trusted = json.loads(live.state.read_text())["keys"]
    assert live.server.cli("key", "rotate").returncode == 0
    live.activity()
    proc = live.witness()
    assert proc.returncode == 0, proc.stderr
    rotated = json.loads(live.state.read_text())["keys"]
    assert rotated != trusted and proc.stdout.rstrip().endswith(rotated[0])
    assert live.witness().returncode == 0  # nothing new: still fine
    fresh = live.state.parent / "elsewhere.json"  # a witness told the key, on a runner that keeps no copy
    key = httpx.get(f"{live.server.url}/_/ledger/checkpoint-key").text.strip()
    assert live.witness("--key", key, state=fresh).returncode == 0
    assert live.server.cli("verify").returncode == 0


def test_amending_the_last_commit_is_caught(live):
    tampering.amend_last(live.data, live.tmp / "clone")
    caught(live, "rewrite: the checkpoint's head does not descend from the last head seen")


def test_reset_and_recommit_is_caught(live):
    tampering.reset(live.data, 3)
    live.activity()  # the registry carries on, signing properly, on the shortened history
    caught(live, "rewrite: the checkpoint's head does not descend from the last head seen")
    # a witness on a runner that keeps no copy of the ledger finds the last head missing
    bare = live.state.parent / "ci.json"
    shutil.copy(live.state, bare)
    caught(live, "missing commit: the last head seen is not in the served ledger", state=bare)


def test_editing_a_record_and_forcing_the_branch_is_caught(live):
    repo = tampering.ledger(live.data)
    path = next(p for p in _files(repo.head.peel().tree) if p.startswith("users/") and "dev1@" in p)
    tampering.edit_record(live.data, 8, path, b'"name": "dev1@example.com"', b'"name": "Someone Else"')
    caught(live, "rewrite:")


def test_deleting_a_commit_in_the_middle_is_caught(live):
    tampering.delete_commit(live.data, 6)
    caught(live, "rewrite:")


def test_swapping_the_signing_key_is_caught(live):
    forged = tampering.swap_keys(live.data)
    live.activity()  # the registry signs on, with the swapped key
    caught(live, f"bad signature: commit {forged} is signed by", "not by the ledger's commit key of the time")
    assert live.server.cli("verify", check=False).returncode == 1


def test_resigning_the_whole_history_with_another_key_is_caught(live):
    original = json.loads(live.state.read_text())["keys"][0]
    tampering.resign_everything(live.data)  # consistent in itself: every record names the new keys
    caught(live, "rewrite:")
    told = live.state.parent / "told.json"  # a first run, told the real checkpoint key
    proc = live.witness("--key", original, state=told)
    assert proc.returncode == 1 and "unknown key: the ledger's checkpoint keys" in proc.stderr, proc.stderr


def test_a_forged_or_foreign_checkpoint_is_caught(live, monkeypatch):
    note = httpx.get(f"{live.server.url}/_/ledger/checkpoint").text
    point, _, _ = checkpoint.parse(note)
    forged = note.replace(f"\n{point.size}\n", f"\n{point.size - 1}\n")
    monkeypatch.setattr(witness, "_get", lambda url, *_: forged)
    with pytest.raises(witness.Tampered, match="bad signature: the checkpoint's signature by .* does not verify"):
        witness.check(live.server.url, live.state, [], live.token)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    name = point.origin
    foreign = checkpoint.sign(point, name, Ed25519PrivateKey.generate())
    monkeypatch.setattr(witness, "_get", lambda url, *_: foreign)
    with pytest.raises(witness.Tampered, match="unknown key: the checkpoint is signed only by"):
        witness.check(live.server.url, live.state, [], live.token)
    told = checkpoint.verifier_key(name, Ed25519PrivateKey.generate().public_key())
    monkeypatch.undo()
    with pytest.raises(witness.Tampered, match="unknown key: the ledger's checkpoint keys .* include none"):
        witness.check(live.server.url, live.state.parent / "other.json", [told], live.token)


def test_the_witness_needs_its_token_and_says_so(live):
    proc = run([sys.executable, "-m", "registry", "witness", live.server.url, "--state", str(live.state)],
               env={"PATH": "/usr/bin:/bin"}, check=False)
    assert proc.returncode == 2 and proc.stderr == (
        "registry witness: could not check: no witness token: set REGISTRY_WITNESS_TOKEN or pass --token\n")
    fresh = live.tmp / "fresh" / "state.json"  # a first run that fails leaves nothing to trip the next one
    fresh.parent.mkdir()
    for token in ([], ["--token", "rgy_" + "x" * 43]):
        proc = run([sys.executable, "-m", "registry", "witness", live.server.url, "--state", str(fresh), *token],
                   env={"PATH": "/usr/bin:/bin"}, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Username" not in proc.stderr, proc.stderr
        assert list(fresh.parent.iterdir()) == []
    assert "refused the witness token (401)" in proc.stderr


def _files(tree, prefix=""):
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.type_str == "tree":
            yield from _files(entry, path + "/")
        else:
            yield path
