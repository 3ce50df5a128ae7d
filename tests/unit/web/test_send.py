"""registry/web/send.py: a file's core metadata, read at once from the copy kept here when it is
whole and small, else found or extracted again in a worker thread, and the same bytes either way;
a stored file (or a range of it) read at once when small, else streamed a chunk a worker-thread hop,
and the same bytes either way."""

from __future__ import annotations

import hashlib
import os

import anyio
import pytest

from registry import identity
from registry.blobs import files as file_store
from registry.web import send
from registry.web.repeats import read_at_once
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish


@pytest.fixture
async def wheel(world, dists):
    """A wheel whose metadata was asked for once: that made the copy kept here."""
    _, built = dists[("Acme.Utils", "1.0.0")]
    found = publish(world.reg, world.principal("dev@acme.test"), built).file
    await send.core_metadata(world.reg, found)
    return found


def _counting_hops(monkeypatch) -> list[str]:
    """The calls that go to a worker thread from now on, by name (each still made, for its answer)."""
    made: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(fn, *args, **kwargs):
        made.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return made


@pytest.fixture
def hops(wheel, monkeypatch):
    """The calls that went to a worker thread, once `wheel` is ready."""
    return _counting_hops(monkeypatch)


async def test_a_whole_small_copy_is_read_without_a_thread(world, wheel, hops):
    first = await send.core_metadata(world.reg, wheel)
    assert hashlib.sha256(first).hexdigest() == wheel.metadata_sha256 and first.startswith(b"Metadata-Version:")
    assert hops == []


@pytest.mark.parametrize("damage", ["torn", "lost"])
async def test_a_copy_torn_or_lost_is_made_again_in_a_thread(world, wheel, hops, damage):
    kept = world.reg.blobs.local_path(wheel.metadata_sha256)
    whole = kept.read_bytes()
    if damage == "torn":
        kept.write_bytes(whole[: len(whole) // 2])
    else:
        kept.unlink()
    assert await send.core_metadata(world.reg, wheel) == whole
    assert hops == ["core_metadata"] and kept.read_bytes() == whole  # (kept again, for the next)
    assert await send.core_metadata(world.reg, wheel) == whole and hops == ["core_metadata"]


async def test_a_copy_larger_than_the_limit_is_read_in_a_thread(world, wheel, hops, monkeypatch):
    kept = world.reg.blobs.local_path(wheel.metadata_sha256).read_bytes()
    monkeypatch.setattr(send, "FILE_LIMIT", len(kept) - 1)
    assert await send.core_metadata(world.reg, wheel) == kept and hops == ["core_metadata"]
    monkeypatch.setattr(send, "FILE_LIMIT", len(kept))  # (exactly the limit: at once)
    assert await send.core_metadata(world.reg, wheel) == kept and hops == ["core_metadata"]


def _open_blobs(world) -> list[str]:
    """The files of the blob store this process holds open."""
    named = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            named.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # (the listing's own descriptor, closed since)
            pass
    return [name for name in named if name.startswith(str(world.reg.blobs.root))]


async def test_a_file_and_any_range_of_it_are_its_bytes_read_at_once_or_streamed(client, world, tmp_path, monkeypatch):
    """Every split between reading at once and streaming (the limit below, at and above the asked
    length; chunks that divide it and don't), for the whole file and ranges of every kind: the bytes
    are the file's, a streamed answer takes one hop a chunk, and no file of the store is left open."""
    wheel = make_wheel(tmp_path, "Acme.Utils", "1.0", payload=3000)
    publish(world.reg, identity.operator(), wheel)
    whole = wheel.read_bytes()
    size = len(whole)
    auth = world.basic("reader@acme.test")
    url = f"/{WS}/acme-utils/1.0/{wheel.name}"
    hops = _counting_hops(monkeypatch)
    ranges = {None: (0, size), "bytes=0-9": (0, 10), "bytes=100-": (100, size), "bytes=-700": (size - 700, size),
              f"bytes=5-{size + 50}": (5, size), f"bytes={size - 1}-{size - 1}": (size - 1, size)}
    for limit in (0, 10, size - 1, size, 2 * size):
        for chunk in (7, 100, size, 4 * size):
            monkeypatch.setattr(send, "FILE_LIMIT", limit)
            monkeypatch.setattr(file_store, "CHUNK", chunk)
            for spec, (start, end) in ranges.items():
                hops.clear()
                # (each its own request id: a repeat would be answered from memory, without reading)
                headers = {**auth, "x-request-id": f"{limit}-{chunk}-{spec}"} | ({"range": spec} if spec else {})
                got = await client.get(url, headers=headers)
                assert got.status_code == (206 if spec else 200), (limit, chunk, spec, got.text)
                assert got.content == whole[start:end], (limit, chunk, spec)
                length = end - start
                assert hops == ([] if length <= limit else ["pread"] * -(-length // chunk)), (limit, chunk, spec)
    assert _open_blobs(world) == []


def test_a_small_file_gone_or_shorter_than_recorded_is_not_read_at_once(tmp_path):
    """(it is streamed then, which says what is wrong: missing from the store, or cut short)"""
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    assert read_at_once(path, 2, 5) == b"23456"
    assert read_at_once(path, 2, 9) is None
    path.unlink()
    assert read_at_once(path, 0, 10) is None
