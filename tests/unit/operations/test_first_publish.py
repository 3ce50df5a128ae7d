"""Creating a package on its first publish, where its repository allows it: the option's verb, which
repository a new name is linked to, the one commit, and every refusal (a 403 naming the package and
what creates it, that changes nothing)."""

from __future__ import annotations

import pytest

from pipelines.verify import Verifier
from registry import identity, layout, model, operations
from registry.audit import Action, T, creates_package
from registry.errors import Conflict, Denied, Forbidden, NotFound
from registry.operations._common import make_change
from registry.reads import Reader
from tests.support.helpers import make_wheel
from tests.support.pipelines import REPO_UUID
from tests.support.world import WS, publish

OP = identity.operator()


def allow(world, repo: str, on: bool = True) -> None:
    operations.set_create_on_publish(world.reg, OP, "cli", WS, repo, on)


def refused(world, who, path, error=Forbidden) -> str:
    """The refusal's words; and that it changed nothing."""
    head = world.reg.ledger.head()
    with pytest.raises(error) as caught:
        publish(world.reg, who, path)
    assert world.reg.ledger.head() == head
    return caught.value.message


def test_the_option_is_a_repository_admins_and_one_commit(world):
    reg = world.reg
    head = reg.ledger.head()
    for who in ("dev@acme.test", "reader@acme.test", "outsider@acme.test", "dev-readonly"):
        with pytest.raises((Denied, Forbidden, NotFound)) as caught:  # (404: who may not read it)
            operations.set_create_on_publish(reg, world.principal(who), "api", WS, "utils", True)
        assert caught.value.status in (403, 404)
    assert reg.ledger.head() == head
    r = operations.set_create_on_publish(reg, world.principal("owner@acme.test"), "api", WS, "utils", True)
    assert r.create_packages_on_publish and reg.snapshot().get(layout.repository(WS, "utils"),
                                                               model.Repository) == r
    commit = reg.ledger.commit(reg.ledger.head())
    assert commit.trailer(T.ACTION) == Action.SET_REPOSITORY_OPTION and commit.trailer(T.REPOSITORY) == "utils"
    head = reg.ledger.head()
    operations.set_create_on_publish(reg, world.principal("wsadmin@acme.test"), "api", WS, "utils", True)
    assert reg.ledger.head() == head  # (already so: nothing to commit)
    operations.set_create_on_publish(reg, world.principal("wsadmin@acme.test"), "api", WS, "utils", False)
    assert not reg.snapshot().get(layout.repository(WS, "utils"), model.Repository).create_packages_on_publish


def test_off_a_new_name_is_a_403_naming_it_and_what_creates_it(world, tmp_path):
    for who in ("dev@acme.test", "owner@acme.test", "reader@acme.test", "outsider@acme.test"):
        said = refused(world, world.principal(who), make_wheel(tmp_path, "Brand.New", "1.0"))
        assert "Package 'brand-new' does not exist in workspace acme" in said
        assert "`registry package create acme brand-new --repo REPO`" in said and "/-/acme/new" in said
        assert "`registry repo set acme/REPO --create-on-publish`" in said
    # a package the caller may not read is answered in the same words as a missing one
    hidden = refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path, "secret-pkg", "1.0"))
    assert hidden == refused(world, world.principal("dev@acme.test"),
                             make_wheel(tmp_path, "brand-new", "1.0")).replace("brand-new", "secret-pkg")


def test_on_a_writers_publish_creates_the_package_linked_there_in_the_same_commit(world, tmp_path):
    reg = world.reg
    allow(world, "utils")
    before = reg.ledger.head()
    done = publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Brand.New", "1.0"))
    assert done.created and done.commit is not None
    assert [str(p) for p in reg.ledger.repo()[done.commit.id].parent_ids] == [before]  # one commit, both records
    snap = reg.snapshot()
    package = snap.get(layout.package(WS, "brand-new"), model.Package)
    assert (package.repository, package.display_name, package.created.by) == ("utils", "Brand.New", "dev@acme.test")
    assert snap.get(layout.version(WS, "brand-new", "1"), model.Version).files[0].filename == done.file.filename
    assert done.commit.trailers_named(T.ACTION) == [Action.PUBLISH, Action.CREATE_PACKAGE]
    assert done.commit.trailer(T.REPOSITORY) == "utils" and creates_package(done.commit)
    # the package's history begins at that commit; the next publish creates nothing
    reg.history.catch_up()
    assert Reader(reg, world.principal("dev@acme.test")).created_by(WS, "brand-new") == done.commit.id
    again = publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Brand.New", "1.1"))
    assert not again.created and not creates_package(again.commit)
    # a reader of the repository still may not publish, let alone create
    assert "no repository you may publish to" in refused(
        world, world.principal("reader@acme.test"), make_wheel(tmp_path, "other-new", "1.0"))


def test_several_repositories_that_create_are_named_and_none_is_guessed(world, tmp_path):
    allow(world, "utils")
    allow(world, "secret")
    operations.grant(world.reg, OP, "cli", WS, "dev@acme.test", "write", repository="secret")
    said = refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path, "brand-new", "1.0"))
    assert "several repositories you may publish to create packages on publish (acme/secret, acme/utils)" in said
    assert "registry package create acme brand-new --repo REPO" in said
    # one whose option is on but where they may only read doesn't count
    operations.grant(world.reg, OP, "cli", WS, "dev@acme.test", "read", repository="secret")
    assert publish(world.reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "brand-new", "1.0")).created


def test_a_name_taken_by_a_package_the_writer_may_not_read_is_a_conflict(world, tmp_path):
    allow(world, "utils")
    said = refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path, "secret-pkg", "1.0"), Conflict)
    assert "'secret-pkg' is taken in workspace acme" in said and "secret" not in said.replace("secret-pkg", "")


def test_a_name_a_deleted_package_of_another_repository_reserves_stays_reserved(world, tmp_path):
    reg = world.reg
    operations.create_package(reg, OP, "cli", WS, "gone-pkg", "secret")
    publish(reg, OP, make_wheel(tmp_path, "gone-pkg", "1.0"))
    operations.delete_package(reg, OP, "cli", WS, "gone-pkg")
    assert reg.snapshot().get(layout.deleted_files(WS, "gone-pkg"), model.DeletedFiles).repository == "secret"
    allow(world, "utils")
    (tmp_path / "b").mkdir()
    said = refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path / "b", "gone-pkg", "2.0"))
    assert "it was deleted, and was not acme/utils's" in said
    assert "registry package create acme gone-pkg --repo utils" in said
    # from the repository it was deleted from, it is created again (its spent filenames stay spent)
    allow(world, "secret")
    operations.grant(reg, OP, "cli", WS, "dev@acme.test", "write", repository="secret")
    allow(world, "utils", on=False)
    assert publish(reg, world.principal("dev@acme.test"), make_wheel(tmp_path / "b", "gone-pkg", "2.0")).created
    assert reg.snapshot().get(layout.package(WS, "gone-pkg"), model.Package).repository == "secret"


def test_a_deleted_package_an_older_release_recorded_without_its_repository_stays_reserved(world, tmp_path):
    reg = world.reg
    record = model.DeletedFiles(package="old-gone")  # (as older releases wrote it: no repository)
    reg.transact(lambda snap: make_change(OP, "cli", Action.DELETE_PACKAGE, "delete package old-gone",
                                          {layout.deleted_files(WS, "old-gone"): record}))
    allow(world, "utils")
    assert "it was deleted" in refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path, "old-gone", "1"))


def test_a_name_the_workspace_installs_from_upstream_is_not_taken_by_a_publish(world, tmp_path):
    reg = world.reg
    fetched = model.UpstreamFile(project="requests", version="2.0", filename="requests-2.0-py3-none-any.whl",
                                 sha256="0" * 64, size=1, upstream="public", url="https://pypi.example/r.whl",
                                 fetched=OP.provenance("upstream"))
    reg.transact(lambda snap: make_change(OP, "upstream", Action.FETCH_UPSTREAM, "fetch requests",
                                          {layout.upstream_file(WS, "requests", fetched.filename): fetched}))
    allow(world, "utils")
    said = refused(world, world.principal("dev@acme.test"), make_wheel(tmp_path, "requests", "9.0"))
    assert "installs 'requests' from an upstream index" in said and "registry package create" in said


def test_a_pipeline_creates_a_name_in_its_own_repository_only(world, tmp_path, issuer, trusted):
    reg = world.reg
    token = issuer.mint(workspace=WS, workspace_uuid=trusted["ws_uuid"], repository_uuid=REPO_UUID)
    step = Reader(reg, identity.ANONYMOUS).pipeline_for(token, Verifier())
    said = refused(world, step, make_wheel(tmp_path, "piped-new", "1.0"))
    assert "this pipeline's repository doesn't create packages on publish" in said
    assert "`registry repo set acme/pipeline-repo --create-on-publish`" in said
    allow(world, "utils")  # (another repository's option is not the pipeline's)
    refused(world, step, make_wheel(tmp_path, "piped-new", "1.0"))
    allow(world, "pipeline-repo")
    done = publish(reg, step, make_wheel(tmp_path, "piped-new", "1.0"))
    assert done.created and done.package.repository == "pipeline-repo"
    assert done.package.created.pipeline is not None and done.commit.trailer(T.REPOSITORY) == "pipeline-repo"
    with pytest.raises(Forbidden, match="not change the repository's options"):
        operations.set_create_on_publish(reg, step, "api", WS, "pipeline-repo", False)
