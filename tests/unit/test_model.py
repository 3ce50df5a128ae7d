from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from registry import model
from registry.errors import Invalid
from registry.model import Project, Provenance, Repository, Workspace
from registry.reads import records

P = Provenance(at=datetime(2026, 1, 1, tzinfo=UTC), by="op@localhost", channel="cli")


def ws(admins=()):
    return Workspace(slug="acme", uuid=model.brace_uuid(), name="Acme", admins=list(admins), created=P)


def repo(public=False, grants=None):
    return Repository(slug="r", uuid=model.brace_uuid(), project="CORE", public=public, grants=grants or {}, created=P)


def project(grants=None):
    return Project(key="CORE", name="Core", grants=grants or {}, created=P)


@pytest.mark.parametrize(
    ("user", "workspace", "proj", "repository", "expected"),
    [
        (None, ws(), project(), repo(), None),                                      # anonymous, private
        (None, ws(), project(), repo(public=True), "read"),                         # anonymous, public
        ("a@x.io", ws(), project(), repo(), None),                                  # no grant anywhere
        ("a@x.io", ws(), project(), repo(public=True), "read"),                     # public gives read to all
        ("a@x.io", ws(["a@x.io"]), project(), repo(), "admin"),                     # workspace admin
        ("a@x.io", ws(), project({"a@x.io": "write"}), repo(), "write"),            # project grant applies
        ("a@x.io", ws(), project(), repo(grants={"a@x.io": "read"}), "read"),       # repository grant
        ("a@x.io", ws(), project({"a@x.io": "read"}), repo(grants={"a@x.io": "admin"}), "admin"),  # highest wins
        ("a@x.io", ws(), project({"a@x.io": "admin"}), repo(grants={"a@x.io": "read"}), "admin"),  # either way
        ("a@x.io", ws(), None, repo(grants={"a@x.io": "write"}), "write"),          # project record missing
        ("a@x.io", ws(), project({"b@x.io": "admin"}), repo(grants={"b@x.io": "admin"}), None),  # others' grants
        ("a@x.io", ws(), project({"a@x.io": "write"}), repo(public=True), "write"),  # public + grant: grant wins
    ],
)
def test_effective_role(user, workspace, proj, repository, expected):
    assert model.effective_role(user, workspace, proj, repository) == expected


def test_role_order():
    assert model.at_least("admin", "write") and model.at_least("write", "read")
    assert not model.at_least("read", "write") and not model.at_least(None, "read")


def test_uuids_normalised_whatever_the_braces():
    u = "1DE489BE-CE6A-42A0-A8C8-EADBF1174AC7"
    assert model.brace_uuid(u) == model.brace_uuid(f"{{{u}}}") == "{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}"
    assert model.brace_uuid().startswith("{")
    for bad in ("nope", "{1234}", "1de489bece6a42a0a8c8eadbf1174ac7", "urn:uuid:1de489be-ce6a-42a0-a8c8-eadbf1174ac7"):
        with pytest.raises(Invalid):
            model.brace_uuid(bad)


def test_model_names_are_enforced_by_schema_types():
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"slug":"a","uuid":"nope","name":"a","created":{"at":"2026-01-01T00:00:00Z","by":"x","channel":"cli"}}',
                            type=model.Workspace)


# One order of versions: wherever the registry orders versions (a package's versions, oldest
# first; the latest release, as the public index picks it) it is `model.release_key`'s, PEP 440's,
# with strings that are no version after every version, and never an error.

MADE = model.Provenance(at=datetime(2025, 1, 1, tzinfo=UTC), by="dev@acme.test", channel="upload")

valid = st.builds(
    lambda epoch, release, pre, post, dev: (f"{epoch}!" if epoch else "") + ".".join(map(str, release))
    + (f"{pre[0]}{pre[1]}" if pre else "") + (f".post{post}" if post is not None else "")
    + (f".dev{dev}" if dev is not None else ""),
    st.integers(0, 2), st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 3)),
    st.none() | st.integers(0, 3), st.none() | st.integers(0, 3),
)
invalid = st.text(min_size=1, max_size=12).filter(lambda s: not _is_version(s))
versions = st.lists(st.tuples(valid | invalid, st.booleans()), max_size=12,
                    unique_by=lambda t: model.release_key(t[0]))  # (1.0 and 1.0.0 are one version)


def _is_version(s: str) -> bool:
    try:
        Version(s)
    except InvalidVersion:
        return False
    return True


class _Snapshot:  # what records.versions reads: the version records of a package
    def __init__(self, found: list[model.Version]):
        self.found = found

    def records(self, path: str, type_: type) -> list[model.Version]:
        return list(self.found)


def _records(drawn: list[tuple[str, bool]]) -> list[model.Version]:
    return [model.Version(package="p", version=v, summary="", created=MADE, yanked=yanked) for v, yanked in drawn]


@given(versions)
def test_every_place_that_orders_versions_agrees(drawn):
    found = _records(drawn)
    ordered = [v.version for v in records.versions(_Snapshot(found[::-1]), "ws", "p")]
    assert ordered == sorted((v for v, _ in drawn), key=model.release_key)
    good = [v for v in ordered if _is_version(v)]
    assert good == sorted(good, key=Version) and ordered[:len(good)] == good  # (what is no version: last)

    latest = model.latest_release(found)
    if not found:
        assert latest is None
        return
    assert latest is not None
    # the latest: the last, in that order, of the most preferred kind (not yanked, then a final release)
    def kind(v: model.Version) -> tuple[bool, bool]:
        return (not v.yanked, _is_version(v.version) and not Version(v.version).is_prerelease)
    best = max(kind(v) for v in found)
    by_version = {v.version: v for v in found}
    assert latest.version == [v for v in ordered if kind(by_version[v]) == best][-1]
