"""A backup's place: a directory, or a bucket of a real S3 server (SeaweedFS) holding the same layout
under a prefix, written and read with the same proofs."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from registry import identity, maintenance
from registry.backups import places
from registry.backups.restore import restore
from registry.backups.take import backup
from registry.config import Settings
from registry.datadir import Registry
from registry.errors import RegistryError
from tests.support.helpers import free_port, make_wheel
from tests.support.world import overwrite_blob, publish


def _publish(world, tmp_path, version: str) -> str:
    (tmp_path / "dists").mkdir(exist_ok=True)
    wheel = make_wheel(tmp_path / "dists", "Acme.Utils", version)
    publish(world.reg, identity.operator(), wheel)
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def _into(settings: Settings, tmp_path, name: str = "restored") -> Settings:
    return msgspec.structs.replace(settings, data=str(tmp_path / name), blobs="")


def test_a_backup_in_a_bucket_sends_only_what_is_new_and_restores(world, tmp_path, settings, seaweed, s3_env):
    location = seaweed.location()
    first = _publish(world, tmp_path, "1.0")
    one = backup(world.reg, location)
    assert one.number == 1 and one.blobs >= 1
    before = seaweed.objects(location)
    assert f"blobs/sha256/{first[:2]}/{first}" in before and ".lock" not in before
    # a backup cut short before its manifest left the next file in the bucket: it is not sent again
    second = _publish(world, tmp_path, "1.1")
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    seaweed.client().put_object(Bucket=bucket, Key=f"{prefix}/{places.blob_name(second)}",
                                Body=world.reg.blobs.read(second))
    left = seaweed.objects(location)[places.blob_name(second)]
    two = backup(world.reg, location)
    assert two.number == 2 and two.previous == one.head and two.commits == 1
    after = seaweed.objects(location)
    assert after[places.blob_name(second)] == left and all(after[k] == v for k, v in before.items())
    assert len(after) - len(before) - 1 == two.blobs + 3  # (its new files, a bundle, a manifest, a signature)
    assert backup(world.reg, location).number is None
    into = _into(settings, tmp_path)
    done = restore(location, into, keys=settings.keys_path)
    assert done.head == two.head and done.number == 2
    reg = Registry.open(into)
    assert maintenance.verify(reg).ok
    assert reg.blobs.read(second) == world.reg.blobs.read(second)


def test_a_backup_that_fails_leaves_the_last_whole_one(world, tmp_path, settings, seaweed, s3_env):
    location = seaweed.location()
    _publish(world, tmp_path, "1.0")
    one = backup(world.reg, location)
    broken = _publish(world, tmp_path, "1.1")
    overwrite_blob(world.reg, broken, b"rotten")
    with pytest.raises(RegistryError, match=f"blob {broken} in the registry's store is corrupt"):
        backup(world.reg, location)
    assert not any(k.startswith("manifests/000002") for k in seaweed.objects(location))
    assert ".lock" not in seaweed.objects(location)  # (released: the next one may run)
    assert restore(location, _into(settings, tmp_path)).head == one.head


def test_a_second_backup_while_one_runs_is_refused(world, tmp_path, seaweed, s3_env):
    location = seaweed.location()
    _publish(world, tmp_path, "1.0")
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    seaweed.client().put_object(Bucket=bucket, Key=f"{prefix}/.lock", Body=b"elsewhere 1 now\n")
    with pytest.raises(RegistryError, match="Another backup into .* is running") as refused:
        backup(world.reg, location)
    assert refused.value.status == 409 and set(seaweed.objects(location)) == {".lock"}


def test_a_lock_is_never_taken_over_and_a_backup_whose_lock_went_stops_before_its_bundle(world, tmp_path,
                                                                                          seaweed, s3_env):
    """Two backups at once would write the same bundle's and signature's names: a lock, however old,
    is the operator's to delete; one deleted under a running backup (and another begun) stops it
    before its bundle, signature or manifest, and it leaves the other's lock alone."""
    location = seaweed.location()
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    place, other = places.BucketPlace(location, 10), places.BucketPlace(location, 10)
    first = place.held()
    first.__enter__()
    seaweed.client().delete_object(Bucket=bucket, Key=f"{prefix}/.lock")  # (by hand, thinking it stale)
    second = other.held()
    second.__enter__()
    with pytest.raises(RegistryError, match="Another backup into .* is running") as refused:
        places.BucketPlace(location, 10).held().__enter__()  # (a third: however old the lock, refused)
    assert refused.value.status == 409 and "since" in refused.value.message
    temp = tmp_path / "bundle"
    temp.write_bytes(b"bundle")
    for write in (lambda: place.put("bundles/000001.bundle", temp), lambda: place.put_manifest(1, b"{}", b"sig")):
        with pytest.raises(RegistryError, match="was deleted while this backup ran") as stopped:
            write()
        assert stopped.value.status == 409 and set(seaweed.objects(location)) == {".lock"}
    first.__exit__(None, None, None)  # (the first ends: the second's lock stays)
    assert set(seaweed.objects(location)) == {".lock"} and other.ours()
    second.__exit__(None, None, None)
    assert seaweed.objects(location) == {}


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://UPPER/x", "s3://a/x"])
def test_a_location_that_is_not_one_is_refused(world, tmp_path, settings, url, s3_env):
    with pytest.raises(RegistryError, match="is not an S3 location: write s3://BUCKET"):
        backup(world.reg, url)
    with pytest.raises(RegistryError, match="is not an S3 location"):
        restore(url, _into(settings, tmp_path))
    assert not (tmp_path / "restored").exists() and not (tmp_path / "restored.restoring").exists()


def test_a_bucket_that_does_not_exist_or_does_not_answer_is_refused(world, tmp_path, settings, seaweed, s3_env,
                                                                    monkeypatch):
    for run in (lambda url: backup(world.reg, url), lambda url: restore(url, _into(settings, tmp_path))):
        with pytest.raises(RegistryError, match="There is no bucket 'no-such-bucket' at http://127.0.0.1"):
            run("s3://no-such-bucket/backups")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # (nothing listens there)
    fast = msgspec.structs.replace(world.reg.settings, blobs_timeout=0.5)
    world.reg.settings = fast
    for run in (lambda url: backup(world.reg, url),
                lambda url: restore(url, msgspec.structs.replace(_into(settings, tmp_path), blobs_timeout=0.5))):
        with pytest.raises(RegistryError, match="could not be reached when asked for bucket") as refused:
            run(seaweed.location())
        assert refused.value.status == 503
        assert "registry-test-secret" not in refused.value.message
    assert not (tmp_path / "restored").exists() and not (tmp_path / "restored.restoring").exists()


def test_a_directory_and_a_bucket_hold_the_same_files(world, tmp_path, seaweed, s3_env):
    _publish(world, tmp_path, "1.0")
    location = seaweed.location()
    backup(world.reg, location)
    backup(world.reg, tmp_path / "dir")
    in_dir = {str(p.relative_to(tmp_path / "dir")) for p in (tmp_path / "dir").rglob("*") if p.is_file()}
    assert set(seaweed.objects(location)) == in_dir - {".lock"}
