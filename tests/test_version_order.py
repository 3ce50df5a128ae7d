"""One order of versions: wherever the registry orders versions (a package's versions, oldest
first; the latest release, as the public index picks it) it is `model.release_key`'s, PEP 440's,
with strings that are no version after every version, and never an error."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from registry import model
from registry.reads import records

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
