"""A worker's walks through every version (the check of the blob store, a collection), done in a
child process once the ledger is big: the same findings as in the worker, recorded where the worker
reads them (the missing files for /_/health, the blobs freed); a child that fails is said, not
swallowed; the worker's settings reach the child whole, and never through its arguments."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import msgspec
import pytest

from registry import apart, identity
from registry.errors import RegistryError
from tests.support.helpers import make_wheel
from tests.support.world import publish

OP = identity.operator()


def damaged(world, tmp_path) -> tuple[str, str]:
    """Two published files, one of them lost from the store; and an orphan blob (a publish that
    never committed): (the lost file's sha256, the orphan's)."""
    reg = world.reg
    wheels = [make_wheel(tmp_path, "Acme.Utils", v) for v in ("1.0", "1.1")]
    for wheel in wheels:
        publish(reg, OP, wheel)
    lost = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    reg.blobs.delete(lost)  # (the journal still names it: a replay of the journal would bring it back)
    orphan = reg.blobs.put_bytes(b"an upload that never committed")
    return lost, orphan


@pytest.mark.parametrize("threshold", [0, 10**9], ids=["apart", "in the worker"])
def test_a_walk_finds_the_same_in_a_child_as_in_the_worker(world, tmp_path, monkeypatch, threshold):
    reg = world.reg
    lost, orphan = damaged(world, tmp_path)
    children = []
    real_run = subprocess.run
    monkeypatch.setattr(apart, "APART_FROM_OBJECTS", threshold)
    monkeypatch.setattr(apart.subprocess, "run", lambda *a, **k: children.append(a[0]) or real_run(*a, **k))

    journal = reg.ledger.journal_bytes()
    assert journal > 0  # (commits in flight, as a busy worker's are)
    assert apart.walk("check_blobs", reg) == 1
    assert reg.ledger.journal_bytes() == journal  # (the child replayed nothing: the worker's journal)
    assert set(reg.missing.entries()) == {lost}  # (what /_/health says, from the child's record)
    done = apart.walk("collect", reg, 0.0)
    assert done["freed"] == 1 and not reg.blobs.exists(orphan)
    assert set(reg.missing.entries()) == {lost}
    assert len(children) == (2 if threshold == 0 else 0)
    for argv in children:  # (the settings, tokens and all, went on its stdin)
        assert argv[-2:] == ["-m", "registry.apart"] and not any(str(reg.settings.data_path) in a for a in argv)


def test_a_child_that_fails_is_a_refusal_that_says_so(world, tmp_path):
    settings = world.reg.settings
    broken = type(settings)(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                               "data": str(tmp_path / "no-registry-here")})
    with pytest.raises(RegistryError) as raised:
        apart.run(apart.Job("check_blobs", broken))
    assert "The check_blobs walk in a process apart failed (exit status 1)" in raised.value.message
    with pytest.raises(RegistryError) as raised:  # (a walk that outlasts its bound is stopped)
        apart.run(apart.Job("check_blobs", world.reg.settings), timeout=0.01)
    assert "took longer than 0.01 s, and was stopped" in raised.value.message


def test_a_child_whose_worker_is_gone_does_nothing(world):
    job = msgspec.json.encode(apart.Job("check_blobs", world.reg.settings, worker=1))  # (not its parent)
    done = subprocess.run([sys.executable, "-m", "registry.apart"], input=job, capture_output=True)
    assert done.returncode == 1 and done.stdout == b""


def test_a_big_ledger_is_walked_apart_and_a_small_one_here(world):
    objects = apart.ledger_objects(world.reg.settings)
    assert 0 < objects < apart.APART_FROM_OBJECTS  # (a small registry: its walks stay in the worker)
