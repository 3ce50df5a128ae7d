"""registry/web/send.py: a file's core metadata, read at once from the copy kept here when it is
whole and small, else found or extracted again in a worker thread, and the same bytes either way."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from registry.web import send
from tests.support.world import publish


@pytest.fixture
async def wheel(world, dists):
    """A wheel whose metadata was asked for once: that made the copy kept here."""
    _, built = dists[("Acme.Utils", "1.0.0")]
    found = publish(world.reg, world.principal("dev@acme.test"), built).file
    await send.core_metadata(world.reg, found)
    return found


@pytest.fixture
def hops(wheel, monkeypatch):
    """The calls that went to a worker thread (each still made, for its answer), once `wheel` is ready."""
    made: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(fn, *args, **kwargs):
        made.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(send.anyio.to_thread, "run_sync", counted)
    return made


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
