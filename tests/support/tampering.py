"""What someone with write access to a data directory could do to the ledger behind the registry's
back, with its own signing key in hand: the rewrites tests/e2e/witness/test_witness.py must see caught."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pygit2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import layout
from registry.ledger import codec, with_signature
from registry.model import SigningKeys
from registry.trust import keys as signing
from registry.trust import sshsig

REF = "refs/heads/main"
VANDAL = pygit2.Signature("mallory", "mallory@example.com")


def ledger(data: Path) -> pygit2.Repository:
    return pygit2.Repository(str(data / "ledger.git"))


def commit_key(data: Path) -> tuple[Path, Ed25519PrivateKey]:
    """The registry's own current commit key, as its files hold it (the attacker has it too)."""
    repo = ledger(data)
    record = codec.decode(repo[repo.head.target].tree[layout.SIGNING_KEYS].data, SigningKeys)
    store = signing.KeyStore(data / "keys")
    path = store.file("commit", signing.current(record, "commit").public_key)
    return path, sshsig.load_private(path.read_bytes())


def _git(*args: str, cwd: Path | None = None) -> None:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def amend_last(data: Path, work: Path) -> None:
    """`git commit --amend` in a clone, signed with the registry's key by git itself, force-pushed."""
    key, _ = commit_key(data)
    _git("clone", "--quiet", str(data / "ledger.git"), str(work))
    _git("-c", "user.name=mallory", "-c", "user.email=mallory@example.com", "-c", "gpg.format=ssh",
         "-c", f"user.signingKey={key}", "commit", "--amend", "--quiet", "-S", "-m", "nothing to see here", cwd=work)
    _git("push", "--quiet", "--force", "origin", "HEAD:main", cwd=work)


def reset(data: Path, back: int) -> str:
    """Move main back ``back`` commits (as `git reset --hard HEAD~N` would), dropping the journal that
    would replay them (the one trace the registry itself keeps)."""
    repo = ledger(data)
    target = repo.revparse_single(f"main~{back}").id
    _git("-C", str(data / "ledger.git"), "update-ref", REF, str(target))
    (data / "ledger.git" / "registry-journal").write_bytes(b"")
    return str(target)


def _resign(repo: pygit2.Repository, parent: pygit2.Oid | None, old: pygit2.Commit, tree: pygit2.Oid,
            key: Ed25519PrivateKey) -> pygit2.Oid:
    content = repo.create_commit_string(old.author, old.committer, old.message, tree,
                                        [parent] if parent else []).encode()
    return repo.odb.write(pygit2.enums.ObjectType.COMMIT, with_signature(content, sshsig.sign(key, content)))


def rebuild(data: Path, since: int, edit, key: Ed25519PrivateKey | None = None,
            parent: pygit2.Oid | None = None) -> str:
    """Re-create the last ``since`` commits (0: all of them) with ``edit(tree) -> tree id`` applied
    to each tree, every one re-signed (default: with the registry's own key), on ``parent`` (default:
    where they were); force main there."""
    repo = ledger(data)
    key = key or commit_key(data)[1]
    chain = list(repo.walk(repo.head.target, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE))
    start = len(chain) - since if since else 0
    if parent is None and start:
        parent = chain[start - 1].id
    for old in chain[start:]:
        parent = _resign(repo, parent, old, edit(old.tree), key)
    _git("-C", str(data / "ledger.git"), "update-ref", REF, str(parent))
    (data / "ledger.git" / "registry-journal").write_bytes(b"")
    return str(parent)


def tree_with(repo: pygit2.Repository, tree: pygit2.Tree, changes: dict[str, bytes | None]) -> pygit2.Oid:
    index = pygit2.Index()
    index.read_tree(tree)
    for path, data in changes.items():
        if data is None:
            if path in index:
                index.remove(path)
        else:
            index.add(pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB))
    return index.write_tree(repo)


def edit_record(data: Path, since: int, path: str, old: bytes, new: bytes) -> str:
    """Edit a record in the commit ``since`` back from the tip and in every one after it; force main."""
    repo = ledger(data)

    def edit(tree):
        try:
            blob = tree[path].data
        except KeyError:
            return tree.id
        return tree_with(repo, tree, {path: blob.replace(old, new)})

    return rebuild(data, since + 1, edit)


def delete_commit(data: Path, back: int) -> str:
    """Drop the commit ``back`` from the tip: the ones after it are made again on its parent, with
    its change undone in each; force main."""
    repo = ledger(data)
    dropped = repo.revparse_single(f"main~{back}")
    before = dropped.parents[0].tree
    undo = {}
    for patch in before.diff_to_tree(dropped.tree):
        path = patch.delta.new_file.path or patch.delta.old_file.path
        undo[path] = before[path].data if path in before else None
    return rebuild(data, back, lambda tree: tree_with(repo, tree, undo), parent=dropped.parents[0].id)


def swap_keys(data: Path) -> str:
    """New key files in the data directory and a signing-keys record naming them, committed on top
    and signed with the new key (not the one the ledger named): the registry signs on with them."""
    repo = ledger(data)
    tip = repo[repo.head.target]
    record = codec.decode(tip.tree[layout.SIGNING_KEYS].data, SigningKeys)
    store = signing.KeyStore(data / "keys")
    keys = []
    for k in record.keys:
        if k.valid_until is None:
            public = store.create(k.purpose)
            k = type(k)(**{**{f: getattr(k, f) for f in k.__struct_fields__}, "public_key": public,
                           "fingerprint": sshsig.fingerprint(sshsig.parse_public_line(public))})
        keys.append(k)
    forged = SigningKeys(principal=record.principal, keys=keys)
    new_key, _ = store.private("commit", signing.current(forged, "commit").public_key)
    tree = tree_with(repo, tip.tree, {layout.SIGNING_KEYS: codec.encode(forged)})
    content = repo.create_commit_string(VANDAL, VANDAL, "routine maintenance\n", tree, [tip.id]).encode()
    oid = repo.odb.write(pygit2.enums.ObjectType.COMMIT, with_signature(content, sshsig.sign(new_key, content)))
    _git("-C", str(data / "ledger.git"), "update-ref", REF, str(oid))
    return str(oid)


def resign_everything(data: Path) -> str:
    """The whole history re-signed with a new key, the signing-keys record of every commit naming it
    (and a new checkpoint key): a ledger that is consistent in itself, but not the one witnessed."""
    repo = ledger(data)
    store = signing.KeyStore(data / "keys")
    publics = {p: store.create(p) for p in ("commit", "checkpoint")}
    key, _ = store.private("commit", publics["commit"])

    def edit(tree):
        try:
            record = codec.decode(tree[layout.SIGNING_KEYS].data, SigningKeys)
        except KeyError:
            return tree.id
        keys = [type(k)(**{**{f: getattr(k, f) for f in k.__struct_fields__}, "public_key": publics[k.purpose],
                           "fingerprint": sshsig.fingerprint(sshsig.parse_public_line(publics[k.purpose]))})
                for k in record.keys]
        return tree_with(repo, tree,
                         {layout.SIGNING_KEYS: codec.encode(SigningKeys(principal=record.principal, keys=keys))})

    return rebuild(data, 0, edit, key)
