"""The UI's links, as a class: each page is declared once (web/ui/urls.py), its handler is registered
at that declaration under its name, and every link to it is built from it, so a link reaches the page
it names with exactly the values it was built from, whatever characters they hold."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import nodes
from litestar.utils.path import normalize_path

from registry.config import Settings
from registry.datadir import Registry
from registry.links import SIGNIN_LINK, signin_url
from registry.web.app import create_app
from registry.web.ui import urls
from registry.web.ui.render import TEMPLATES
from registry.web.ui.routes import HANDLERS

# What a name, version, filename, commit id or token id might hold, as far as a URL is concerned: any
# character but `/` (ASGI servers hand the path over decoded, so `%2F` is a `/` to every router) and
# surrogates (no UTF-8); `.` and `..` alone are what a browser resolves before asking.
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"), min_size=1, max_size=12
                 ).filter(lambda v: v not in (".", ".."))
# A workspace is a slug (a letter or digit first): `/-/_/` is the UI's own pages, never a workspace.
workspaces = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,11}", fullmatch=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    reg = Registry.open(Settings(data=str(tmp_path_factory.mktemp("links") / "data")), create=True)
    return create_app(reg.settings, reg)


def test_every_page_is_declared_once_and_answered_under_its_name(app):
    declared = {normalize_path(r.path): r for r in urls.ROUTES.values()}
    assert len(declared) == len(urls.ROUTES), "two routes declare one path"
    for handler in HANDLERS:
        (path,) = handler.paths
        assert path in declared, f"{handler} answers {path}, which no route in web/ui/urls.py declares"
    answered = {path for h in HANDLERS for path in h.paths}
    assert set(declared) <= answered, set(declared) - answered
    for route in urls.ROUTES.values():
        found = app.get_handler_index_by_name(route.name)
        assert found is not None and found["paths"] == [normalize_path(route.path)], route


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_link_reaches_its_page_with_the_values_it_was_built_from(app, data):
    route = data.draw(st.sampled_from(sorted(urls.ROUTES.values(), key=lambda r: r.name)))
    given_values = {p: data.draw(workspaces if p == "ws" else values, label=p) for p in route.parameters}
    link = route.link(**given_values)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", ""), link
    named = app.get_handler_index_by_name(route.name)["handler"]
    method = "GET" if "GET" in named.http_methods else "POST"
    _, handler, _, got, _ = app.asgi_router.handle_routing(normalize_path(unquote(parts.path)), method)
    assert handler is named and got == given_values, (link, handler, got)


def test_links_are_where_they_always_were():
    """Paths and their encoding as published (bookmarks, tests, the browser's history): a page with
    pages below it keeps its trailing `/`, and each value is percent-encoded whole."""
    ws = "default"
    assert urls.HOME.link() == "/-/"
    assert urls.WORKSPACE.link(ws=ws) == "/-/default/"
    assert urls.PACKAGE.link(ws=ws, name="a b") == "/-/default/packages/a%20b/"
    assert urls.VERSION.link(ws=ws, name="pkg", version="1.0+local/x") == "/-/default/packages/pkg/1.0%2Blocal%2Fx/"
    assert (urls.DOWNLOAD.link(ws=ws, name="pkg", version="1.0", filename="p-1.0#?.whl")
            == "/-/default/packages/pkg/1.0/files/p-1.0%23%3F.whl")
    assert urls.VERSION_HISTORY.link(ws=ws, name="pkg", version="1.0") == "/-/default/packages/pkg/1.0/history"
    assert urls.YANK.link(ws=ws, name="pkg", version="1.0") == "/-/default/packages/pkg/1.0/yank"
    assert urls.DELETE_PACKAGE.link(ws=ws, name="pkg") == "/-/default/packages/pkg/delete"
    assert urls.PROJECT.link(ws=ws, key="ACME") == "/-/default/projects/ACME/"
    assert urls.REPOSITORY_HISTORY.link(ws=ws, repo="lib") == "/-/default/repos/lib/history"
    assert urls.COMMIT.link(ws=ws, commit_id="abc%") == "/-/default/commits/abc%25"
    assert urls.REVOKE_TOKEN.link(token_id="t 1") == "/-/_/tokens/t%201/revoke"
    assert urls.SIGNIN.link(next="/-/default/?q=a b") == "/-/_/signin?next=%2F-%2Fdefault%2F%3Fq%3Da+b"
    assert urls.SIGNIN.link(next=None) == urls.SIGNIN.link(next="") == "/-/_/signin"
    assert urls.NEW_PACKAGE.link(ws=ws, repo="lib") == "/-/default/new?repo=lib"
    assert signin_url("http://h:8080/", "rgl_a/b") == "http://h:8080/-/_/link/rgl_a%2Fb"
    assert urls.ROUTES[SIGNIN_LINK.name] is SIGNIN_LINK


def test_templates_link_to_declared_pages_only():
    """Every `url_for` in a template names a declared page and gives each of its parameters; no
    template writes a path of ours by hand."""
    env = jinja2.Environment()
    calls = 0
    for template in sorted(TEMPLATES.glob("*.html")):
        source = template.read_text()
        for call in env.parse(source).find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name == "url_for"):
                continue
            calls += 1
            assert len(call.args) == 1 and isinstance(call.args[0], nodes.Const), (template.name, call)
            route = urls.ROUTES.get(call.args[0].value)
            assert route is not None, f"{template.name}: url_for names no declared page: {call.args[0].value!r}"
            missing = set(route.parameters) - {kw.key for kw in call.kwargs}
            assert not missing, f"{template.name}: url_for({route.name!r}) lacks {missing}"
        assert not re.search(r"""(?:href|action|hx-get|hx-post)=["']/(?!/)""", source), template.name
    assert calls > 40
