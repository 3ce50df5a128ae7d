"""When a record the ledger can't read back did land (an older release wrote it), nothing breaks for
everyone else, `registry verify` names it by its path, and `registry repair` takes it out in one
signed commit, after which verify is clean and every page answers 200 (issue 21, item 1).

Each bad record is written the way the older release did: the model's bounds and the ledger's
guard are bypassed, the commit made through the normal (signed) path."""

from __future__ import annotations

import msgspec
import pytest

from registry import audit, identity, layout, model, operations, repair
from registry.audit import Action, T
from registry.cli import main as cli_main
from registry.errors import FilenameSpent, Forbidden
from registry.ledger import guard
from registry.operations._common import make_change
from registry.reads import Reader, records, usage
from registry.trust import commit_signatures as signatures
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

OP = identity.operator()
HUGE = "a" * 100_000  # libgit2 can't parse a tree holding this name
LONG = "b" * 300  # libgit2 can, but no filesystem can hold it


def sibling_of(name: str) -> str:
    """A well-formed package name in the same tree shard as ``name`` (whose tree libgit2 may refuse)."""
    return next(f"sib{i}" for i in range(100_000) if layout.shard(f"sib{i}") == layout.shard(name))


def land(reg, monkeypatch, writes: dict, facts=()) -> str:
    """Commit ``writes`` as an older release did: nothing bounded, nothing guarded, but signed."""
    with monkeypatch.context() as m:
        m.setattr(guard, "check", lambda change: None)
        return reg.transact(lambda snap: make_change(OP, "cli", Action.CREATE_PACKAGE, "an older release's commit",
                                                     writes, (T.WORKSPACE, WS), *facts)).commit.id


def package(name: str) -> model.Package:
    return model.Package(name=name, display_name=name, workspace=WS, repository="public-lib",
                         created=OP.provenance("cli"))


def user(email: str, name: str) -> model.User:
    return model.User(email=email, name=name, created=OP.provenance("cli"))


BAD = {
    "a package name of 100,000 bytes": lambda: {layout.package(WS, HUGE): package(HUGE)},
    "a package name of 300 bytes": lambda: {layout.package(WS, LONG): package(LONG)},
    "an email of 400 bytes": lambda: {layout.user("u@" + "d" * 398): user("u@" + "d" * 398, "U")},
    "a record that doesn't decode": lambda: {layout.version(WS, "public-pkg", "1.0"): b'{"package": 42'},
}
WHAT = {  # what verify and repair say of each, beside its path
    "a package name of 100,000 bytes": ("...[100000 bytes]", "libgit2 can't parse the tree that holds it"),
    "a package name of 300 bytes": ("...[300 bytes]", "no filesystem can hold it"),
    "an email of 400 bytes": ("...[405 bytes]", "no filesystem can hold it"),
    "a record that doesn't decode": ("1.0.json", "does not match the Version schema"),
}


async def pages_answer(client, world, sibling: str) -> None:
    """What everyone reads: the indexes, the lists, the UI, the neighbour in the bad record's shard."""
    owner = world.basic("owner@acme.test")
    for url, headers in ((f"/{WS}/", owner), ("/", owner), (f"/{WS}/", {}), (f"/-/{WS}/", {}),
                         (f"/api/workspaces/{WS}/packages", owner), (f"/api/workspaces/{WS}/packages", {}),
                         (f"/{WS}/{sibling}/", owner), (f"/api/workspaces/{WS}/packages/pypi/{sibling}", owner),
                         (f"/-/{WS}/packages/{sibling}/", {})):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    listed = (await client.get(f"/api/workspaces/{WS}/packages", headers=owner)).json()["items"]
    assert sibling in [i["name"] for i in listed]


@pytest.mark.parametrize("kind", BAD)
async def test_a_bad_record_is_named_by_verify_and_removed_by_repair(client, world, monkeypatch, capsys, kind):
    reg = world.reg
    data = ["--data", str(reg.settings.data_path)]
    bad = BAD[kind]()
    sibling = sibling_of(HUGE)
    operations.create_package(reg, OP, "cli", WS, sibling, "public-lib")
    landed = land(reg, monkeypatch, bad)

    # nothing breaks for anyone else meanwhile: reads, and writes in the same tree
    await pages_answer(client, world, sibling)
    neighbour = next(f"nb{i}" for i in range(100_000) if layout.shard(f"nb{i}") == layout.shard(HUGE))
    operations.create_package(reg, OP, "cli", WS, neighbour, "public-lib")
    operations.delete_package(reg, OP, "cli", WS, neighbour)
    # verify names it by its path, and doesn't crash on it
    assert cli_main([*data, "verify", "--quick"]) == 1
    out = capsys.readouterr().out
    shown, reason = WHAT[kind]
    problem = next(line for line in out.splitlines() if line.startswith("PROBLEM") and shown in line)
    assert reason in problem and "1 problems" in out

    # repair: first what it would do, changing nothing; then one signed commit that says what and why
    head = reg.ledger.head()
    assert cli_main([*data, "repair"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would remove ") and shown in out and "registry repair --apply" in out
    assert reg.ledger.head() == head
    assert cli_main([*data, "repair", "--apply"]) == 0
    assert "removed 1 in commit" in capsys.readouterr().out
    commit = reg.ledger.commit(reg.ledger.head())
    assert str(reg.ledger.repo()[commit.id].parents[0].id) == head
    assert audit.action(commit) is Action.REPAIR and commit.trailer(T.ACTOR) == OP.actor
    message = reg.ledger.repo()[commit.id].message
    assert shown in message and reason in message
    assert signatures.check_history(reg.ledger.repo(), commit.id).ok  # signed by the commit key, like every other
    assert not reg.snapshot().exists(next(iter(bad)))

    # both commits read as changes like any other (the bad one's trees included)
    admin = Reader(reg, world.principal("wsadmin@acme.test"))
    for made in (landed, commit.id) if commit.trailer(T.WORKSPACE) else (landed,):  # (a user is in no workspace)
        assert {r.path for r in admin.commit_changes(WS, made).records} == set(bad)

    # after which all is well: verify is clean, every page answers, the neighbour can be deleted
    assert cli_main([*data, "verify", "--quick"]) == 0, capsys.readouterr().out
    capsys.readouterr()
    await pages_answer(client, world, sibling)
    assert cli_main([*data, "package", "delete", WS, sibling]) == 0
    assert cli_main([*data, "repair"]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_takes_only_what_it_is_given(world, monkeypatch, capsys):
    reg = world.reg
    data = ["--data", str(reg.settings.data_path)]
    land(reg, monkeypatch, {**BAD["a package name of 300 bytes"](), **BAD["an email of 400 bytes"]()})
    head = reg.ledger.head()
    assert cli_main([*data, "repair", "workspaces/acme/repositories/utils.json"]) == 1  # (healthy: not for repair)
    assert "is not among what `registry repair` would remove" in capsys.readouterr().err
    assert cli_main([*data, "repair", "--apply", f"workspaces/{WS}/packages"]) == 0
    assert reg.ledger.head() != head
    assert [d.path for d in repair.damaged(reg.snapshot())] == [layout.user("u@" + "d" * 398)]


def test_a_record_that_only_breaks_a_newer_rule_is_noted_and_kept(world, monkeypatch, capsys):
    """A person's name holding '<', which an older release accepted: it reads back, so it is kept
    (their commits are authored by their email) and only noted; it goes only when named."""
    reg = world.reg
    data = ["--data", str(reg.settings.data_path)]
    path = layout.user("eve@acme.test")
    land(reg, monkeypatch, {path: user("eve@acme.test", "Eve <eve@evil>")})
    secret, _ = operations.create_token(reg, OP, "cli", "eve@acme.test")
    eve = identity.check_token(reg.snapshot(), "eve@acme.test", secret)
    operations.create_token(reg, eve, "api", "eve@acme.test", "read")
    assert reg.ledger.commit(reg.ledger.head()).author_name == "eve@acme.test"
    assert cli_main([*data, "verify", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "note: users/" in out and "Names can't hold '<' or '>'" in out and "(kept;" in out
    head = reg.ledger.head()
    assert cli_main([*data, "repair", "--apply"]) == 0 and "nothing to repair" in capsys.readouterr().out
    assert reg.ledger.head() == head and reg.snapshot().exists(path)
    assert cli_main([*data, "repair", "--apply", path]) == 0
    assert "removed 1 in commit" in capsys.readouterr().out and not reg.snapshot().exists(path)


def test_only_the_operator_repairs(world):
    with pytest.raises(Forbidden):
        repair.repair(world.reg, world.principal("wsadmin@acme.test"), apply=True)


def test_a_version_repair_removes_spends_its_filenames(world, monkeypatch, tmp_path, capsys):
    """A published version whose record breaks today's rules (a yank reason of 600 characters), once
    named to repair, goes as a deletion does: its filenames are never accepted again."""
    reg = world.reg
    wheel = make_wheel(tmp_path, "public-pkg", "1.0")
    published = publish(reg, OP, wheel)
    path = layout.version(WS, "public-pkg", layout.version_key("1.0"))
    land(reg, monkeypatch, {path: msgspec.structs.replace(published.version, yanked=True, yanked_reason="r" * 600)})
    assert cli_main(["--data", str(reg.settings.data_path), "repair", "--apply", path]) == 0
    assert "Yank reasons are at most 512 characters; this one has 600" in capsys.readouterr().out
    snap = reg.snapshot()
    assert records.get_version(snap, WS, "public-pkg", "1.0") is None
    # its files no longer count: the usage figure is written again in repair's commit (verify: no drift)
    figure = snap.get(layout.usage(WS), model.StorageUsage)
    assert figure == usage.counted(snap, WS) == model.StorageUsage(bytes=0, files=0)
    with pytest.raises(FilenameSpent):
        publish(reg, OP, wheel)
