"""What the answer cache gives one request must be what that request would have been answered anew:
a cached index page depends on nothing the two requests differ in. Generated sequences of requests
(credentials of every kind, duplicated headers, every way of asking for a representation, junk
query strings) go through the front door, where repeat requests are answered from memory, and each
answer is compared with the app's own answer to the same request, cache bypassed.

Also: one reading of credentials per request (two Authorization headers are refused), a key made
only of what a page depends on (junk in the query or Accept adds no entry), and what a stranger is
sent, headers included, doesn't move when something they may not see does."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import identity, operations
from tests.support.asgi import call
from tests.support.world import WS, publish

ACCEPTS = [None, "application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html", "text/html",
           "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
           "text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9",
           "*/*", "application/json", "application/vnd.pypi.simple.latest+json", "text/html;q=0"]
PATHS = ["/", f"/{WS}/", f"/{WS}/acme-utils/", f"/{WS}/public-pkg/", f"/{WS}/secret-pkg/", "/acme-utils/",
         "/public-pkg/"]
QUERIES = ["", "format=application/vnd.pypi.simple.v1%2Bjson", "format=text/html", "x=1", "x=2&format=text/html",
           "format=application/vnd.pypi.simple.v1+json",
           "format=text/html&format=application/vnd.pypi.simple.v1%2Bjson"]
WHO = [None, "reader@acme.test", "outsider@acme.test", "wsadmin@acme.test", "dev-readonly"]
# what matters of an answer: the cache must not change it
COMPARED = ("content-type", "etag", "cache-control", "vary", "www-authenticate", "location")


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
