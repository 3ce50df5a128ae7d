"""History across delete and re-create: a package deleted and made again under the same name is
another package. Whoever reads the new one, wherever (the history API, the package and version
API, the UI's package, version and history pages, the audit trail, the commit pages), sees none of
the old one's commits, authors or repository; the old one's commits stay in the audit trail under
the old repository, for whoever may read that. The operator's `registry log` shows both, with the
boundary marked."""

from __future__ import annotations

import re
import sqlite3

import pytest

from registry import identity, operations
from registry.cli import main as cli_main
from registry.reads import Reader
from tests.support.crashed_writer import Unindexed
from tests.support.helpers import OWN_HEADERS, make_sdist, make_wheel
from tests.support.world import WS, publish

NAME = "phoenix"
OLD, NEW = "vault", "public-lib"  # the old package's repository (private), the new one's (public)
KEEPER = "keeper@acme.test"  # wrote to the old package: its publisher
NEWADMIN = "newadmin@acme.test"  # admin of public-lib: made the new package, never could read the old
BOTH = "both@acme.test"  # reads vault: could read the old package, and reads the new
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_old_package(world, tmp_path) -> list[str]:
    """phoenix in vault: published (1.0, 2.0) and yanked by KEEPER, then deleted; its commits."""
    reg, op = world.reg, identity.operator()
    operations.create_repository(reg, op, "cli", WS, OLD, "LABS")
    for email, role, repo in [(KEEPER, "write", OLD), (NEWADMIN, "admin", NEW), (BOTH, "read", OLD)]:
        operations.create_user(reg, op, "cli", email)
        world.tokens[email], _ = operations.create_token(reg, op, "cli", email, "write")
        operations.grant(reg, op, "cli", WS, email, role, repository=repo)
    operations.create_package(reg, op, "cli", WS, NAME, OLD)
    keeper = world.principal(KEEPER)
    for path in (make_wheel(tmp_path, NAME, "1.0"), make_wheel(tmp_path, NAME, "2.0"),
                 make_sdist(tmp_path, NAME, "2.0")):
        publish(reg, keeper, path)
    operations.yank(reg, keeper, "api", WS, NAME, "1.0", "kept in the vault")
    operations.delete_package(reg, op, "cli", WS, NAME)
    return [c.id for c in reg.history.package(WS, NAME)]


def make_new_package(reg, newadmin: identity.Principal, tmp_path) -> None:
    """phoenix again, in public-lib, by NEWADMIN: 2.0 (another file: the old names are spent) and 3.0."""
    operations.create_package(reg, newadmin, "api", WS, NAME, NEW)
    (tmp_path / "new").mkdir(exist_ok=True)
    wheel = make_wheel(tmp_path / "new", NAME, "2.0")
    publish(reg, newadmin, wheel.rename(wheel.with_name(f"{NAME}-2.0-1-py3-none-any.whl")))
    publish(reg, newadmin, make_wheel(tmp_path / "new", NAME, "3.0"))


@pytest.fixture
def reborn(world, tmp_path):
    old = make_old_package(world, tmp_path)
    make_new_package(world.reg, world.principal(NEWADMIN), tmp_path)
    new = [c.id for c in world.reg.history.package(WS, NAME) if c.id not in old]
    return world, old, new


async def as_(client, world, who: str | None) -> dict:
    """Sign ``who`` in to the UI (None: anonymous); the headers for the API."""
    client.cookies.clear()
    if who is None:
        return {}
    page = await client.get("/-/_/signin")
    r = await client.post("/-/_/signin", data={"csrf": CSRF.search(page.text).group(1), "email": who,
                                               "token": world.tokens[who]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    await client.get("/-/")  # (the page after signing in says so: that one is seen)
    return world.basic(who)


API = f"/api/workspaces/{WS}/packages/pypi/{NAME}"
UI = f"/-/{WS}/packages/{NAME}"
PACKAGE_READS = [API, f"{API}/history", f"{API}/history?limit=10000", f"{API}/versions/2.0",
                 f"{API}/versions/2.0/history",
                 f"{API}/versions/3.0", f"{API}/versions/3.0/history",
                 UI, f"{UI}/history", f"{UI}/2.0", f"{UI}/2.0/history", f"{UI}/3.0", f"{UI}/3.0/history"]
NEW_ONLY_TRAILS = [f"/-/{WS}/repos/{NEW}/history"]
TRAILS = [f"/-/{WS}/history", *NEW_ONLY_TRAILS]


def same_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k not in OWN_HEADERS | {"content-length"}}


def leaks(body: str, old: list[str], could_read_old: bool) -> list[str]:
    """What of the old package ``body`` shows: its commits (as the UI shortens them too), its publisher,
    and (to whoever couldn't read it) its repository."""
    found = [c for c in old if c[:12] in body]
    found += [KEEPER] if KEEPER in body else []
    found += [OLD] if not could_read_old and re.search(rf"\b{OLD}\b", body) else []
    return found


@pytest.mark.parametrize("who", [None, NEWADMIN, BOTH, "wsadmin@acme.test"])
async def test_every_reader_of_the_new_package_sees_only_its_history(client, reborn, who):
    world, old, new = reborn
    headers = await as_(client, world, who)
    could_read_old = who in (BOTH, "wsadmin@acme.test")
    for path in PACKAGE_READS:
        r = await client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert leaks(r.text, old, could_read_old) == [], path
    history = (await client.get(f"{API}/history", headers=headers)).json()["items"]
    assert [h["commit"] for h in history] == new  # (newest first)
    assert history[-1]["action"].startswith(f"create package {NAME}") and history[-1]["author_email"] == NEWADMIN
    details = (await client.get(API, headers=headers)).json()
    assert details["created"]["commit"] == new[-1]
    version = (await client.get(f"{API}/versions/2.0", headers=headers)).json()
    assert version["created"]["commit"] in new and all(f["commit"] in new for f in version["files"])
    for path in TRAILS:
        r = await client.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text)
        shown = leaks(r.text, old, could_read_old)
        if path in NEW_ONLY_TRAILS or not could_read_old:
            assert shown == [], path
        else:  # the old package's commits are in the workspace's trail, under its repository
            assert set(old[:5]) <= {c for c in old if c[:12] in r.text}, path


@pytest.mark.parametrize("who", [None, NEWADMIN, BOTH])
async def test_a_version_only_the_old_package_had_reads_as_one_never_made(client, reborn, who):
    world, old, new = reborn
    headers = await as_(client, world, who)
    for base in (API + "/versions", UI):
        for tail in ("/history", ""):
            then = await client.get(f"{base}/1.0{tail}", headers=headers)
            never = await client.get(f"{base}/9.9{tail}", headers=headers)
            assert then.status_code == never.status_code == 404, (base, tail)
            assert then.text.replace("1.0", "V") == never.text.replace("9.9", "V")
            assert same_headers(then) == same_headers(never)


async def test_the_old_packages_commits_are_filed_under_its_repository(client, reborn):
    world, old, new = reborn
    reg = world.reg
    for who, sees_old in ((BOTH, True), (NEWADMIN, False), ("outsider@acme.test", False)):
        read = Reader(reg, world.principal(who))
        trail = {f.commit.id: f.repository for f in read.trail(WS, limit=10_000)}
        assert all(trail.get(c) == OLD for c in old) if sees_old else not set(old) & set(trail), who
        assert all(trail[c] == NEW for c in new)  # (public-lib is public: everyone reads the new package)
        if sees_old:
            assert {f.commit.id for f in read.trail(WS, OLD, limit=10_000)} >= set(old)
        assert not {f.commit.id for f in read.trail(WS, NEW, limit=10_000)} & set(old)
        headers = await as_(client, world, who)
        for commit in old:
            page = await client.get(f"/-/{WS}/commits/{commit}", headers=headers)
            missing = await client.get(f"/-/{WS}/commits/{'0' * 40}", headers=headers)
            if sees_old:
                assert page.status_code == 200
            else:
                assert page.status_code == missing.status_code == 404
                assert page.text.replace(commit, "X") == missing.text.replace("0" * 40, "X")


def test_the_operators_log_shows_both_packages_and_where_one_ends(reborn, capsys):
    world, old, new = reborn
    capsys.readouterr()
    assert cli_main(["--data", world.reg.settings.data, "log", WS, NAME]) in (0, None)
    out = capsys.readouterr().out
    ids = re.findall(r"^([0-9a-f]{12})  ", out, re.M)
    assert ids == [c[:12] for c in new] + [c[:12] for c in old]
    boundary = out.index("---- above: the package created by")
    assert out.index(new[-1][:12]) < boundary < out.index(old[0][:12])


def test_an_index_behind_the_ledger_shows_no_earlier_packages_commits(world, tmp_path):
    """A writer crashed between the delete and re-create commits and their index inserts: until the
    index catches up, the new package's history is empty (never the old one's), then it is its own."""
    reg = world.reg
    old = make_old_package(world, tmp_path)
    operations.delete_package(Unindexed(reg), identity.operator(), "cli", WS, "public-pkg")  # (any commit)
    unindexed = Unindexed(reg)
    make_new_package(unindexed, world.principal(NEWADMIN), tmp_path)
    assert reg.history.behind()
    for who in (NEWADMIN, BOTH):
        read = Reader(reg, world.principal(who))
        assert read.history(WS, NAME) == [] and read.created_by(WS, NAME) is None
    reg.catch_up_history()
    read = Reader(reg, world.principal(NEWADMIN))
    shown = [c.id for c in read.history(WS, NAME)]
    assert shown and not set(shown) & set(old) and read.created_by(WS, NAME) == shown[-1]


def test_an_index_from_an_older_release_learns_where_each_package_begins(reborn):
    """A VERSION 1 index (one link per name, no deletions) opened by this release: its rows stay, and
    what it lacks is derived from them, so the new package's history is its own at once."""
    world, old, new = reborn
    reg = world.reg
    reg.history.close()
    with sqlite3.connect(reg.history.path) as db:
        db.execute("DROP TABLE links")
        db.execute("DROP TABLE deletions")
        db.execute("CREATE TABLE links (workspace TEXT NOT NULL, package TEXT NOT NULL, repository TEXT NOT NULL, "
                   "PRIMARY KEY (workspace, package)) WITHOUT ROWID")
        db.execute("INSERT INTO links VALUES (?, ?, ?)", (WS, NAME, NEW))
        db.execute("PRAGMA user_version = 1")
    read = Reader(reg, world.principal(NEWADMIN))
    assert [c.id for c in read.history(WS, NAME, limit=1000)] == new
    assert read.created_by(WS, NAME) == new[-1]
