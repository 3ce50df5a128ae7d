"""The ledger's path grammar (registry/layout.py declares it once) read both ways: for every kind of
record, the path its builder makes is recognised as that kind, and the record says it belongs
there; moved anywhere else of the same shape, it says where it belongs instead. Over generated
names, versions, emails and hashes (Hypothesis).

(The grammar was declared in place of hand-written builders, `record_type` and `expected_path`;
the commit that did it was checked against a copy of those, kept in this file until then.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_version

from registry import layout, model

P = model.Provenance(at=datetime(2026, 3, 1, tzinfo=UTC), by="dev@example.com", channel="cli")
WORDS = ["users", "tokens", "sign-in-links", "sessions", "workspaces", "workspace.json", "pipelines-trust.json",
         "projects", "repositories", "packages", "versions", "deleted-files", "package.json", "pypi", "npm",
         "ledger.json", "signing-keys.json", "README.md", "acme", "1.0.json", "00", "ff"]
# A tree entry's name: never empty, never a "/" (git refuses both); any other unicode.
segment = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12) \
    | st.sampled_from(WORDS)
versions = st.sampled_from(["1.0", "1.0.0", "2!1.0rc1.post2.dev3", "1.0+local.7", "v1.0", "01.002", "1.0-final",
                            "junk"]) | st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,4}){0,3}\Z") | segment
emails = st.emails().filter(lambda e: "/" not in e) | segment
hashes = st.from_regex(r"\A[0-9a-f]{64}\Z") | segment


def in_workspace(build: Callable[[Any, str], str]) -> Callable[[Any, str | None], str]:
    return lambda r, ws: build(r, ws or "")


# Every kind of record: records of it with any key fields (the constructor checks no constraints),
# and where it belongs, said with the builders: (record, the workspace it is in) -> path.
KINDS: dict[type[model.Record], tuple[st.SearchStrategy[Any], Callable[[Any, str | None], str]]] = {
    model.LedgerInfo: (st.just(model.LedgerInfo(format=1, registry="{x}", created=P.at)),
                       lambda r, ws: layout.LEDGER_INFO),
    model.SigningKeys: (st.just(model.SigningKeys(principal="registry", keys=[])), lambda r, ws: layout.SIGNING_KEYS),
    model.User: (st.builds(model.User, email=emails, name=st.just(""), created=st.just(P)),
                 lambda r, ws: layout.user(r.email)),
    model.ApiToken: (st.builds(model.ApiToken, id=st.just("0" * 8), user=emails, sha256=hashes, scope=st.just("read"),
                               created=st.just(P)),
                     lambda r, ws: layout.token(r.sha256)),
    model.SignInLink: (st.builds(model.SignInLink, id=st.just("0" * 8), user=emails, sha256=hashes, created=st.just(P),
                                 expires=st.just(P.at)),
                       lambda r, ws: layout.signin_link(r.sha256)),
    model.WebSession: (st.builds(model.WebSession, id=segment, user=emails, scope=st.just("read"),
                                 via=st.just("link"), created=st.just(P), expires=st.just(P.at)),
                       lambda r, ws: layout.session(r.user, r.id)),
    model.Workspace: (st.builds(model.Workspace, slug=segment, uuid=st.just("{x}"), name=st.just(""),
                                created=st.just(P)),
                      lambda r, ws: layout.workspace(r.slug)),
    model.PipelinesTrust: (st.builds(model.PipelinesTrust, issuer=st.just("i"), updated=st.just(P)),
                           in_workspace(lambda r, ws: layout.trust(ws))),
    model.TrustedIssuer: (st.builds(model.TrustedIssuer, issuer=st.text(min_size=1, max_size=40), updated=st.just(P)),
                          in_workspace(lambda r, ws: layout.trusted_issuer(ws, r.issuer))),
    model.Project: (st.builds(model.Project, key=segment, name=st.just(""), created=st.just(P)),
                    in_workspace(lambda r, ws: layout.project(ws, r.key))),
    model.Repository: (st.builds(model.Repository, slug=segment, uuid=st.just("{x}"), project=st.just("P"),
                                 created=st.just(P)),
                       in_workspace(lambda r, ws: layout.repository(ws, r.slug))),
    model.RetiredRepository: (st.builds(model.RetiredRepository, slug=segment, uuid=st.just("{x}"), retired=st.just(P)),
                              in_workspace(lambda r, ws: layout.retired_repository(ws, r.slug))),
    model.Package: (st.builds(model.Package, name=segment, display_name=st.just("d"), workspace=segment,
                              repository=st.just("r"), created=st.just(P)),
                    lambda r, ws: layout.package(r.workspace, r.name)),
    model.Version: (st.builds(model.Version, package=segment, version=versions, created=st.just(P)),
                    in_workspace(lambda r, ws: layout.version(ws, r.package, canonicalize_version(r.version)))),
    model.DeletedFiles: (st.builds(model.DeletedFiles, package=segment),
                         in_workspace(lambda r, ws: layout.deleted_files(ws, r.package))),
    model.UpstreamPolicy: (st.just(model.UpstreamPolicy(updated=P)), in_workspace(lambda r, ws: layout.upstream(ws))),
    model.StorageUsage: (st.just(model.StorageUsage(bytes=1, files=1)), in_workspace(lambda r, ws: layout.usage(ws))),
    model.RetentionPolicy: (st.builds(model.RetentionPolicy, name=segment, updated=st.just(P)),
                            in_workspace(lambda r, ws: layout.retention_policy(ws, r.name))),
    model.UpstreamFile: (st.builds(model.UpstreamFile, project=segment, version=st.just("1.0"), filename=segment,
                                   sha256=st.just("0" * 64), size=st.just(1), upstream=st.just("up"),
                                   url=st.just("u"), fetched=st.just(P)),
                         in_workspace(lambda r, ws: layout.upstream_file(ws, r.project, r.filename))),
    model.Webhook: (st.builds(model.Webhook, name=segment, url=st.just("https://h/"), events=st.just(["publish"]),
                              since=st.just("0" * 40), added=st.just(P)),
                    in_workspace(lambda r, ws: layout.webhook(ws, r.name))),
}


def test_every_record_has_one_place_and_every_place_is_tested():
    assert sorted(p.record.__name__ for p in layout.PLACES) == sorted(r.__name__ for r in model.LEDGER_RECORDS)
    assert set(KINDS) == set(model.LEDGER_RECORDS)


def test_no_path_is_two_kinds():
    """Two places of the same depth differ in a literal segment: a path is of one kind at most."""
    for i, a in enumerate(layout.PLACES):
        for b in layout.PLACES[i + 1:]:
            assert len(a.shape) != len(b.shape) or any(
                x is not None and y is not None and x != y for x, y in zip(a.shape, b.shape, strict=True)), (a, b)


def placed(kind: type[model.Record]):
    """(record, ws, its path): a record of the kind and where its builder puts it."""
    records, build = KINDS[kind]
    return st.tuples(records, segment).map(lambda rw: (rw[0], rw[1], build(*rw)))


@pytest.mark.parametrize("kind", list(KINDS), ids=lambda k: k.__name__)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_record_is_where_it_says_it_belongs(kind, data):
    record, _, path = data.draw(placed(kind))
    assert "" not in path.split("/")
    assert layout.record_type(path) is kind
    assert layout.expected_path(path, record) == path


@pytest.mark.parametrize("kind", list(KINDS), ids=lambda k: k.__name__)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_record_moved_says_where_it_belongs(kind, data):
    """Any segment of its path changed (a hand edit, a bad move), a record still says where it
    belongs: the same place in the workspace it is now in (a record that doesn't name its workspace
    belongs to the one it is in)."""
    record, _, path = data.draw(placed(kind))
    parts = path.split("/")
    i = data.draw(st.integers(0, len(parts) - 1))
    parts[i] = data.draw(segment)
    moved = "/".join(parts)
    if layout.record_type(moved) is not kind:  # (a literal segment changed: not a place of its kind)
        return
    ws = parts[1] if moved.startswith("workspaces/") else None
    assert layout.expected_path(moved, record) == KINDS[kind][1](record, ws)


@settings(max_examples=500, deadline=None)
@given(path=st.lists(segment, min_size=1, max_size=8).map("/".join))
def test_a_path_is_of_the_kind_its_shape_says(path):
    """Any path at all: a kind exactly when its depth and literal segments are that kind's."""
    parts = path.split("/")
    kinds = [p.record for p in layout.PLACES
             if len(p.shape) == len(parts) and all(s in (None, x) for s, x in zip(p.shape, parts, strict=True))]
    assert layout.record_type(path) is (kinds[0] if kinds else None)


@settings(max_examples=200, deadline=None)
@given(ws=segment, name=segment, version=versions, email=emails, sha256=hashes, sid=segment, type_=segment)
def test_directories_hold_their_records(ws, name, version, email, sha256, sid, type_):
    assert layout.session(email, sid).startswith(layout.sessions_dir(email) + "/")
    assert layout.repository(ws, sid).startswith(layout.repositories_dir(ws) + "/")
    assert layout.package(ws, name, type_) == layout.package_dir(ws, name, type_) + "/package.json"
    assert layout.package_dir(ws, name, type_).startswith(layout.packages_dir(ws, type_) + "/")
    assert layout.version(ws, name, version, type_).startswith(layout.versions_dir(ws, name, type_) + "/")
    assert layout.versions_dir(ws, name, type_) == layout.package_dir(ws, name, type_) + "/versions"
    assert layout.token(sha256).startswith(layout.token_shard(sha256) + "/")
    assert layout.token_shard(sha256 + "ab") == layout.token_shard((sha256 + "ab")[:2])


def test_the_paths_are_what_they_were():
    """The grammar's examples, spelled out: what ledgers already hold can't move."""
    assert layout.version("acme", "acme-utils", "1.2.0") == \
        "workspaces/acme/packages/pypi/dd/acme-utils/versions/9f/1.2.0.json"
    assert layout.user("a@b.c") == "users/d6/a@b.c.json"
    assert layout.token("ab" + "0" * 62) == f"tokens/ab/ab{'0' * 62}.json"
    assert layout.session("a@b.c", "f" * 32) == f"sessions/d6/a@b.c/{'f' * 32}.json"
    assert layout.deleted_files("acme", "acme-utils") == "workspaces/acme/deleted-files/pypi/dd/acme-utils.json"
    assert (layout.LEDGER_INFO, layout.SIGNING_KEYS, layout.README) == ("ledger.json", "signing-keys.json", "README.md")


def test_a_version_packaging_cant_read_is_refused_not_placed():
    record = model.Version(package="p", version="1" * 5000, created=P)
    with pytest.raises(ValueError):
        layout.expected_path(layout.version("acme", "p", "1"), record)


def test_the_ledger_readme_shows_every_place():
    assert layout.table("    ") in layout.LEDGER_README
    assert [line.split()[0] for line in layout.table().splitlines()] == [p.shown() for p in layout.PLACES]
    assert "workspaces/<ws>/packages/pypi/<xx>/<name>/versions/<yy>/<v>.json" in layout.table()


def test_layout_shards_growing_directories():
    assert layout.version("acme", "acme-utils", "1.2.0") == (
        f"workspaces/acme/packages/pypi/{layout.shard('acme-utils')}/acme-utils/versions/{layout.shard('1.2.0')}/1.2.0.json")
    assert layout.user("a@b.c").startswith(f"users/{layout.shard('a@b.c')}/")
    assert len({layout.shard(str(i)) for i in range(5000)}) == 256
