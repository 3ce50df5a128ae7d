"""Strangers learn nothing: whoever may not read a thing is answered exactly as if it didn't exist.

Every route is walked as a stranger (no credentials), as a user with no role at all, and as a user
of another repository, once for a private thing and once for a missing one with a name of the same
length; the two answers must be the same: status, body (names swapped) and headers.
"""

from __future__ import annotations

import pytest

from registry import identity, operations
from tests.support.helpers import OWN_HEADERS, make_wheel
from tests.support.world import WS, publish, upload_form

PRIVATE, MISSING = "secret-pkg", "secret-pkx"  # (same length: the bodies and their lengths compare as they are)
HIDDEN_WS, NO_WS = "hush", "hulk"

ROUTES = [
    ("GET", f"/{WS}/{{pkg}}/", {"accept": "application/vnd.pypi.simple.v1+json"}),
    ("GET", f"/{WS}/{{pkg}}/", {"accept": "text/html"}),
    ("HEAD", f"/{WS}/{{pkg}}/", {}),
    ("GET", f"/{WS}/{{pkg}}", {}),
    ("GET", f"/{WS}/Secret.{{tail}}/", {}),
    ("GET", f"/{WS}/{{pkg}}/1.0/{{file}}", {}),
    ("HEAD", f"/{WS}/{{pkg}}/1.0/{{file}}", {}),
    ("GET", f"/{WS}/{{pkg}}/1.0/{{file}}", {"range": "bytes=0-9"}),
    ("GET", f"/{WS}/{{pkg}}/1.0/{{file}}.metadata", {}),
    ("GET", f"/{WS}/{{pkg}}/9.9/{{file}}", {}),
    ("GET", "/{pkg}/", {}),
    ("GET", f"/{WS}/pypi/{{pkg}}/json", {}),
    ("GET", f"/{WS}/pypi/{{pkg}}/1.0/json", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/versions/1.0", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/history", {}),
    ("GET", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/versions/1.0/history", {}),
    ("DELETE", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/versions/1.0", {}),
    ("POST", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/versions/1.0/yank", {}),
    ("DELETE", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}/versions/1.0/yank", {}),
    ("DELETE", f"/api/workspaces/{WS}/packages/pypi/{{pkg}}", {}),
    ("UPLOAD", f"/{WS}/", {}),
]
WORKSPACE_ROUTES = [
    ("GET", "/{ws}/", {}),
    ("GET", "/{ws}", {}),
    ("GET", "/{ws}/vault-pkg/", {}),
    ("GET", "/{ws}/vault-pkg/1.0/vault_pkg-1.0-py3-none-any.whl", {}),
    ("GET", "/api/workspaces/{ws}/packages", {}),
    ("GET", "/api/workspaces/{ws}/projects/SEC/packages", {}),
    ("GET", "/api/workspaces/{ws}/repositories/vault/packages", {}),
    ("GET", "/api/workspaces/{ws}/packages/pypi/vault-pkg", {}),
    ("GET", "/{ws}/pypi/vault-pkg/json", {}),
    ("UPLOAD", "/{ws}/", {}),
]
CONTAINER_ROUTES = [  # repositories and a project the caller can't read, beside missing ones
    (f"/api/workspaces/{WS}/repositories/{{}}/packages", [("hidden", "hiddex"), ("secret", "secrex")]),
    (f"/api/workspaces/{WS}/projects/{{}}/packages", [("DARK", "DARX")]),
]
CALLERS = [None, "outsider@acme.test", "reader@acme.test"]  # reader: of acme/utils, not of acme/secret


@pytest.fixture
def secrets(world, tmp_path):
    op = identity.operator()
    wheels = {name: make_wheel(tmp_path, name, "1.0") for name in (PRIVATE, MISSING)}
    publish(world.reg, op, wheels[PRIVATE])
    for ws in (HIDDEN_WS,):
        operations.create_workspace(world.reg, op, "cli", ws, "Hush")
        operations.create_project(world.reg, op, "cli", ws, "SEC", "Secret")
        operations.create_repository(world.reg, op, "cli", ws, "vault", "SEC")
        operations.create_package(world.reg, op, "cli", ws, "vault-pkg", "vault")
        publish(world.reg, op, make_wheel(tmp_path, "vault-pkg", "1.0"), ws=ws)
    operations.create_repository(world.reg, op, "cli", WS, "hidden", "LABS")  # an empty private repository...
    operations.create_project(world.reg, op, "cli", WS, "DARK", "Dark")  # ...and a project with nothing readable
    operations.create_repository(world.reg, op, "cli", WS, "dark-repo", "DARK")
    wheels["vault-pkg"] = make_wheel(tmp_path, "vault-pkg", "1.0")
    return wheels


async def call(client, world, method: str, url: str, headers: dict, who: str | None, upload=None):
    headers = {**headers, **(world.basic(who) if who else {})}
    if method == "UPLOAD":
        data, files = upload_form(upload)
        return await client.post(url, data=data, files=files, headers=headers)
    body = {"json": {"reason": "x"}} if method == "POST" else {}
    return await client.request(method, url, headers=headers, follow_redirects=False, **body)


def comparable(response, swap: tuple[str, str] = ("", "")) -> tuple:
    mine, theirs = swap
    text = response.text
    for a, b in ((mine, theirs), (mine.replace("-", "_"), theirs.replace("-", "_"))):
        if a:
            text = text.replace(a, b)
    headers = {k: v.replace(mine, theirs) if mine else v for k, v in response.headers.items()
               if k not in OWN_HEADERS}
    return response.status_code, text, headers


def substitute(url: str, name: str) -> str:
    return url.format(pkg=name, tail=name.split("-")[1], file=f"{name.replace('-', '_')}-1.0-py3-none-any.whl")


@pytest.mark.parametrize("who", CALLERS)
async def test_private_packages_answer_as_missing_ones(client, world, secrets, who):
    compared = 0
    for method, url, headers in ROUTES:
        private = await call(client, world, method, substitute(url, PRIVATE), headers, who, secrets[PRIVATE])
        missing = await call(client, world, method, substitute(url, MISSING), headers, who, secrets[MISSING])
        assert comparable(private) == comparable(missing, (MISSING, PRIVATE)), f"{method} {url} as {who}"
        # (a publish of a name one can't read is the 403 of a name that doesn't exist: how it gets created)
        allowed = (301, 401, 403, 404) if method == "UPLOAD" else (301, 401, 404)
        assert private.status_code in allowed, f"{method} {url} as {who}: {private.status_code} {private.text}"
        if who is None and private.status_code == 401:
            assert private.headers["www-authenticate"].startswith("Basic realm=")
        compared += 1
    assert compared == len(ROUTES)


@pytest.mark.parametrize("who", CALLERS)
async def test_hidden_workspaces_answer_as_missing_ones(client, world, secrets, who):
    for method, url, headers in WORKSPACE_ROUTES:
        hidden = await call(client, world, method, url.format(ws=HIDDEN_WS), headers, who, secrets["vault-pkg"])
        missing = await call(client, world, method, url.format(ws=NO_WS), headers, who, secrets["vault-pkg"])
        assert comparable(hidden) == comparable(missing, (NO_WS, HIDDEN_WS)), f"{method} {url} as {who}"
        assert hidden.status_code in (301, 401, 404), f"{method} {url} as {who}: {hidden.status_code} {hidden.text}"


@pytest.mark.parametrize("who", CALLERS)
async def test_hidden_repositories_and_projects_answer_as_missing_ones(client, world, secrets, who):
    for url, pairs in CONTAINER_ROUTES:
        for present, absent in pairs:
            hidden = await call(client, world, "GET", url.format(present), {}, who)
            missing = await call(client, world, "GET", url.format(absent), {}, who)
            assert comparable(hidden) == comparable(missing, (absent, present)), f"{url} {present} as {who}"
            assert hidden.status_code in (401, 404), (url, present, who, hidden.status_code)


async def test_those_who_may_read_do_see(client, world, secrets):
    """The other half: the same routes answer those who may read (so the test above can fail)."""
    for who, target in (("wsadmin@acme.test", PRIVATE), (None, "public-pkg")):
        r = await call(client, world, "GET", f"/api/workspaces/{WS}/packages/pypi/{target}", {}, who)
        assert r.status_code == 200, r.text
    r = await call(client, world, "GET", f"/{WS}/{PRIVATE}/", {}, "wsadmin@acme.test")
    assert r.status_code == 200 and PRIVATE.replace("-", "_") in r.text
    r = await call(client, world, "GET", f"/api/workspaces/{WS}/repositories/secret/packages", {}, "wsadmin@acme.test")
    assert r.status_code == 200 and r.json()["total"] == 1
    r = await call(client, world, "DELETE", f"/api/workspaces/{WS}/packages/pypi/acme-utils/versions/1.0", {},
                   "reader@acme.test")
    assert r.status_code == 403  # a reader knows it exists: told what permission is missing


async def test_invalid_names_are_a_404_that_says_what_a_name_is(client, world):
    for url in (f"/{WS}/..%2f..%2fetc/", f"/{WS}/-bad-/", "/-bad-/", f"/api/workspaces/{WS}/packages/pypi/-x-"):
        r = await client.get(url, headers=world.basic("reader@acme.test"), follow_redirects=False)
        assert r.status_code == 404, (url, r.status_code, r.headers.get("location"))
        assert "is not a valid project name" in r.text and "location" not in r.headers


async def test_oversized_request_headers_are_a_431(client, world):
    r = await client.get(f"/{WS}/", headers={"x-filler": "a" * 17_000})
    assert r.status_code == 431 and "the limit is 16 KiB" in r.text
    assert (await client.get(f"/{WS}/", headers={"x-filler": "a" * 15_000})).status_code != 431


# --- the web UI: the same rule, for pages -----------------------------------------------------

UI_ROUTES = [
    ("GET", f"/-/{WS}/packages/{{pkg}}/"), ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/"),
    ("GET", f"/-/{WS}/packages/{{pkg}}/history"), ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/history"),
    ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/files/{{file}}"), ("GET", f"/-/{WS}/packages/{{pkg}}/delete"),
    ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/delete"), ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/yank"),
    ("GET", f"/-/{WS}/packages/{{pkg}}/1.0/unyank"), ("POST", f"/-/{WS}/packages/{{pkg}}/delete"),
    ("POST", f"/-/{WS}/packages/{{pkg}}/1.0/delete"), ("POST", f"/-/{WS}/packages/{{pkg}}/1.0/yank"),
    ("POST", f"/-/{WS}/packages/{{pkg}}/1.0/unyank"), ("GET", f"/-/{WS}/?q={{pkg}}"),
]
UI_WORKSPACE_ROUTES = [
    ("GET", "/-/{ws}/"), ("GET", "/-/{ws}/history"), ("GET", "/-/{ws}/projects/SEC/"), ("GET", "/-/{ws}/repos/vault/"),
    ("GET", "/-/{ws}/repos/vault/history"), ("GET", "/-/{ws}/packages/vault-pkg/"), ("GET", "/-/{ws}/new"),
    ("POST", "/-/{ws}/new"), ("POST", "/-/{ws}/packages/vault-pkg/1.0/yank"),
]
UI_CONTAINER_ROUTES = [
    (f"/-/{WS}/repos/{{}}/", [("hidden", "hiddex"), ("secret", "secrex")]),
    (f"/-/{WS}/repos/{{}}/history", [("hidden", "hiddex"), ("secret", "secrex")]),
    (f"/-/{WS}/projects/{{}}/", [("DARK", "DARX")]),
]


def _ui_headers(world, who: str | None) -> tuple[dict, str]:
    """Cookie headers of a browser (a visitor, or a session of ``who``) and its CSRF token."""
    import time

    from registry.web.ui.session import (
        SESSION_COOKIE,
        VISITOR_COOKIE,
        Keys,
        Session,
        csrf_token,
    )

    keys = Keys.of_primary(world.reg.settings)
    cookies, sid = {VISITOR_COOKIE: "visitor" * 3}, "visitor" * 3
    if who:
        started = world.__dict__.setdefault("ui_sessions", {})  # (one per person: signing in is a commit)
        if who not in started:
            started[who] = operations.start_session(world.reg, world.principal(who))
        sid = "session" * 3
        cookies[SESSION_COOKIE] = Session(world.email(who), started[who].session.id, sid, time.time() + 3600,
                                          started[who].commit).cookie(keys)
    return {"cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}, csrf_token(sid)


async def ui_call(client, world, method: str, url: str, who: str | None):
    client.cookies.clear()
    headers, csrf = _ui_headers(world, who)
    body = {"data": {"csrf": csrf, "reason": "x", "name": "vault-pkg",
                     "repository": "vault"}} if method == "POST" else {}
    return await client.request(method, url, headers=headers, follow_redirects=False, **body)


@pytest.mark.parametrize("who", CALLERS)
async def test_ui_pages_answer_private_packages_as_missing_ones(client, world, secrets, who):
    for method, url in UI_ROUTES:
        private = await ui_call(client, world, method, substitute(url, PRIVATE), who)
        missing = await ui_call(client, world, method, substitute(url, MISSING), who)
        assert comparable(private) == comparable(missing, (MISSING, PRIVATE)), f"{method} {url} as {who}"
        if "?q=" not in url:
            assert private.status_code in (401, 404), f"{method} {url} as {who}: {private.status_code}"
            assert "www-authenticate" not in private.headers and "<html" in private.text  # a page, not a prompt
        else:
            assert f"/packages/{PRIVATE}/" not in private.text and "0 packages" in private.text


@pytest.mark.parametrize("who", CALLERS)
async def test_ui_pages_answer_hidden_workspaces_repositories_and_projects_as_missing_ones(client, world, secrets, who):
    for method, url in UI_WORKSPACE_ROUTES:
        hidden = await ui_call(client, world, method, url.format(ws=HIDDEN_WS), who)
        missing = await ui_call(client, world, method, url.format(ws=NO_WS), who)
        assert comparable(hidden) == comparable(missing, (NO_WS, HIDDEN_WS)), f"{method} {url} as {who}"
        assert hidden.status_code in (401, 404), (url, who, hidden.status_code)
    for url, pairs in UI_CONTAINER_ROUTES:
        for present, absent in pairs:
            hidden = await ui_call(client, world, "GET", url.format(present), who)
            missing = await ui_call(client, world, "GET", url.format(absent), who)
            assert comparable(hidden) == comparable(missing, (absent, present)), f"{url} {present} as {who}"
            assert hidden.status_code in (401, 404), (url, present, who, hidden.status_code)


async def test_ui_pages_show_those_who_may_read(client, world, secrets):
    """The other half: the same pages answer those who may read (so the tests above can fail)."""
    r = await ui_call(client, world, "GET", f"/-/{WS}/packages/{PRIVATE}/1.0/", "wsadmin@acme.test")
    assert r.status_code == 200 and "secret_pkg-1.0-py3-none-any.whl" in r.text
    r = await ui_call(client, world, "GET", f"/-/{WS}/?q={PRIVATE}", "wsadmin@acme.test")
    assert PRIVATE in r.text
    r = await ui_call(client, world, "GET", f"/-/{WS}/packages/public-pkg/", None)
    assert r.status_code == 200 and "Your role: <strong class=\"role\">read</strong>" in r.text
    r = await ui_call(client, world, "POST", f"/-/{WS}/packages/acme-utils/delete", "reader@acme.test")
    assert r.status_code == 403  # a reader knows it exists: told what permission is missing
