"""`registry backup` of a running registry and `registry restore` into a new data directory, served
again: every project's pages, at the head and at older commits, byte for byte the original's."""

from __future__ import annotations

import shutil
import threading

import pytest

from tests.support.backups import cli as _cli
from tests.support.backups import pages as _pages
from tests.support.backups import publish as _publish
from tests.support.backups import publish_commits
from tests.support.helpers import make_sdist, make_wheel, new_team, start_server

pytestmark = pytest.mark.e2e


def test_back_up_publish_back_up_wipe_restore_serve_the_same_pages(tmp_path):
    data, dest, dists = tmp_path / "data", tmp_path / "backup", tmp_path / "dists"
    dists.mkdir()
    live = start_server(data, workers=2)
    try:
        team = new_team(live)
        projects = ["alpha", "beta", "gamma"]
        for p in projects:
            live.cli("package", "create", "default", p, "--repo", team["repo"])
        for v in ("1.0", "1.1"):
            for p in projects:
                _publish(live.url, team, make_wheel(dists, p, v))
        _publish(live.url, team, make_sdist(dists, "alpha", "1.1"))
        first = _cli(data, "backup", str(dest)).stdout
        assert "backup 000001" in first
        # uploads running while the next backup is taken: it is of one commit, whatever lands meanwhile
        stop = threading.Event()

        def uploads() -> None:
            n = 0
            while not stop.is_set() and n < 40:
                _publish(live.url, team, make_wheel(dists, "beta", f"2.{n}"))
                n += 1

        racing = threading.Thread(target=uploads)
        racing.start()
        try:
            second = _cli(data, "backup", str(dest)).stdout
        finally:
            stop.set()
            racing.join()
        assert "backup 000002" in second
        assert "backup 000003" in _cli(data, "backup", str(dest)).stdout  # (what landed after its commit)
        _publish(live.url, team, make_wheel(dists, "gamma", "3.0"))
        fourth = _cli(data, "backup", str(dest)).stdout
        assert "backup 000004" in fourth and ": 1 commits" in fourth and ", 1 new files" in fourth  # (incremental)
        publishes = publish_commits(data)
        head = publishes[0]  # (three older: each project had a version by the third publish)
        older = [publishes[1], publishes[len(publishes) // 2], publishes[-3]]
        original = _pages(live.url, team, projects, older)
        assert all(page.startswith(b"200 ") for page in original.values()), [k for k, v in original.items()
                                                                             if not v.startswith(b"200 ")]
    finally:
        live.stop()
    port = live.url.rsplit(":", 1)[1]
    keys = tmp_path / "keys-kept-apart"
    shutil.copytree(data / "keys", keys)
    shutil.rmtree(data)  # wiped

    restored = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(keys)).stdout
    assert f"head {head}" in restored
    assert "OK" in _cli(tmp_path / "new", "verify").stdout
    again = start_server(tmp_path / "new", workers=2, port=int(port))  # (the same URL: pages name it)
    try:
        assert _pages(again.url, team, projects, older) == original
        _publish(again.url, team, make_wheel(dists, "alpha", "9.0"))  # (it signs on with the kept keys)
    finally:
        again.stop()
    assert "OK" in _cli(tmp_path / "new", "verify").stdout

    # the backup taken during the uploads restores consistently at its own head
    second_head = second.split(" up to ")[1].split(",")[0]
    mid = _cli(tmp_path / "mid", "restore", str(dest), "--at", second_head, "--keys", str(keys)).stdout
    assert f"head {second_head}" in mid
    assert "OK" in _cli(tmp_path / "mid", "verify").stdout
    # without the keys it restores too, and says that nothing can be committed until they are back
    bare = _cli(tmp_path / "bare", "restore", str(dest), "--no-keys").stdout
    assert "no signing keys" in bare and "signing key" in _cli(tmp_path / "bare", "verify", check=False).stdout


def test_a_corrupt_file_in_the_backup_fails_the_restore_naming_it(tmp_path):
    data, dest = tmp_path / "data", tmp_path / "backup"
    live = start_server(data, workers=1)
    try:
        team = new_team(live)
        live.cli("package", "create", "default", "alpha", "--repo", team["repo"])
        (tmp_path / "dists").mkdir()
        _publish(live.url, team, make_wheel(tmp_path / "dists", "alpha", "1.0"))
        _cli(data, "backup", str(dest))
    finally:
        live.stop()
    victim = next((dest / "blobs" / "sha256").glob("*/*"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    proc = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(data / "keys"), check=False)
    assert proc.returncode == 1 and str(victim) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()
    bundle = dest / "bundles" / "000001.bundle"
    bundle.write_bytes(bundle.read_bytes()[:100])
    proc = _cli(tmp_path / "new", "restore", str(dest), "--keys", str(data / "keys"), check=False)
    assert proc.returncode == 1 and f"{bundle} has 100 bytes" in proc.stderr


def _new_files(said: str) -> int:
    return int(said.split(" new files")[0].rsplit(" ", 1)[1])


def test_a_backup_into_a_bucket_is_incremental_and_restores_the_same_pages(tmp_path, seaweed):
    data, dists, location, env = tmp_path / "data", tmp_path / "dists", seaweed.location(), seaweed.env()
    dists.mkdir()
    live = start_server(data, workers=1)
    try:
        team = new_team(live)
        projects = ["alpha", "beta"]
        for p in projects:
            live.cli("package", "create", "default", p, "--repo", team["repo"])
            _publish(live.url, team, make_wheel(dists, p, "1.0"))
        _publish(live.url, team, make_sdist(dists, "alpha", "1.0"))
        first = _cli(data, "backup", location, env=env).stdout
        assert f"backup 000001 in {location}" in first
        before = seaweed.objects(location)
        # (each file, a bundle, a manifest and its signature; the lock is gone)
        assert len(before) == _new_files(first) + 3 and _new_files(first) >= 3
        _publish(live.url, team, make_wheel(dists, "beta", "2.0"))
        second = _cli(data, "backup", location, env=env).stdout
        assert "backup 000002" in second and ": 1 commits" in second and 1 <= _new_files(second) <= 2
        after = seaweed.objects(location)
        new = {k for k in after if k not in before}  # (only the new wheel, and its core metadata if cached)
        assert len(new) == _new_files(second) + 3
        assert {k.split("/")[0] for k in new} == {"blobs", "bundles", "manifests"}
        assert all(after[k] == v for k, v in before.items())  # (nothing sent again)
        assert "nothing new" in _cli(data, "backup", location, env=env).stdout
        head = publish_commits(data)[0]
        original = _pages(live.url, team, projects, publish_commits(data)[1:3])
        key = next(line.split()[1] for line in live.cli("key", "list").stdout.splitlines() if line.startswith("commit"))
    finally:
        live.stop()
    port = int(live.url.rsplit(":", 1)[1])
    restored = _cli(tmp_path / "new", "restore", location, "--keys", str(data / "keys"), env=env).stdout
    assert f"head {head}" in restored and f"signed by commit key {key}" in restored
    again = start_server(tmp_path / "new", workers=1, port=port)  # (its own blobs/: the backup came home)
    try:
        assert _pages(again.url, team, projects, publish_commits(data)[1:3]) == original
    finally:
        again.stop()

    # --expect-key: the key named, or a refusal naming both; a fingerprint that isn't one is refused first
    ok = _cli(tmp_path / "expected", "restore", location, "--no-keys", "--expect-key", key, env=env).stdout
    assert f"signed by commit key {key}, the key expected" in ok
    other = "SHA256:" + "A" * 43
    for given, said in [(other, f"signed by commit key {key}"), ("SHA256:short", "is not a key fingerprint"),
                        (key[7:], "is not a key fingerprint")]:
        proc = _cli(tmp_path / "refused", "restore", location, "--no-keys", "--expect-key", given, env=env,
                    check=False)
        assert proc.returncode == 1 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.restoring").exists()

    # a file of the bucket that is damaged or gone stops the restore, naming its object
    blob = next(k for k in after if k.startswith("blobs/"))
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    seaweed.client().put_object(Bucket=bucket, Key=f"{prefix}/{blob}", Body=b"not the file")
    proc = _cli(tmp_path / "bad", "restore", location, "--no-keys", env=env, check=False)
    assert proc.returncode == 1 and f"{location}/{blob} is corrupt" in proc.stderr
    seaweed.client().delete_object(Bucket=bucket, Key=f"{prefix}/{blob}")
    proc = _cli(tmp_path / "bad", "restore", location, "--no-keys", env=env, check=False)
    assert proc.returncode == 1 and f"{location}/{blob} is missing" in proc.stderr
    assert not (tmp_path / "bad").exists()
