"""Power cuts at every sync: whatever the registry acknowledged survives whole, and verify is clean.

A scenario (small and big publishes, a core-metadata read, a delete, a yank, a journal checkpoint,
a pack fold, a collection) runs on the real disk while `powerloss.Disk` records what each sync made
durable. Then every state a cut could leave (after each sync, and after each subset of syncs
issued together) is written out as a data directory, opened (which replays the journal), and
checked; for some of them the replay itself is cut at each of its syncs, and checked again.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import types
from pathlib import Path

import pytest

from registry import dists, identity, layout, maintenance, model, operations, server
from registry.config import Settings
from registry.datadir import Registry
from registry.ledger import repack, writing
from registry.operations import upstream
from registry.reads import records
from registry.upstream.credentials import Credentials, credentials
from tests.support.helpers import make_wheel
from tests.support.powerloss import Disk, fresh, observe

WS, PKG = "acme", "acme-utils"
BIG = 1_300_000  # payload bytes: over the journal's copy limit, so the file is synced beside it


class Inline:
    """threading.Thread for the ledger's background work (checkpoints, repacks): run at start(),
    so that one run has one order of syncs to explore."""

    def __init__(self, target, name=None, daemon=None, args=(), kwargs=None):
        self._run = lambda: target(*args, **(kwargs or {}))

    def start(self) -> None:
        self._run()


@pytest.fixture
def scratch(tmp_path):
    """Where cut images go: memory, when there is a tmpfs (hundreds of them are written)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="powerloss-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture
def deterministic(monkeypatch):
    inline = types.SimpleNamespace(Thread=Inline, Lock=threading.Lock, local=threading.local)
    for module in (writing, repack):
        monkeypatch.setattr(module, "threading", inline)


def settings_for(root: Path) -> Settings:
    return Settings(data=str(root / "data"), max_upload_bytes=8 * 2**20)


def trusting_git(monkeypatch, disk: Disk, reg: Registry) -> None:
    """git syncs the packs it writes (core.fsync): tell the model, after each git run."""
    pack_dir = reg.ledger.path / "objects" / "pack"

    def run(*args, real=subprocess.run, **kwargs):
        before = set(pack_dir.iterdir()) if pack_dir.exists() else set()
        result = real(*args, **kwargs)
        disk.trust_new_files(pack_dir, {p.name for p in before})
        return result

    for module in (repack,):
        monkeypatch.setattr(module, "subprocess", types.SimpleNamespace(run=run))


def publish(reg: Registry, wheel: Path) -> tuple:
    """What the upload endpoint does with a file, minus HTTP: stage, check, commit."""
    with reg.blobs.stage() as staged:
        staged.write(wheel.read_bytes())
        staged.finish(sync=False)
        dist = dists.inspect(wheel, wheel.name)
        published = operations.publish_file(reg, identity.operator(), "upload", WS, dist, staged)
    return ("published", published.version.version, wheel.name, published.file.sha256)


def fetch(reg: Registry, wheel: Path) -> tuple:
    """What a download that pulls a file through from upstream does once it has the bytes."""
    with reg.blobs.stage() as staged:
        staged.write(wheel.read_bytes())
        d = staged.finish()
        record = model.UpstreamFile(project="requests", version="2.0", filename=wheel.name, sha256=d.sha256,
                                    size=d.size, upstream="corp", url=f"https://corp.example/files/{wheel.name}",
                                    fetched=identity.operator().provenance("upstream"))
        upstream.record_fetch(reg, identity.operator(), WS, record, staged)
    return ("fetched", wheel.name, d.sha256)


def sharing_fanout(tmp: Path, big: Path) -> Path:
    """A small wheel whose core metadata lands in the big wheel's fan-out directory: the cache write
    makes that directory first, the big upload relies on it after (the first hole a power-loss
    filesystem found)."""
    prefix = hashlib.sha256(big.read_bytes()).hexdigest()[:2]
    for i in range(20_000):
        metadata = f"Metadata-Version: 2.1\nName: {PKG}\nVersion: 1.{i}\nSummary: bench\n".encode()
        if hashlib.sha256(metadata).hexdigest()[:2] == prefix:
            return make_wheel(tmp, PKG, f"1.{i}")
    raise AssertionError("no version gives a matching prefix")


def seeded(root: Path) -> Registry:
    reg = Registry.open(settings_for(root), create=True)
    op, ch = identity.operator(), "cli"
    operations.create_workspace(reg, op, ch, WS, "Acme")
    operations.create_project(reg, op, ch, WS, "CORE", "Core")
    operations.create_repository(reg, op, ch, WS, "utils", "CORE")
    operations.create_package(reg, op, ch, WS, PKG, "utils")
    return reg


def run_scenario(reg: Registry, disk: Disk, tmp: Path, monkeypatch) -> None:
    op = identity.operator()
    big = make_wheel(tmp, PKG, "2.0", payload=BIG, stored=True)
    small = sharing_fanout(tmp, big)
    later_big = make_wheel(tmp, PKG, "5.0", payload=BIG, stored=True)

    disk.acknowledged(publish(reg, small))
    snap = reg.snapshot()
    [f] = records.get_version(snap, WS, PKG, small.name.split("-")[1]).files
    records.core_metadata(reg, f)  # the cache write: its directory is also the big file's
    disk.acknowledged(publish(reg, big))
    for version in ("3.0", "3.1"):
        disk.acknowledged(publish(reg, make_wheel(tmp, PKG, version)))
    operations.delete_version(reg, op, "cli", WS, PKG, "3.0")
    disk.acknowledged(("deleted", "3.0"))
    operations.yank(reg, op, "cli", WS, PKG, "3.1", "broken")
    disk.acknowledged(("yanked", "3.1"))
    upstream.add_upstream(reg, op, "cli", WS, "corp", "https://corp.example/simple/", username="bot", password="pw 1")
    disk.acknowledged(("upstream", "corp", "pw 1"))
    disk.acknowledged(fetch(reg, make_wheel(tmp, "requests", "2.0")))  # (what a pull-through does, minus HTTP)
    monkeypatch.setattr(writing, "CHECKPOINT_AT", 0)  # the next commit retires the journal; its checkpoint follows
    disk.acknowledged(publish(reg, make_wheel(tmp, PKG, "4.0")))
    monkeypatch.setattr(writing, "CHECKPOINT_AT", 2**30)
    reg.ledger.repack()  # folds the small packs with git pack-objects
    disk.acknowledged(publish(reg, later_big))
    maintenance.collect(reg, grace_seconds=0)  # frees 3.0's blob: a checkpoint, a delete, a full repack
    disk.acknowledged(publish(reg, make_wheel(tmp, PKG, "6.0")))


def check(image: Path, acked: list) -> None:
    """What a client was told must hold in the registry opened on ``image``."""
    reg = Registry.open(settings_for(image))
    report = maintenance.verify(reg)  # (first: the reads below rebuild what a crash tore in the cache)
    assert report.ok, report.problems
    assert reg.ledger.damage.unresolved() == []
    snap = reg.snapshot()
    deleted = {layout.version_key(what[1]) for what in acked if what[0] == "deleted"}
    for what in acked:
        if what[0] == "published" and layout.version_key(what[1]) not in deleted:
            _, version, filename, sha256 = what
            record = records.get_version(snap, WS, PKG, version)
            assert record is not None and filename in [f.filename for f in record.files], f"lost: {filename}"
            stored = reg.blobs.local_path(sha256)
            assert stored is not None, f"bytes lost: {filename}"
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256, f"corrupt: {filename}"
            [f] = [f for f in record.files if f.filename == filename]
            assert hashlib.sha256(records.core_metadata(reg, f)).hexdigest() == f.metadata_sha256
        elif what[0] == "deleted":
            assert records.get_version(snap, WS, PKG, what[1]) is None, f"deletion lost: {what[1]}"
        elif what[0] == "yanked":
            assert records.get_version(snap, WS, PKG, what[1]).yanked, f"yank lost: {what[1]}"
        elif what[0] == "upstream":  # (its credentials, kept beside the ledger, whole)
            assert any(u.name == what[1] and u.credentials for u in records.upstream_policy(snap, WS).upstreams)
            assert credentials(reg.settings, WS, what[1]) == Credentials("bot", what[2]), "credentials lost"
        elif what[0] == "fetched":
            _, filename, sha256 = what
            assert filename in records.upstream_files(snap, WS, "requests"), f"fetch record lost: {filename}"
            stored = reg.blobs.local_path(sha256)
            assert stored is not None and hashlib.sha256(stored.read_bytes()).hexdigest() == sha256, filename


def test_every_cut_during_publishing_keeps_what_was_acknowledged(tmp_path, scratch, monkeypatch, deterministic):
    root = tmp_path / "disk"
    reg = seeded(root)
    disk = Disk(root)
    trusting_git(monkeypatch, disk, reg)
    try:
        with observe(disk):
            run_scenario(reg, disk, tmp_path, monkeypatch)
        rng = random.Random(11)
        cuts = list(disk.cuts(rng))
        assert len(disk.marks) == 11 and len(cuts) > 40
        replays = 0
        for n, (done, extra) in enumerate(cuts):
            image = disk.image(done, extra, fresh(scratch / "cut"))
            acked = disk.acknowledged_by(done)
            if n % 5 == 0:  # and cut the replay itself, at each of its syncs
                replays += cut_the_replay(image, acked, scratch, rng)
            try:
                check(image, acked)
            except AssertionError as exc:
                raise AssertionError(f"after a cut at sync {done} (+{extra} of its batch), "
                                     f"{len(acked)} acknowledged: {exc}") from None
        assert replays > 10
    finally:
        disk.close()


def cut_the_replay(image: Path, acked: list, tmp: Path, rng: random.Random) -> int:
    """Recover on ``image`` while watching, then check every state a second cut could leave."""
    second = fresh(tmp / "replay")
    shutil.copytree(image, second)
    disk = Disk(second)
    try:
        with observe(disk):
            Registry.open(settings_for(second))
        cuts = list(disk.cuts(rng, per_batch=4))
        for done, extra in cuts:
            again = disk.image(done, extra, fresh(tmp / "replay-cut"))
            try:
                check(again, acked)
            except AssertionError as exc:
                raise AssertionError(f"after a second cut, during the replay, at its sync {done} (+{extra}): "
                                     f"{exc}") from None
        return len(cuts)
    finally:
        disk.close()


def test_every_cut_during_the_first_start_leaves_a_registry_or_nothing(tmp_path, scratch):
    """`registry serve` on an empty directory bootstraps and prints the admin token once: after
    that, the token must work whatever happens; before it, a cut must leave either nothing (the
    next start bootstraps) or a whole registry (the next start doesn't)."""
    root = tmp_path / "disk"
    root.mkdir()
    disk = Disk(root)
    try:
        with observe(disk):
            booted = server.bootstrap(settings_for(root))
            disk.acknowledged(("token", booted.token))
        for done, extra in disk.cuts(random.Random(5)):
            image = disk.image(done, extra, fresh(scratch / "cut"))
            again = server.bootstrap(settings_for(image))  # the next start
            reg = Registry.open(settings_for(image))
            snap = reg.snapshot()
            if disk.acknowledged_by(done):
                assert again is None, f"bootstrapped twice after a cut at sync {done}"
                assert identity.check_token(snap, booted.admin, booted.token).email == booted.admin
            assert snap.exists(layout.workspace(server.BOOT_WORKSPACE))
            report = maintenance.verify(reg)
            assert report.ok, (done, extra, report.problems)
    finally:
        disk.close()
