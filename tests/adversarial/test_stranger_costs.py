"""What anyone may ask costs the same at any size of ledger: a point in the past (`/<ws>/@<time>/`,
`/<ws>/@<commit>/`), the checkpoint and what lies below them never walk the ledger's history. A
time or a commit id is found in the history index (a binary search over its positions by committer
time: O(log n) commit reads), off the event loop, so a plain request is answered meanwhile."""

from __future__ import annotations

import html
import itertools
import math
import re
import threading
from collections import Counter
from datetime import UTC, datetime

import anyio
import httpx
import pygit2
import pytest

from registry import identity, operations
from registry.history import History, _insert_many
from registry.ledger import Commit
from registry.reads import Reader, timeline
from registry.web.app import create_asgi
from tests.support.crashed_writer import Unindexed
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

PUBLIC = "public-pkg"  # (in public-lib: anyone reads it, and so the workspace)


@pytest.fixture
def git_reads(monkeypatch) -> Counter:
    """How many git objects are looked up, and walks and ancestry checks begun, from now on (every thread)."""
    counts, lock = Counter(), threading.Lock()

    def counting(name, real):
        def spy(self, *args, **kwargs):
            with lock:
                counts[name] += 1
            return real(self, *args, **kwargs)
        return spy

    for name in ("git_object_lookup_prefix", "walk", "descendant_of", "revparse_single"):
        monkeypatch.setattr(pygit2.Repository, name, counting(name, getattr(pygit2.Repository, name)))
    return counts


def grow(reg, commits: int) -> None:
    """``commits`` more commits: a project each."""
    for _ in range(commits):
        operations.create_project(reg, identity.operator(), "cli", WS, f"GROWN{next(_projects)}", "Grown")


_projects = itertools.count()


def main_line(reg) -> list[tuple[str, int]]:
    """Every commit of main, oldest first, with its committer time: what a lookup must agree with."""
    commit, out = reg.ledger.repo()[reg.ledger.head()], []
    while True:
        out.append((str(commit.id), commit.committer.time))
        if not commit.parents:
            return out[::-1]
        commit = commit.parents[0]


def expected_at(line: list[tuple[str, int]], t: int) -> str | None:
    found = [c for c, made in line if made <= t]
    return found[-1] if found else None


def lookups(reg, git_reads: Counter) -> int:
    """Look up every second of the ledger's life (and one before it), and every commit by a 7-digit
    prefix; check each answer against the main line; the most git objects any one lookup read."""
    line = main_line(reg)
    read, most = Reader(reg), 0
    times = sorted({made for _, made in line})
    for t in [times[0] - 1, *times, times[-1] + 5]:
        git_reads.clear()
        ref = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        want = expected_at(line, t)
        if want is None:
            with pytest.raises(Exception, match="begins later"):
                read.resolve(ref)
        else:
            assert read.resolve(ref) == want, ref
        assert git_reads["walk"] == git_reads["descendant_of"] == git_reads["revparse_single"] == 0, ref
        most = max(most, git_reads["git_object_lookup_prefix"])
    for commit, _ in line[:: max(1, len(line) // 40)]:
        git_reads.clear()
        assert read.resolve(commit[:7]) == commit
        assert git_reads["walk"] == git_reads["descendant_of"] == 0
        most = max(most, git_reads["git_object_lookup_prefix"])
    return most


def test_a_time_or_commit_lookup_reads_log_n_commits_however_long_the_ledger(world, git_reads):
    reg = world.reg
    small = len(main_line(reg))
    at_small = lookups(reg, git_reads)
    grow(reg, 250)
    large = len(main_line(reg))
    at_large = lookups(reg, git_reads)
    assert at_small <= 2 * math.log2(small) + 4
    assert at_large <= 2 * math.log2(large) + 4  # (a walk reads them all: 300 here)


def test_a_lookup_covers_the_commits_the_index_has_not_caught_up_to(world, git_reads):
    """A writer crashed before indexing its commits: a lookup walks them (at most history.TAIL),
    then searches the index, and agrees with the main line throughout."""
    reg = world.reg
    grow(Unindexed(reg), 5)
    assert reg.history.behind()
    lookups(reg, git_reads)


async def test_strangers_requests_never_walk_the_ledger(client, world, git_reads):
    """Anonymous requests for the past (by time and by commit), the checkpoint and a plain index, on
    a ledger that keeps growing: no walk of history, no ancestry check (each is O(n) in libgit2)."""
    reg = world.reg
    first = main_line(reg)[0]
    for _ in range(3):
        grow(reg, 3)
        head = reg.ledger.head()
        when = datetime.fromtimestamp(reg.ledger.repo()[head].committer.time, UTC)
        git_reads.clear()
        for path in (f"/{WS}/@{when:%Y-%m-%dT%H:%M:%SZ}/", f"/{WS}/@{when.isoformat()}/", f"/{WS}/@{head[:9]}/",
                     f"/{WS}/@{first[0][:7]}/", f"/{WS}/@{head}/{PUBLIC}/", "/_/ledger/checkpoint", f"/{WS}/"):
            r = await client.get(path)
            assert r.status_code in (200, 404), (path, r.text)
        assert git_reads["walk"] == git_reads["descendant_of"] == 0, dict(git_reads)


async def test_the_event_loop_answers_while_a_time_is_looked_up(world, monkeypatch):
    """A lookup held up (as one on a huge ledger, or on a slow disk, would be) doesn't hold up the
    server: a plain index request is answered meanwhile. (Were the lookup on the event loop, the
    plain request would wait for it, and the lookup would give up waiting for the plain one.) The
    app is called on this test's own event loop, as a server's worker calls it."""
    entered, answered, waited = threading.Event(), threading.Event(), []
    real = timeline.resolve

    def held(*args, **kwargs):
        if not entered.is_set():
            entered.set()
            waited.append(answered.wait(10))
        return real(*args, **kwargs)

    monkeypatch.setattr(timeline, "resolve", held)
    app = create_asgi(world.reg.settings, world.reg)
    past = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        async def ask_the_past():
            past.append(await client.get(f"/{WS}/@{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}/"))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ask_the_past)
            with anyio.fail_after(20):
                while not entered.is_set():
                    await anyio.sleep(0.01)
            plain = await client.get(f"/{WS}/")
            answered.set()
    assert plain.status_code == 200 and past[0].status_code == 200, past[0].text
    assert waited == [True]


def sqlite_steps(history: History, query) -> int:
    """SQLite's virtual-machine steps (in thousands) that ``query()`` takes on this thread's index
    connection: the rows it visits, counted rather than timed."""
    steps, db = [0], history._db()
    db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 1000)
    try:
        query()
    finally:
        db.set_progress_handler(None, 0)
    return steps[0]


def fill(history: History, start: int, count: int) -> None:
    """``count`` commits into a bare history index (no ledger behind it: the queries read only the
    index), from position ``start``: the busy private package's, and every 1,000th a rare public one's."""
    def commit(at: int) -> Commit:
        package, repository = ("rare", "public-lib") if at == 2 or at % 1000 == 0 else ("busy", "secret")
        action, last = ("create-package", ("Repository",
                                           repository)) if at <= 2 else ("publish", ("Version", f"1.{at}"))
        trailers = (("Action", action), ("Workspace", WS), ("Package", package), last)
        return Commit(id=f"{at:040x}", time=datetime.now(UTC), author_name="a", author_email="a@example.com",
                      summary=f"{action} {package}", trailers=trailers)

    db = history._db()
    db.execute("BEGIN IMMEDIATE")
    _insert_many(db, start, [commit(at) for at in range(start, start + count)], filed=True)
    db.execute("COMMIT")


def test_a_history_page_costs_its_rows_however_long_the_history_and_whatever_is_hidden(tmp_path):
    """The first page of the trail for someone who sees a rare package among a busy hidden one, and
    a page far back in a package's history, read the same few rows at 4,000 and at 64,000 commits
    (reading the hidden rows, or the rows before the page, grows with the history)."""
    history = History(None, tmp_path / "history.sqlite3")
    costs = []
    fill(history, 1, 4000)
    for total in (4000, 64000):
        if total > 4000:
            fill(history, 4001, total - 4000)
        costs.append((
            sqlite_steps(history, lambda: history.trail(WS, readable={"public-lib"}, administered=set(), limit=51)),
            sqlite_steps(history, lambda: history.package(WS, "busy", limit=51, before=100)),
            sqlite_steps(history, lambda: history.package(WS, "busy", limit=51, after=100)),
            sqlite_steps(history, lambda: history.trail(WS, readable={"secret"}, administered=set(), limit=51,
                                                        before=100))))
        shown = [f.package for f in history.trail(WS, readable={"public-lib"}, administered=set(), limit=51)]
        assert shown == ["rare"] * min(51, total // 1000 + 1)  # (its creation, then every 1,000th)
    small, large = costs  # (thousands of steps: reading the hidden rows, or those before the page, took 28-84 at
    # 4,000 and 350-1,343 at 64,000)
    assert all(b <= a + 2 for a, b in zip(small, large, strict=True)) and max(large) <= 5, costs


async def test_following_older_and_newer_walks_a_history_exactly(client, world, tmp_path):
    """A package's history, 132 commits long, read by a stranger through the UI's Older links and
    back through Newer: every commit once, newest first, and back again."""
    reg, op = world.reg, identity.operator()
    publish(reg, op, make_wheel(tmp_path, PUBLIC, "1.0"))
    for i in range(130):
        operations.yank(reg, op, "cli", WS, PUBLIC, "1.0", "", undo=bool(i % 2))
    expected = [c.id for c in reg.history.package(WS, PUBLIC, limit=1000)]
    assert len(expected) > 2 * 50
    path, seen, pages = f"/-/{WS}/packages/{PUBLIC}/history", [], []
    url = path
    while url:
        page = await client.get(url)
        assert page.status_code == 200, page.text
        shown = re.findall(r"/commits/([0-9a-f]{40})", page.text)
        seen += shown
        pages.append(url)
        older = re.search(r'rel="next" href="([^"]+)"', page.text)
        url = html.unescape(older.group(1)) if older else None
    assert seen == expected and len(pages) == 3
    back = []
    url = pages[-1]
    while url:
        page = await client.get(url)
        back = re.findall(r"/commits/([0-9a-f]{40})", page.text) + back
        newer = re.search(r'rel="prev" href="([^"]+)"', page.text)
        url = html.unescape(newer.group(1)) if newer else None
    assert back[:50] == expected[:50]
    bogus = await client.get(f"{path}?before=nothing")
    assert bogus.status_code == 400 and "Newer and Older links" in bogus.text
