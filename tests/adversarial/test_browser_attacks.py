"""What another site's page can make a browser do to the registry: frame one of its HTML pages (every
HTML answer, the UI's, the API's Swagger page, the HTML index, error pages, says it may not be
framed), or send it a write that the browser attaches stored credentials to (every write from
another site is refused before it is read, whatever the route, the credentials and the body), or
forge a form of the UI (a CSRF token of any shape but the session's own is refused)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.support.asgi import call
from tests.support.inputs import NASTY
from tests.support.routes import every_route
from tests.unit.web.ui.test_pages import csrf_of, sign_in

FRAMING = {"x-frame-options": "DENY", "x-content-type-options": "nosniff"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _cookies(client) -> list[tuple[str, str]]:
    jar = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return [("cookie", jar)] if jar else []


@pytest.mark.parametrize("who", [None, "wsadmin@acme.test"])
async def test_no_html_page_can_be_framed(client, world, published, who):
    if who:
        await sign_in(client, world, who)
    seen = 0
    for method, path in every_route(client.served.app, {"GET"}):
        for accept in (BROWSER, "text/html", "*/*"):
            answer = await call(client.served, method, path, [("accept", accept), *_cookies(client)])
            if "html" not in (answer.header("content-type") or ""):
                continue
            seen += 1
            assert {k: answer.header(k) for k in FRAMING} == FRAMING, (path, answer.status, answer.headers)
            assert "frame-ancestors 'none'" in (answer.header("content-security-policy") or ""), path
    assert seen > 20, seen  # (the walk reached the UI's pages, Swagger and the HTML index)


async def test_swagger_is_not_framed(client):
    answer = await call(client.served, "GET", "/api/schema/swagger", [("accept", BROWSER)])
    assert answer.status == 200 and answer.header("x-frame-options") == "DENY"


CROSS = {"sec-fetch-site: cross-site": [("sec-fetch-site", "cross-site")],
         "sec-fetch-site: same-site": [("sec-fetch-site", "same-site")],
         "an older browser's Origin": [("origin", "http://evil.example")],
         "a look-alike Origin": [("origin", "http://registry.test.evil.example")]}


@pytest.mark.parametrize("how", sorted(CROSS))
async def test_writes_from_another_site_are_refused_everywhere(client, world, published, how):
    """With everything else right (the Basic credentials a browser caches, a session and its CSRF
    token), a write from another site's page is refused, and changes nothing."""
    await sign_in(client, world, "wsadmin@acme.test")
    csrf = await csrf_of(client, "/-/_/tokens")
    basic = list(world.basic("wsadmin@acme.test").items())
    head = world.reg.ledger.head()
    writes = [*every_route(client.served.app, {"POST", "DELETE", "PUT", "PATCH"}), ("POST", "/acme/")]
    assert len(writes) >= 15, writes  # (the walk reached the API's, the UI's and the token exchange's writes)
    for method, path in writes:
        answer = await call(client.served, method, path, [*basic, *_cookies(client), *CROSS[how],
                                                          ("content-type", "text/plain")], f"csrf={csrf}".encode())
        assert answer.status == 403 and b"from another site" in answer.body, (method, path, answer.status, answer.body)
    assert world.reg.ledger.head() == head


async def test_writes_from_the_registrys_own_pages_go_through(client, world, published):
    """Same-origin forms (and clients that send no Origin at all) are what the registry takes."""
    await sign_in(client, world, "wsadmin@acme.test")
    for site in ([("sec-fetch-site", "same-origin")], [("origin", "http://registry.test")], []):
        csrf = await csrf_of(client, "/-/_/tokens")
        answer = await call(client.served, "POST", "/-/_/tokens", [*_cookies(client), *site,
                            ("content-type", "application/x-www-form-urlencoded")],
                            f"csrf={csrf}&scope=read&label=same-site".encode())
        assert answer.status < 400, (site, answer.status, answer.body[:300])


# CSRF tokens another page could send: none, made up, another visitor's, not ASCII, not UTF-8, huge
FORGED = ["", "forged", "é", "名" * 43, "\udcff", "a" * 5000, *NASTY]


async def test_a_forged_csrf_token_of_any_shape_is_refused_on_every_form(client, world, published):
    """Signed in, from the registry's own origin, a form whose CSRF token isn't the session's is a
    403 that says so, on every form of the UI, and changes nothing."""
    others = await csrf_of(client)  # (a visitor's token, before signing in: not the session's)
    await sign_in(client, world, "wsadmin@acme.test")
    head = world.reg.ledger.head()
    forms = [(method, path) for method, path in every_route(client.served.app, {"POST"}) if path.startswith("/-/")]
    assert len(forms) >= 10, forms
    for method, path in forms:
        for token in [others, *FORGED]:
            body = "csrf=" + quote(token.encode("utf-8", "surrogatepass"), safe="")
            answer = await call(client.served, method, path, [*_cookies(client), ("sec-fetch-site", "same-origin"),
                                ("content-type", "application/x-www-form-urlencoded")], body.encode())
            assert answer.status == 403 and b"security token" in answer.body, (path, token[:20], answer.status,
                                                                                answer.body[:300])
    assert world.reg.ledger.head() == head
