import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.blobs import FileBlobStore
from registry.blobs import files as files_module
from registry.errors import TooLarge


@pytest.fixture
def file_store(tmp_path):
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    """The assertions that hold for every store, run on each."""
    if request.param == "file":
        return FileBlobStore(tmp_path / "blobs")
    from registry.blobs.s3 import S3BlobStore

    request.getfixturevalue("s3_env")
    return S3BlobStore.from_url(request.getfixturevalue("seaweed").location(), local=tmp_path / "staging",
                                cache=tmp_path / "cache")


def test_staged_bytes_are_hashed_while_written_and_adopted_under_their_hash(store):
    data = os.urandom(3 * 2**20 + 17)
    with store.stage() as staged:
        for i in range(0, len(data), 65536):
            staged.write(data[i:i + 65536])
        digests = staged.finish()
        assert not store.exists(digests.sha256)  # invisible until adopted
        assert len(list(store.staging.iterdir())) == 1  # too big to stay in memory: spilled to a file
        sha = store.adopt(staged)
    assert sha == hashlib.sha256(data).hexdigest() == digests.sha256
    assert digests.blake2b_256 == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert digests.md5 == hashlib.md5(data).hexdigest() and digests.size == len(data)
    with store.open(sha) as fh:
        assert fh.read() == data
    assert store.size(sha) == len(data)
    assert list(store.staging.iterdir()) == []


def test_small_content_is_staged_in_memory_and_written_once_adopted(store):
    data = os.urandom(5000)
    with store.stage() as staged:
        staged.write(data[:1000])
        staged.write(data[1000:])
        assert list(store.staging.iterdir()) == []
        with staged.open() as fh:
            assert fh.read() == data
        sha = store.adopt(staged)
    assert store.read(sha) == data and list(store.staging.iterdir()) == []


@pytest.mark.parametrize("size", [5000, 3 * 2**20])
def test_a_torn_copy_of_the_same_content_is_replaced(file_store, size):
    """A crash after a blob was written but before its commit can leave it torn at its name; the
    next upload of the same bytes must not trust it."""
    data = os.urandom(size)
    target = file_store.objects / hashlib.sha256(data).hexdigest()[:2] / hashlib.sha256(data).hexdigest()
    target.write_bytes(data[: size // 2])
    assert file_store.put_bytes(data) == target.name
    assert file_store.read(target.name) == data and list(file_store.staging.iterdir()) == []
    if size < 2**20:  # small ones are checked by hash, not just by size
        target.write_bytes(bytes(size))
        file_store.put_bytes(data)
        assert file_store.read(target.name) == data


def test_every_fan_out_directory_exists_from_the_start(tmp_path):
    """A blob's name is durable once its directory is synced only if that directory's own name is
    durable: all 256 are made (and synced into their parent) when the store is opened, so none is
    ever created later by a write that doesn't sync (a cache) and then relied on by one that does."""
    store = FileBlobStore(tmp_path / "blobs")
    assert sorted(p.name for p in store.objects.iterdir()) == [f"{i:02x}" for i in range(256)]
    (store.objects / "ab").rmdir()  # removed by hand: made again when needed
    data = next(d for d in (os.urandom(64) for _ in range(100_000)) if hashlib.sha256(d).hexdigest().startswith("ab"))
    assert store.put_bytes(data).startswith("ab") and store.read(hashlib.sha256(data).hexdigest()) == data


def test_two_processes_opening_a_new_store_at_once(tmp_path, monkeypatch):
    # granian starts its workers together: each lists the fan-out directories, then makes the missing
    # ones, and may find another worker made one in between (it used to kill the worker, and the server)
    FileBlobStore(tmp_path / "blobs")
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: [] if str(path).endswith("sha256") else real_listdir(path))
    FileBlobStore(tmp_path / "blobs")
    assert len(real_listdir(tmp_path / "blobs" / "sha256")) == 256


def test_repair_replaces_only_a_copy_that_is_not_whole(file_store):
    data = os.urandom(3 * 2**20)
    with file_store.stage() as staged:
        staged.write(data)
        sha = file_store.adopt(staged)
    path = file_store.local_path(sha)
    for harm in (lambda: None, lambda: path.write_bytes(b""), lambda: path.write_bytes(bytes(len(data))), path.unlink):
        harm()
        whole = path.exists() and path.read_bytes() == data
        with file_store.stage() as staged:
            staged.write(data)
            assert file_store.repair(staged) is not whole
        assert file_store.read(sha) == data


def test_a_discarded_upload_leaves_nothing(store):
    with store.stage() as staged:
        staged.write(b"partial")
    assert list(store.staging.iterdir()) == [] and list(store.list()) == []


def test_the_limit_is_enforced_while_streaming(store):
    with store.stage(limit=10) as staged:
        staged.write(b"x" * 10)
        with pytest.raises(TooLarge, match="limit is 10 bytes"):
            staged.write(b"y")
    assert list(store.staging.iterdir()) == []


def test_adopting_content_already_stored_is_a_no_op(store):
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    assert first == second and [s for s, _ in store.list()] == [first]
    assert list(store.staging.iterdir()) == []


def test_delete_and_sweep(store):
    sha = store.put_bytes(b"bye")
    store.delete(sha)
    assert not store.exists(sha) and store.local_path(sha) is None
    stale = store.staging / "incoming-crashed"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    assert store.sweep_staging() == 1 and not stale.exists()


def test_only_hex_digests_name_blobs(store):
    with pytest.raises(ValueError):
        store.open("../../etc/passwd")


@settings(max_examples=300)
@given(st.one_of(st.text(alphabet="0123456789abcdefABCDEF\n/.٣", min_size=62, max_size=66), st.text()))
def test_a_name_is_a_blob_exactly_when_it_is_64_lowercase_hex_digits(tmp_path_factory, name):
    """(a path is never built from anything else: no traversal, no second spelling of one blob)"""
    store = FileBlobStore(tmp_path_factory.getbasetemp() / "hex-names")
    digest = len(name) == 64 and set(name) <= set("0123456789abcdef")
    try:
        path = store._path(name)
    except ValueError:
        assert not digest
    else:
        assert digest and path == store.objects / name[:2] / name


async def test_a_stream_left_early_closes_its_file(file_store, monkeypatch):
    """A download the client leaves halfway (its stream closed after one chunk) or never starts
    reading holds no descriptor after."""
    monkeypatch.setattr(files_module, "CHUNK", 10)
    with file_store.stage() as staged:
        staged.write(b"x" * 100)
        staged.finish()
        sha = file_store.adopt(staged)
    fds = len(os.listdir("/proc/self/fd"))
    chunks = await file_store.open_stream(sha, 5, 90)
    assert await chunks.__anext__() == b"x" * 10
    assert len(os.listdir("/proc/self/fd")) == fds + 1
    await chunks.aclose()
    assert len(os.listdir("/proc/self/fd")) == fds
    unread = await file_store.open_stream(sha, 0, 100)
    await unread.aclose()
    assert len(os.listdir("/proc/self/fd")) == fds
    assert b"".join([c async for c in await file_store.open_stream(sha, 5, 90)]) == b"x" * 90
