"""upstream/policy.py's rules over generated pages: whatever an upstream lists, a blocked release,
a workspace's own release, or a release younger than the cooldown (unless exempt) is never offered;
every file is offered or withheld with a reason; a fetched file is always served with its recorded
hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_version

from registry.model import BlockedVersion, Exemption, NameRule, Provenance, UpstreamFile, UpstreamPolicy
from registry.upstream.pages import Listed
from registry.upstream.policy import decide, name_refused, version_of

NOW = datetime(2026, 12, 6, tzinfo=UTC)
BY = Provenance(at=NOW, by="admin@test", channel="cli")
VERSIONS = st.sampled_from(["1.0", "1.0.0", "1.1", "2.0rc1", "2.0", "2.0.post1", "3.0.dev2", "10.0"])


@st.composite
def pages(draw):
    files = []
    for v in draw(st.lists(VERSIONS, max_size=8)):
        for kind in draw(st.lists(st.sampled_from(["whl", "sdist"]), min_size=1, max_size=2, unique=True)):
            name = f"demo-{v}-py3-none-any.whl" if kind == "whl" else f"demo-{v}.tar.gz"
            age = draw(st.none() | st.integers(min_value=0, max_value=60))
            files.append(Listed(filename=name, url=f"http://up.test/{name}", hashes={"sha256": "a" * 64},
                                upload_time=NOW - timedelta(days=age) if age is not None else None))
    return list({f.filename: f for f in files}.values())


@settings(max_examples=300, deadline=None)
@given(files=pages(), blocked=st.lists(VERSIONS, max_size=3), own=st.lists(VERSIONS, max_size=3),
       cooldown=st.integers(min_value=0, max_value=30), exempt=st.booleans(),
       fetched=st.lists(VERSIONS, max_size=3))
def test_what_is_offered_obeys_every_rule(files, blocked, own, cooldown, exempt, fetched):
    policy = UpstreamPolicy(
        blocked=[BlockedVersion(name="demo", version=v, reason="r", added=BY) for v in blocked],
        cooldown_seconds=cooldown * 86400, exempt=[Exemption(name="demo", reason="r", granted=BY)] if exempt else [],
        updated=BY)
    recorded = {f.filename: UpstreamFile(project="demo", version=version_of(f.filename, "demo") or "",
                                         filename=f.filename, sha256="b" * 64, size=1, upstream="up", url=f.url,
                                         fetched=BY)
                for f in files if version_of(f.filename, "demo") in fetched}
    first_seen = {v: (NOW - timedelta(days=3)).timestamp() for v in map(lambda f: version_of(f.filename, "demo"), files)
                  if v}
    own_canonical = frozenset(canonicalize_version(v) for v in own)
    out = decide(policy, "ws", "demo", files, recorded, first_seen, NOW, own_canonical)
    blocked_canonical = {canonicalize_version(v) for v in blocked}
    for o in out.offered:
        c = canonicalize_version(o.version)
        assert c not in blocked_canonical and c not in own_canonical
        if cooldown and not exempt:
            same = [f for f in files if version_of(f.filename, "demo") == o.version]
            times = [f.upload_time for f in same if f.upload_time]
            born = min(times) if times else NOW - timedelta(days=3)
            assert NOW - born >= timedelta(days=cooldown)
        if o.listed.filename in recorded:
            assert o.sha256 == "b" * 64 and o.listed.filename in out.changed
    offered = {o.listed.filename for o in out.offered}
    for f in files:
        own_file = canonicalize_version(version_of(f.filename, "demo")) in own_canonical
        assert own_file or (f.filename in offered) != (f.filename in out.withheld)
    for why in out.withheld.values():
        assert "registry upstream" in why  # (each refusal says the command that lifts it)


@given(st.text(alphabet="abcdefgh-*?", min_size=1, max_size=8), st.text(alphabet="abcdefgh-", min_size=1, max_size=8))
def test_deny_beats_allow_and_allow_limits(pattern, name):
    import fnmatch

    deny = UpstreamPolicy(deny=[NameRule(pattern=pattern, reason="no", added=BY)], updated=BY)
    assert (name_refused(deny, "ws", name) is not None) == fnmatch.fnmatchcase(name, pattern)
    allow = UpstreamPolicy(allow=[NameRule(pattern=pattern, reason="yes", added=BY)], updated=BY)
    assert (name_refused(allow, "ws", name) is None) == fnmatch.fnmatchcase(name, pattern)
    both = UpstreamPolicy(allow=[NameRule(pattern="*", reason="all", added=BY)],
                          deny=[NameRule(pattern=pattern, reason="no", added=BY)], updated=BY)
    assert (name_refused(both, "ws", name) is None) == (not fnmatch.fnmatchcase(name, pattern))


def test_versions_from_filenames_of_every_era():
    assert version_of("demo-1.0-py3-none-any.whl", "demo") == "1.0"
    assert version_of("Demo_Pkg-2.0.tar.gz", "demo-pkg") == "2.0"
    assert version_of("demo.pkg-2.0rc1.zip", "demo-pkg") == "2.0rc1"
    assert version_of("demo-pkg-1.0-1.tar.gz", "demo-pkg") is None or version_of(
        "demo-pkg-1.0-1.tar.gz", "demo-pkg") == "1.0.post1"
    assert version_of("other-1.0-py3-none-any.whl", "demo") is None  # (another project's file on the page)
    assert version_of("demo-1.0.win32.exe", "demo") is None
    assert version_of("demo-1.0-py2.7.egg", "demo") is None
    assert version_of("demo-not_a_version.tar.gz", "demo") is None
