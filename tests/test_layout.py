"""The ledger's path grammar, declared once in registry/layout.py, answers as the hand-written
builders, `record_type` and `expected_path` it replaced: a copy of those is kept here as the oracle,
and Hypothesis compares both over generated names, versions, emails and hand-made paths."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_version

from registry import layout, model

# --- today's grammar, copied verbatim: the oracle -------------------------------------------------


def old_shard(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def old_user(email):
    return f"users/{old_shard(email)}/{email}.json"


def old_token(sha256):
    return f"tokens/{sha256[:2]}/{sha256}.json"


def old_token_shard(token_id):
    return f"tokens/{token_id[:2]}"


def old_signin_link(sha256):
    return f"sign-in-links/{sha256[:2]}/{sha256}.json"


def old_sessions_dir(email):
    return f"sessions/{old_shard(email)}/{email}"


def old_session(email, session_id):
    return f"{old_sessions_dir(email)}/{session_id}.json"


def old_workspace(ws):
    return f"workspaces/{ws}/workspace.json"


def old_trust(ws):
    return f"workspaces/{ws}/pipelines-trust.json"


def old_project(ws, key):
    return f"workspaces/{ws}/projects/{key}.json"


def old_repository(ws, slug):
    return f"workspaces/{ws}/repositories/{slug}.json"


def old_repositories_dir(ws):
    return f"workspaces/{ws}/repositories"


def old_packages_dir(ws, type_="pypi"):
    return f"workspaces/{ws}/packages/{type_}"


def old_package_dir(ws, name, type_="pypi"):
    return f"workspaces/{ws}/packages/{type_}/{old_shard(name)}/{name}"


def old_package(ws, name, type_="pypi"):
    return f"{old_package_dir(ws, name, type_)}/package.json"


def old_versions_dir(ws, name, type_="pypi"):
    return f"{old_package_dir(ws, name, type_)}/versions"


def old_version(ws, name, version_, type_="pypi"):
    return f"{old_versions_dir(ws, name, type_)}/{old_shard(version_)}/{version_}.json"


def old_deleted_files(ws, name, type_="pypi"):
    return f"workspaces/{ws}/deleted-files/{type_}/{old_shard(name)}/{name}.json"


def old_record_type(path):
    parts = path.split("/")
    if path == "ledger.json":
        return model.LedgerInfo
    if path == "signing-keys.json":
        return model.SigningKeys
    if parts[0] == "users" and len(parts) == 3:
        return model.User
    if parts[0] == "tokens" and len(parts) == 3:
        return model.ApiToken
    if parts[0] == "sign-in-links" and len(parts) == 3:
        return model.SignInLink
    if parts[0] == "sessions" and len(parts) == 4:
        return model.WebSession
    if parts[0] != "workspaces" or len(parts) < 3:
        return None
    rest = parts[2:]
    if rest == ["workspace.json"]:
        return model.Workspace
    if rest == ["pipelines-trust.json"]:
        return model.PipelinesTrust
    if rest[0] == "projects" and len(rest) == 2:
        return model.Project
    if rest[0] == "repositories" and len(rest) == 2:
        return model.Repository
    if rest[0] == "deleted-files" and len(rest) == 4:
        return model.DeletedFiles
    if rest[0] == "packages" and len(rest) == 5 and rest[4] == "package.json":
        return model.Package
    if rest[0] == "packages" and len(rest) == 7 and rest[4] == "versions":
        return model.Version
    return None


def old_expected_path(path, record):
    ws = path.split("/")[1] if path.startswith("workspaces/") else None
    match record:
        case model.User():
            return old_user(record.email)
        case model.ApiToken():
            return old_token(record.sha256)
        case model.SignInLink():
            return old_signin_link(record.sha256)
        case model.WebSession():
            return old_session(record.user, record.id)
        case model.Workspace():
            return old_workspace(record.slug)
        case model.Project():
            return old_project(ws, record.key)
        case model.Repository():
            return old_repository(ws, record.slug)
        case model.Package():
            return old_package(record.workspace, record.name)
        case model.Version():
            return old_version(ws, record.package, canonicalize_version(record.version))
        case model.DeletedFiles():
            return old_deleted_files(ws, record.package)
    return path


# --- what is generated --------------------------------------------------------------------------

P = model.Provenance(at=datetime(2026, 3, 1, tzinfo=UTC), by="dev@example.com", channel="cli")
WORDS = ["users", "tokens", "sign-in-links", "sessions", "workspaces", "workspace.json", "pipelines-trust.json",
         "projects", "repositories", "packages", "versions", "deleted-files", "package.json", "pypi", "npm",
         "ledger.json", "signing-keys.json", "README.md", "acme", "1.0.json", "00", "ff"]
# A tree entry's name: never empty, never a "/" (git refuses both).
segment = st.text(st.characters(codec="utf-8", blacklist_characters="/\x00"), min_size=1, max_size=12) \
    | st.sampled_from(WORDS)
versions = st.sampled_from(["1.0", "1.0.0", "2!1.0rc1.post2.dev3", "1.0+local.7", "v1.0", "1" * 5000 + ".0",
                            "01.002", "1.0-final", "junk", ""]) | st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,4}){0,3}\Z") \
    | st.text(st.characters(codec="utf-8"), max_size=8)
emails = st.emails() | segment
hashes = st.from_regex(r"\A[0-9a-f]{64}\Z") | segment


# The records, made from their key fields only (the constructor checks no constraints: any text goes).
def records(kind, a, b, ws):
    return {
        model.LedgerInfo: lambda: model.LedgerInfo(format=1, registry="{x}", created=P.at),
        model.SigningKeys: lambda: model.SigningKeys(principal="registry", keys=[]),
        model.User: lambda: model.User(email=a, name="", created=P),
        model.ApiToken: lambda: model.ApiToken(id=a[:8], user="u", sha256=a, scope="read", created=P),
        model.SignInLink: lambda: model.SignInLink(id=a[:8], user="u", sha256=a, created=P, expires=P.at),
        model.WebSession: lambda: model.WebSession(id=b, user=a, scope="read", via="link", created=P, expires=P.at),
        model.Workspace: lambda: model.Workspace(slug=a, uuid="{x}", name="", created=P),
        model.PipelinesTrust: lambda: model.PipelinesTrust(issuer="i", updated=P),
        model.Project: lambda: model.Project(key=a, name="", created=P),
        model.Repository: lambda: model.Repository(slug=a, uuid="{x}", project="P", created=P),
        model.Package: lambda: model.Package(name=a, display_name=a, workspace=ws, repository="r", created=P),
        model.Version: lambda: model.Version(package=a, version=b, created=P),
        model.DeletedFiles: lambda: model.DeletedFiles(package=a),
    }[kind]()


def answer(fn, *args):
    try:
        return fn(*args)
    except ValueError as exc:  # (a version of a huge digit run: packaging can't canonicalise it)
        return ("ValueError", type(exc))


# --- the comparison -----------------------------------------------------------------------------

BUILDERS = [
    (layout.user, old_user, [emails]), (layout.token, old_token, [hashes]),
    (layout.token_shard, old_token_shard, [hashes]), (layout.signin_link, old_signin_link, [hashes]),
    (layout.sessions_dir, old_sessions_dir, [emails]), (layout.session, old_session, [emails, segment]),
    (layout.workspace, old_workspace, [segment]), (layout.trust, old_trust, [segment]),
    (layout.project, old_project, [segment, segment]), (layout.repository, old_repository, [segment, segment]),
    (layout.repositories_dir, old_repositories_dir, [segment]),
    (layout.packages_dir, old_packages_dir, [segment]), (layout.packages_dir, old_packages_dir, [segment, segment]),
    (layout.package_dir, old_package_dir, [segment, segment]),
    (layout.package_dir, old_package_dir, [segment, segment, segment]),
    (layout.package, old_package, [segment, segment]), (layout.package, old_package, [segment, segment, segment]),
    (layout.versions_dir, old_versions_dir, [segment, segment]),
    (layout.versions_dir, old_versions_dir, [segment, segment, segment]),
    (layout.version, old_version, [segment, segment, versions]),
    (layout.version, old_version, [segment, segment, versions, segment]),
    (layout.deleted_files, old_deleted_files, [segment, segment]),
    (layout.deleted_files, old_deleted_files, [segment, segment, segment]),
]


@pytest.mark.parametrize("new, old, args", BUILDERS, ids=[f"{b[0].__name__}/{len(b[2])}" for b in BUILDERS])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_builder_builds_what_it_built(new, old, args, data):
    values = [data.draw(s) for s in args]
    assert new(*values) == old(*values)


def test_the_fixed_names_are_the_same():
    assert (layout.LEDGER_INFO, layout.SIGNING_KEYS, layout.README) == ("ledger.json", "signing-keys.json", "README.md")
    assert layout.shard("acme-utils") == old_shard("acme-utils")


@st.composite
def held_paths(draw):
    """A path the ledger can hold: one a builder makes, one of the same shape with any segment
    replaced (a hand edit), or any path at all."""
    a, b, ws, v = draw(emails), draw(segment), draw(segment), draw(versions)
    built = draw(st.sampled_from([
        "ledger.json", "signing-keys.json", "README.md", old_user(a), old_token(a), old_signin_link(a),
        old_session(a, b), old_workspace(ws), old_trust(ws), old_project(ws, b), old_repository(ws, b),
        old_package(ws, b), old_package(ws, b, "npm"), old_version(ws, b, v), old_version(ws, b, v, "npm"),
        old_deleted_files(ws, b), old_deleted_files(ws, b, "npm"), old_packages_dir(ws), old_versions_dir(ws, b),
    ]))
    parts = built.split("/")
    for _ in range(draw(st.integers(0, 3)) // 2):
        parts[draw(st.integers(0, len(parts) - 1))] = draw(segment)
    if not draw(st.integers(0, 3)):
        parts = parts[:draw(st.integers(1, len(parts)))] + draw(st.lists(segment, max_size=2))
    return "/".join(parts) if draw(st.integers(0, 9)) else "/".join(draw(st.lists(segment, min_size=1, max_size=8)))


@settings(max_examples=2000, deadline=None)
@given(path=held_paths())
def test_record_type_answers_as_it_did(path):
    assert layout.record_type(path) is old_record_type(path)


@settings(max_examples=2000, deadline=None)
@given(path=held_paths(), data=st.data())
def test_expected_path_answers_as_it_did(path, data):
    """For every path that holds a record, with the record decoded there (as `registry verify`
    reads it): its key fields the ones the path was made from, or any others."""
    kind = old_record_type(path)
    if kind is None:
        return
    parts = path.split("/")
    from_path = [p.removesuffix(".json") for p in parts[1:]] or ["x"]
    a = data.draw(st.sampled_from(from_path) | emails | hashes)
    b = data.draw(st.sampled_from(from_path) | versions)
    ws = data.draw(st.sampled_from(from_path) | segment)
    record = records(kind, a, b, ws)
    assert answer(layout.expected_path, path, record) == answer(old_expected_path, path, record)


def test_a_record_moved_is_seen():
    user = model.User(email="a@b.c", name="", created=P)
    assert layout.expected_path(old_user("a@b.c"), user) == old_user("a@b.c")
    assert layout.expected_path("users/00/x.json", user) == old_user("a@b.c")
