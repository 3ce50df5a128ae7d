"""What the answer cache gives one request must be what that request would have been answered anew:
a cached index page depends on nothing the two requests differ in. Generated sequences of requests
(credentials of every kind, duplicated headers, every way of asking for a representation, junk
query strings) go through the front door, where repeat requests are answered from memory, and each
answer is compared with the app's own answer to the same request, cache bypassed.

Also: one reading of credentials per request (two Authorization headers are refused), a key made
only of what a page depends on (junk in the query or Accept adds no entry), and what a stranger is
sent, headers included, doesn't move when something they may not see does."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import identity, operations
from registry.errors import RegistryError
from tests.support.asgi import call
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

ACCEPTS = [None, "application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html", "text/html",
           "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
           "text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9",
           "*/*", "application/json", "application/vnd.pypi.simple.latest+json", "text/html;q=0"]
PATHS = ["/", f"/{WS}/", f"/{WS}/acme-utils/", f"/{WS}/public-pkg/", f"/{WS}/secret-pkg/", "/acme-utils/",
         "/public-pkg/", f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl.metadata",
         f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl"]
QUERIES = ["", "format=application/vnd.pypi.simple.v1%2Bjson", "format=text/html", "x=1", "x=2&format=text/html",
           "format=application/vnd.pypi.simple.v1+json",
           "format=text/html&format=application/vnd.pypi.simple.v1%2Bjson"]
WHO = [None, "reader@acme.test", "outsider@acme.test", "wsadmin@acme.test", "dev-readonly"]
# what matters of an answer: the cache must not change it
COMPARED = ("content-type", "etag", "cache-control", "vary", "www-authenticate", "location", "content-length",
            "accept-ranges", "content-disposition")


def _auth(world, who):
    return list(world.basic(who).items()) if who else []


request = st.tuples(st.sampled_from(PATHS), st.sampled_from(QUERIES), st.sampled_from(ACCEPTS),
                    st.lists(st.sampled_from(WHO), max_size=2), st.sampled_from(["GET", "HEAD"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=st.lists(request, min_size=2, max_size=12))
async def test_a_remembered_answer_is_the_answer(client, world, published, sequence):
    front, app = client.served, client.served.app
    for path, query, accept, who, method in sequence:
        headers = ([("accept", accept)] if accept else []) + [h for w in who for h in _auth(world, w)]
        target = path + (f"?{query}" if query else "")
        served = await call(front, method, target, headers)
        fresh = await call(app, method, target, headers)  # the app itself: no answer cache in front of it
        if sum(1 for w in who if w) > 1:  # two Authorization headers: refused before anything reads either
            assert served.status == 400 and b"more than one Authorization" in served.body, served
            continue
        if method == "HEAD":  # (the server, not the app, drops a HEAD's body)
            served.body = fresh.body = b""
        assert (served.status, served.body) == (fresh.status, fresh.body), (method, target, accept, who)
        assert {k: served.header(k) for k in COMPARED} == {k: fresh.header(k) for k in COMPARED}, (method, target)


_made = itertools.count()


def _change(world, out: Path, step: str) -> None:
    """One commit that moves what some page shows, or who may see it: each step toggles, so it
    commits however often it comes (the world lives across examples)."""
    op = identity.operator()
    if step == "publish":
        publish(world.reg, world.principal("wsadmin@acme.test"), make_wheel(out, "Acme.Utils", f"5.{next(_made)}"))
        return
    do, undo = {"yank": (lambda: operations.yank(world.reg, op, "cli", WS, "acme-utils", "1.0.0", "broken"),
                         lambda: operations.yank(world.reg, op, "cli", WS, "acme-utils", "1.0.0", undo=True)),
                "reader's grant": (
                    lambda: operations.grant(world.reg, op, "cli", WS, "reader@acme.test", None, repository="utils"),
                    lambda: operations.grant(world.reg, op, "cli", WS, "reader@acme.test", "read", repository="utils")),
                "dev's account": (lambda: operations.disable_user(world.reg, op, "cli", "dev@acme.test", "left"),
                                  lambda: operations.enable_user(world.reg, op, "cli", "dev@acme.test"))}[step]
    head = world.reg.ledger.head()
    try:
        do()
    except RegistryError:  # (so already: the other way, then)
        undo()
    assert world.reg.ledger.head() != head


step = st.one_of(st.integers(0, 2).map(lambda i: ("request", i)),
                 st.sampled_from(["publish", "yank", "reader's grant", "dev's account"]).map(
                     lambda c: ("change", c)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pool=st.lists(request, min_size=3, max_size=3), steps=st.lists(step, min_size=3, max_size=14))
async def test_a_repeated_request_is_answered_as_anew_after_every_change(client, world, published, tmp_path, pool,
                                                                         steps):
    """Repeats (the same bytes again) are answered before the front door reads anything of them
    (web/repeats.py): each request is sent three times, the third answered from there, between
    commits that change what the pages show and who may read them; every answer is compared with
    the app's own, and the repeats must actually have been used."""
    served, app = client.served, client.served.app
    repeats = served._state.repeats._repeats
    hits, requests = repeats.hits, 0
    for kind, what in steps:
        if kind == "change":
            _change(world, tmp_path, what)
            continue
        path, query, accept, who, method = pool[what]  # (a few requests, each asked again across changes)
        headers = ([("accept", accept)] if accept else []) + [h for w in who[:1] for h in _auth(world, w)]
        target = path + (f"?{query}" if query else "")
        fresh = await call(app, method, target, headers)
        for _ in range(3):
            answer = await call(served, method, target, headers)
            if method == "HEAD":
                answer.body = fresh.body = b""
            assert (answer.status, answer.body) == (fresh.status, fresh.body), (method, target, accept, who, steps)
            assert {k: answer.header(k) for k in COMPARED} == {k: fresh.header(k) for k in COMPARED}, (method, target)
            assert answer.header("x-request-id")
        requests += fresh.status in (200, 304)
    if requests:
        assert repeats.hits > hits, "no request was answered as a repeat"


async def test_two_authorization_headers_are_refused_everywhere(client, world, published):
    """The attack: a reader's credentials first and a stranger's last, once read by authentication
    and once by the cache key, planting a private page that strangers were then given."""
    both = _auth(world, "reader@acme.test") + _auth(world, "outsider@acme.test")
    for method, path in [("GET", f"/{WS}/acme-utils/"), ("GET", f"/{WS}/"), ("GET", "/"),
                         ("HEAD", f"/{WS}/acme-utils/"),
                         ("GET", f"/api/workspaces/{WS}/packages"), ("POST", f"/{WS}/"),
                         ("GET", f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl"),
                         ("DELETE", f"/api/workspaces/{WS}/packages/pypi/acme-utils/versions/1.0.0")]:
        answer = await call(client.served, method, path, both)
        assert answer.status == 400 and b"more than one Authorization header" in answer.body, (method, path, answer)
    stranger = await call(client.served, "GET", f"/{WS}/acme-utils/", _auth(world, "outsider@acme.test"))
    assert stranger.status == 404


async def test_the_key_holds_only_what_a_page_depends_on(client, world, published):
    answers = client.served._state.answers
    reader = _auth(world, "reader@acme.test")
    for n in range(300):
        junk = f"utm_source={'x' * 2000}{n}"
        accept = f"application/vnd.pypi.simple.v1+json;q=0.{n % 9 + 1}, text/plain;q=0.0{n % 7}"
        answer = await call(client.served, "GET", f"/{WS}/acme-utils/?{junk}", reader + [("accept", accept)])
        assert answer.status == 200
    assert len(answers._answers) == 1, list(answers._answers)[:3]


async def test_what_a_stranger_may_not_see_moves_nothing_they_are_sent(client, world, published, dists, tmp_path):
    """A private package changing (published to, yanked, created) changes neither the body nor any
    header a stranger gets for a page they may read, conditional requests included."""
    stranger = _auth(world, "outsider@acme.test")
    pages = [f"/{WS}/", f"/{WS}/public-pkg/", "/", "/public-pkg/"]
    before = {p: await call(client.served, "GET", p, stranger) for p in pages}
    assert all(a.status == 200 for a in before.values()), {p: a.status for p, a in before.items()}
    op, dev = identity.operator(), world.principal("dev@acme.test")
    operations.create_package(world.reg, op, "cli", WS, "hidden-thing", "secret")
    publish(world.reg, dev, dists[("Acme.Utils", "1.1.0")][0])
    operations.yank(world.reg, op, "cli", WS, "acme-utils", "1.0.0", "broken")
    for page in pages:
        after = await call(client.served, "GET", page, stranger)
        assert (after.status, after.body) == (before[page].status, before[page].body), page
        assert {k: after.header(k) for k in COMPARED} == {k: before[page].header(k) for k in COMPARED}, page
        etag = before[page].header("etag")
        assert (await call(client.served, "GET", page, stranger + [("if-none-match", etag)])).status == 304, page
    # ...while whoever may read it sees it move
    reader = _auth(world, "reader@acme.test")
    assert (await call(client.served, "GET", f"/{WS}/", reader)).header("etag") != before[f"/{WS}/"].header("etag")


async def test_a_file_and_its_metadata_are_the_same_answer_through_the_front_and_again(client, world, published):
    """Each credential's download of a file and of its `.metadata` (send.py keeps small ones as
    repeats): as the app itself answers it, the first time and the two after (read again from the
    store, never kept), GET and HEAD."""
    served, app = client.served, client.served.app
    repeats = served._state.repeats._repeats
    hits = repeats.hits
    file = f"/{WS}/acme-utils/1.0.0/acme_utils-1.0.0-py3-none-any.whl"
    for target in (file, file + ".metadata"):
        for who in WHO:
            for method in ("GET", "HEAD"):
                fresh = await call(app, method, target, _auth(world, who))
                for _ in range(3):
                    answer = await call(served, method, target, _auth(world, who))
                    if method == "HEAD":  # (the server, not the app, drops a HEAD's body)
                        answer.body = b""
                    assert (answer.status, answer.body) == (fresh.status, b"" if method == "HEAD" else fresh.body), \
                        (method, target, who)
                    assert {k: answer.header(k) for k in COMPARED} == {k: fresh.header(k) for k in COMPARED}
                if who in ("reader@acme.test", "wsadmin@acme.test") and method == "GET":
                    assert fresh.status == 200 and fresh.body, (target, who)
    assert repeats.hits > hits
