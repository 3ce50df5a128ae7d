import time

import pygit2
import pytest
from pygit2.enums import ObjectType

from registry import layout
from registry.ledger.packs import MemoryObjects, Recent, RecentObjects
from tests.support.ledger import git, user_change

# Every way a reader asks for an object by its whole id (pygit2 1.21 sends `repo[id]` and
# `odb.read` through the backends' prefix read, not their read): objects held only in memory, by
# the writer's backend and by the readers' window on this process's last commits.
READS = {
    "repo[id]": lambda repo, oid: repo[oid].read_raw(),
    "repo.get": lambda repo, oid: repo.get(oid).read_raw(),
    "odb.read": lambda repo, oid: repo.odb.read(oid)[1],
    "odb.read_header": lambda repo, oid: repo.odb.read_header(oid)[1],
    "in": lambda repo, oid: oid in repo,
}


def _memory(tmp_path, kind):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    if kind == "writer":
        backend = MemoryObjects()
        repo.odb.add_backend(backend, 1000)
        return repo, backend.put
    recent = Recent()
    repo.odb.add_backend(RecentObjects(recent), 0)

    def put(type_, data):
        writer = MemoryObjects()
        oid = writer.put(type_, data)
        recent.add(writer.take())
        return oid
    return repo, put


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("kind", ["writer", "recent"])
def test_objects_held_in_memory_are_read_by_every_read_of_a_whole_id(tmp_path, kind, read):
    repo, put = _memory(tmp_path, kind)
    oid = put(ObjectType.BLOB, b"hello")
    answer = READS[read](repo, oid)
    assert answer == {"in": True, "odb.read_header": 5}.get(read, b"hello")
    missing = pygit2.Oid(hex="1" * 40)
    with pytest.raises(KeyError):  # (what no backend holds is missing, as ever)
        repo.odb.read(missing)
    with pytest.raises((KeyError, ValueError)):  # (a prefix is never answered from memory)
        repo[str(oid)[:10]]


def test_each_commit_is_one_pack_and_repacks_fold_them(ledger):
    ledger.maybe_repack = lambda **kwargs: False  # no background folding while we count
    for i in range(30):
        ledger.transact(lambda snap, i=i: user_change(f"p{i}@example.com"))
    assert ledger.pack_count() == 30
    pack = sorted((ledger.path / "objects" / "pack").glob("*.pack"))[0]
    assert git(ledger, "verify-pack", "-v", str(pack)).count(" commit ") == 1  # git reads what we wrote
    git(ledger, "fsck", "--strict", "--full")
    ledger.repack()  # geometric: only the small packs are rewritten
    assert ledger.pack_count() < 30
    ledger.repack(full=True)
    loose = int(git(ledger, "count-objects", "-v").split("count: ")[1].split()[0])
    assert ledger.pack_count() == 1 and loose == 0
    assert ledger.snapshot().exists(layout.user("p29@example.com"))
    del ledger.maybe_repack
    assert not ledger.maybe_repack()  # nothing piled up
    git(ledger, "fsck", "--strict", "--full")


def test_packs_pile_up_only_until_the_next_maintenance(ledger):
    for i in range(100):
        ledger.transact(lambda snap, i=i: user_change(f"q{i}@example.com"))
    for _ in range(200):  # the writer starts background repacks as packs pile up
        if not ledger._repacker.running.locked():
            break
        time.sleep(0.05)
    assert ledger.pack_count() < 60
    assert len(git(ledger, "log", "--format=%s").splitlines()) == 101
    git(ledger, "fsck", "--strict", "--full")
