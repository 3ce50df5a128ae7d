
import pygit2

from registry import layout
from registry.ledger import Change
from tests.support.ledger import P, user_change


def test_deleting_the_last_file_removes_its_directories(ledger):
    ledger.transact(lambda snap: user_change("a@example.com"))
    ledger.transact(lambda snap: Change(summary="delete", author=("x", "x@y"), time=P.at,
                                        writes={layout.user("a@example.com"): None}))
    assert set(ledger.snapshot().names("")) == {layout.README, layout.LEDGER_INFO}


def test_a_commit_rewrites_only_the_trees_on_its_path(ledger):
    """Commit cost doesn't grow with the registry: sibling shards keep their tree ids."""
    for i in range(40):
        ledger.transact(lambda snap, i=i: user_change(f"u{i}@example.com"))
    before = ledger.snapshot()
    shards_before = {name: before.tree_id(f"users/{name}") for name in before.names("users")}
    ledger.transact(lambda snap: user_change("new@example.com"))
    after = ledger.snapshot()
    changed = {name for name in after.names("users") if after.tree_id(f"users/{name}") != shards_before.get(name)}
    assert changed == {layout.shard("new@example.com")}


def test_trees_are_encoded_in_gits_own_order(tmp_path):
    """Edited entry by entry, a tree encodes exactly as libgit2 builds it (a directory sorts as if
    its name ended with '/')."""
    from registry.ledger.trees import BLOB_MODE, TREE_MODE, Tree

    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    blob, subtree = repo.create_blob(b"x"), repo.TreeBuilder().write()
    names = [(b"a", TREE_MODE), (b"a.b", BLOB_MODE), (b"a-b", TREE_MODE), (b"a0", BLOB_MODE), (b"ab", TREE_MODE),
             (b"A", BLOB_MODE)]
    tree, builder = Tree(), repo.TreeBuilder()
    for name, mode in names:
        oid = subtree if mode == TREE_MODE else blob
        tree.set(name, mode, oid.raw)
        builder.insert(name.decode(), oid,
                       pygit2.enums.FileMode.TREE if mode == TREE_MODE else pygit2.enums.FileMode.BLOB)
    expected = repo[builder.write()].read_raw()
    assert tree.encode() == expected and Tree.parse(expected).encode() == expected
    tree.remove(b"a0")
    tree.set(b"a.b", TREE_MODE, subtree.raw)  # a file becoming a directory moves
    builder.remove("a0")
    builder.insert("a.b", subtree, pygit2.enums.FileMode.TREE)
    assert tree.encode() == repo[builder.write()].read_raw()
