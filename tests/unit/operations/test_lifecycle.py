"""Renaming and deleting workspaces, projects and repositories: a repository's packages follow its
new slug in the same commit; nothing is deleted while something is inside, and the refusal says
what is left and how to remove it; a deleted workspace keeps its reserved names."""

from __future__ import annotations

import pytest

from registry import identity, layout, model, operations
from registry.audit import Action, T, action
from registry.errors import Conflict, Denied, Invalid, NotFound
from registry.reads import Reader
from registry.reads.records import list_packages, owns
from registry.webhooks import secrets
from tests.support.world import WS

OP = identity.operator()
ADMIN, OWNER, DEV = "wsadmin@acme.test", "owner@acme.test", "dev@acme.test"


def _last(world):
    return world.reg.ledger.commit(world.reg.ledger.head())


def test_a_repository_rename_relinks_its_packages_in_the_same_commit(world):
    reg = world.reg
    before = reg.snapshot().get(layout.repository(WS, "utils"), model.Repository)
    renamed = operations.rename_repository(reg, world.principal(OWNER), "api", WS, "utils", "tools")
    commit = _last(world)
    assert action(commit) is Action.RENAME_REPOSITORY
    assert (commit.trailer(T.REPOSITORY), commit.trailer(T.RENAMED_FROM)) == ("tools", "utils")
    snap = reg.snapshot()
    assert not snap.exists(layout.repository(WS, "utils"))
    assert renamed == model.Repository(slug="tools", uuid=before.uuid, project="CORE", grants=before.grants,
                                       created=before.created)
    assert {p.name: p.repository for p in list_packages(snap, WS)} == {
        "acme-utils": "tools", "public-pkg": "public-lib", "secret-pkg": "secret"}
    # the people who had a role on it keep it under the new slug; the old one names nothing
    read = Reader(reg, world.principal(DEV))
    assert read.role(WS, "tools") == "write" and read.package(WS, "acme-utils").repository.slug == "tools"
    with pytest.raises(NotFound):
        read.repository(WS, "utils")


def test_a_renamed_repository_keeps_its_claim_on_the_names_it_deleted(world):
    """A deleted package's name may come back on publish only from its own repository: renaming the
    repository must carry that claim, not leave it with a slug that names nothing (or, later, another
    repository created under the old slug)."""
    reg = world.reg
    operations.create_package(reg, OP, "cli", WS, "gone-pkg", "utils")
    operations.delete_package(reg, OP, "cli", WS, "gone-pkg")
    operations.create_package(reg, OP, "cli", WS, "other-gone", "secret")
    operations.delete_package(reg, OP, "cli", WS, "other-gone")
    operations.rename_repository(reg, OP, "cli", WS, "utils", "tools")
    snap = reg.snapshot()
    claims = {n: snap.get(layout.deleted_files(WS, n), model.DeletedFiles).repository
              for n in ("gone-pkg", "other-gone")}
    assert claims == {"gone-pkg": "tools", "other-gone": "secret"}


def test_a_rename_or_delete_refused_changes_nothing(world):
    reg = world.reg
    head = reg.ledger.head()
    cases = [
        (Denied, "admin permission on repository acme/utils",
         lambda: operations.rename_repository(reg, world.principal(DEV), "api", WS, "utils", "x")),
        (Denied, "admin permission on repository acme/utils",
         lambda: operations.delete_repository(reg, world.principal(DEV), "api", WS, "utils")),
        (Conflict, "acme/secret already exists",
         lambda: operations.rename_repository(reg, OP, "cli", WS, "utils", "secret")),
        (Invalid, "Invalid repository slug", lambda: operations.rename_repository(reg, OP, "cli", WS, "utils", "Bad/")),
        (NotFound, "acme/nothing does not exist", lambda: operations.rename_repository(reg, OP, "cli", WS, "nothing",
                                                                                      "x")),
        (Conflict, "1 linked package: acme-utils.*registry package delete acme NAME",
         lambda: operations.delete_repository(reg, OP, "cli", WS, "utils")),
        (Conflict, "2 repositories: public-lib, secret.*registry repo delete acme/REPO",
         lambda: operations.delete_project(reg, OP, "cli", WS, "LABS")),
        (Denied, "admin permission on workspace acme",
         lambda: operations.delete_project(reg, world.principal(OWNER), "api", WS, "LABS")),
        (Conflict, "3 packages .*3 repositories .*2 projects ",
         lambda: operations.delete_workspace(reg, world.principal(ADMIN), "api", WS)),
        (Denied, "admin permission on workspace acme",
         lambda: operations.delete_workspace(reg, world.principal(OWNER), "api", WS)),
        (Invalid, "slug can't change", lambda: operations.rename_workspace(reg, OP, "cli", WS, "A", slug="other")),
        (Invalid, "display name", lambda: operations.rename_workspace(reg, OP, "cli", WS, " ")),
        (Conflict, "already called", lambda: operations.rename_workspace(reg, OP, "cli", WS, "Acme")),
        (Denied, "admin permission on workspace acme",
         lambda: operations.rename_project(reg, world.principal(OWNER), "api", WS, "CORE", "C")),
        (NotFound, "Project NOPE does not exist", lambda: operations.rename_project(reg, OP, "cli", WS, "nope", "N")),
    ]
    for error, words, call in cases:
        with pytest.raises(error, match=words):
            call()
    assert reg.ledger.head() == head


def test_display_names_change_and_keys_stay(world):
    reg, admin = world.reg, world.principal(ADMIN)
    assert operations.rename_workspace(reg, admin, "api", WS, "Acme Inc.").name == "Acme Inc."
    assert action(_last(world)) is Action.RENAME_WORKSPACE
    assert operations.rename_workspace(reg, admin, "api", WS, "Acme", slug=WS).name == "Acme"  # (its own slug: fine)
    project = operations.rename_project(reg, admin, "api", WS, "core", "Core libraries")
    assert (project.key, project.name) == ("CORE", "Core libraries")
    assert action(_last(world)) is Action.RENAME_PROJECT


def test_emptied_out_everything_is_deleted_and_the_reserved_names_stay(world):
    reg, admin = world.reg, world.principal(ADMIN)
    operations.set_trust(reg, OP, "cli", WS, "https://issuer.example/oidc")
    for name in ("acme-utils", "public-pkg", "secret-pkg"):
        operations.delete_package(reg, admin, "api", WS, name)
    for repo in ("utils", "public-lib", "secret"):
        operations.delete_repository(reg, admin, "api", WS, repo)
        assert action(_last(world)) is Action.DELETE_REPOSITORY
    for key in ("CORE", "LABS"):
        operations.delete_project(reg, admin, "api", WS, key)
    operations.delete_workspace(reg, admin, "api", WS)
    commit = _last(world)
    assert action(commit) is Action.DELETE_WORKSPACE and commit.trailer(T.WORKSPACE) == WS
    snap = reg.snapshot()
    assert not snap.exists(layout.workspace(WS)) and not snap.exists(layout.trust(WS))
    assert owns(snap, WS, "acme-utils") and owns(snap, WS, "secret-pkg")  # (never taken from upstream)
    assert Reader(reg, OP).workspaces() == []
    # made again, it still owns those names, and nothing else of the old one
    operations.create_workspace(reg, OP, "cli", WS)
    snap = reg.snapshot()
    assert owns(snap, WS, "acme-utils") and snap.get(layout.workspace(WS), model.Workspace).admins == []
    assert list_packages(snap, WS) == []
    assert Reader(reg, OP).trusts(WS) == []  # (the old workspace's issuers are not the new one's)


def test_a_repository_admin_deletes_their_empty_repository_and_a_workspace_admin_any(world):
    reg = world.reg
    operations.create_repository(reg, OP, "cli", WS, "scratch", "CORE")
    operations.grant(reg, OP, "cli", WS, DEV, "admin", repository="scratch")
    head = reg.ledger.head()
    reader = world.principal("reader@acme.test")
    with pytest.raises(NotFound, match="acme/scratch does not exist"):  # (one they can't read: as a missing one)
        operations.delete_repository(reg, reader, "api", WS, "scratch")
    with pytest.raises(NotFound, match="acme/scratch does not exist"):
        operations.rename_repository(reg, reader, "api", WS, "scratch", "other")
    with pytest.raises(Denied):  # (one they read: a refusal that says what it takes)
        operations.delete_repository(reg, reader, "api", WS, "utils")
    assert reg.ledger.head() == head
    operations.delete_repository(reg, world.principal(DEV), "api", WS, "scratch")
    assert not reg.snapshot().exists(layout.repository(WS, "scratch"))


HOOK_URL = "https://hooks.example.com/registry"


def test_a_repository_rename_carries_its_hooks_and_a_delete_removes_them(world):
    """A repository's hooks match events by its slug: renamed, they follow it in the same commit;
    deleted, they go with it (and their secrets), while the workspace's other hooks stay."""
    reg = world.reg
    operations.add_webhook(reg, OP, "cli", WS, "utils-ci", HOOK_URL, ["publish"], repository="utils",
                           signing="hmac-sha256", secret="s" * 20)
    operations.add_webhook(reg, OP, "cli", WS, "everything", HOOK_URL, ["*"])
    operations.create_repository(reg, OP, "cli", WS, "scratch", "CORE")
    operations.add_webhook(reg, OP, "cli", WS, "scratch-ci", HOOK_URL, ["publish"], repository="scratch",
                           signing="hmac-sha256", secret="t" * 20)
    operations.rename_repository(reg, OP, "cli", WS, "utils", "tools")
    snap = reg.snapshot()
    assert action(_last(world)) is Action.RENAME_REPOSITORY
    assert {h.name: h.repository for h in snap.records(layout.webhooks_dir(WS), model.Webhook)} == {
        "utils-ci": "tools", "everything": None, "scratch-ci": "scratch"}
    operations.delete_repository(reg, OP, "cli", WS, "scratch")
    snap = reg.snapshot()
    assert action(_last(world)) is Action.DELETE_REPOSITORY
    assert sorted(snap.names(layout.webhooks_dir(WS))) == ["everything.json", "utils-ci.json"]
    assert secrets.entries(reg.settings, WS, "scratch-ci") == []
    assert secrets.stored(reg.settings, WS, snap.get(layout.webhook(WS, "utils-ci"), model.Webhook)).secret == "s" * 20


def test_a_deleted_workspace_takes_its_hooks_and_their_secrets(world):
    """Made again under the same slug (by anyone), a workspace must not tell the old one's hooks."""
    reg, admin = world.reg, world.principal(ADMIN)
    operations.add_webhook(reg, OP, "cli", WS, "ci", HOOK_URL, ["*"], signing="hmac-sha256", secret="s" * 20)
    for name in ("acme-utils", "public-pkg", "secret-pkg"):
        operations.delete_package(reg, admin, "api", WS, name)
    for repo in ("utils", "public-lib", "secret"):
        operations.delete_repository(reg, admin, "api", WS, repo)
    for key in ("CORE", "LABS"):
        operations.delete_project(reg, admin, "api", WS, key)
    operations.delete_workspace(reg, admin, "api", WS)
    assert not reg.snapshot().exists(layout.webhook(WS, "ci"))
    assert secrets.entries(reg.settings, WS, "ci") == []
    operations.create_workspace(reg, OP, "cli", WS)
    assert reg.snapshot().names(layout.webhooks_dir(WS)) == []
