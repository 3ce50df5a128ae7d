"""The web UI in-process (Litestar's test client): entering, sessions, CSRF, roles, lists, history."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import cli, datadir, identity, maintenance, operations
from registry.reads import Reader, records
from registry.web.ui import data
from registry.web.ui import session as sessions
from tests.support.helpers import make_wheel
from tests.support.world import BOTH, WS, publish

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
INSTALLERS = {
    "pip": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01",
    "uv": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01",
    "poetry": "application/vnd.pypi.simple.v1+json, */*;q=0.1",
    "old pip": "text/html", "curl": "*/*", "none": None,
}


async def csrf_of(client, path: str = "/-/_/signin") -> str:
    return CSRF.search((await client.get(path)).text).group(1)


async def sign_in(client, world, who: str) -> None:
    client.cookies.clear()
    r = await client.post("/-/_/signin", data={"csrf": await csrf_of(client), "email": world.email(who),
                                               "token": world.tokens[who]}, follow_redirects=False)
    assert r.status_code == 303, r.text


async def test_browsers_are_sent_to_the_ui_and_installers_are_not(client, world):
    for accept in (CHROME, FIREFOX):
        for path, target in (("/", "/-/"), (f"/{WS}/", f"/-/{WS}/"), (f"/{WS}", f"/-/{WS}/"),
                             (f"/{WS}/acme-utils/", f"/-/{WS}/packages/acme-utils/"),
                             # a file: the UI's download, which reads with the session (test_front.py)
                             (f"/{WS}/acme-utils/1.0/x.whl", f"/-/{WS}/packages/acme-utils/1.0/files/x.whl")):
            r = await client.get(path, headers={"accept": accept}, follow_redirects=False)
            assert (r.status_code, r.headers.get("location")) == (302, target), path
            assert r.headers["vary"] == "Accept"
        for path in (f"/{WS}/?format=application/vnd.pypi.simple.v1+html", f"/{WS}/acme-utils/1.0/x.whl.metadata",
                     "/api/workspaces/acme/packages", "/_/health"):
            r = await client.get(path, headers={"accept": accept}, follow_redirects=False)
            assert r.status_code != 302, path
    for name, accept in INSTALLERS.items():
        headers = {**world.basic("reader@acme.test"), **({"accept": accept} if accept else {})}
        r = await client.get(f"/{WS}/", headers=headers, follow_redirects=False)
        assert r.status_code == 200 and "Acme.Utils" in r.text, name
    r = await client.get(f"/{WS}/acme-utils/", follow_redirects=False)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")  # (unchanged for clients)


async def test_a_session_is_a_signed_cookie_that_dies_with_its_token(client, world):
    r = await client.get("/-/_/signin")
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=lax" in r.headers["set-cookie"]
    r = await client.post("/-/_/signin", data={"csrf": CSRF.search(r.text).group(1), "email": "dev@acme.test",
                                               "token": world.tokens["dev@acme.test"], "next": "https://evil.test/"},
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/-/"  # never to another site
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("registry_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/-" in session and "Secure" not in session
    assert world.tokens["dev@acme.test"] not in session
    key = world.reg.settings.data_path / "web-session.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    page = await client.get(f"/-/{WS}/packages/acme-utils/")
    assert page.status_code == 200 and "Your role: <strong class=\"role\">write</strong>" in page.text
    assert "no-store" in page.headers["cache-control"] and page.headers["x-frame-options"] == "DENY"
    value = client.cookies["registry_session"]
    client.cookies.set("registry_session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"), path="/-")
    assert (await client.get(f"/-/{WS}/packages/acme-utils/")).status_code == 401  # tampered: no one
    # signed by any key but the primary's (say, by a replica, which holds only the public half): no one
    replica_keys = sessions.Keys.of_replica(world.reg.settings)
    with pytest.raises(RuntimeError, match="makes no sessions"):
        sessions.Session("dev@acme.test", "0" * 32, "s", 1e10, "0" * 40).cookie(replica_keys)
    body = value.split(".")[0]
    forged = f"{body}.{sessions._b64(Ed25519PrivateKey.generate().sign(b'session:' + body.encode()))}"
    client.cookies.set("registry_session", forged, path="/-")
    assert (await client.get(f"/-/{WS}/packages/acme-utils/")).status_code == 401
    client.cookies.set("registry_session", value, path="/-")
    token_id = world.principal("dev@acme.test").token_id
    operations.revoke_token(world.reg, identity.operator(), "cli", "dev@acme.test", token_id)
    r = await client.get(f"/-/{WS}/packages/acme-utils/")
    assert r.status_code == 401 and "Sign in to see this" in r.text and "www-authenticate" not in r.headers
    assert 'registry_session=""' in r.headers["set-cookie"]


async def test_sessions_are_secure_cookies_behind_https(world, tmp_path):
    from litestar.testing import AsyncTestClient

    from registry.web.app import create_asgi

    settings = world.reg.settings.__class__(data=world.reg.settings.data, public_url="https://registry.example")
    behind_a_proxy = datadir.Registry(settings, world.reg.ledger, world.reg.blobs)
    async with AsyncTestClient(app=create_asgi(settings, behind_a_proxy)) as c:
        r = await c.get("/-/_/signin")
        assert "Secure" in r.headers["set-cookie"]
        r = await c.get(f"/-/{WS}/packages/public-pkg/")
        assert "https://registry.example/acme/" in r.text  # install snippets name the public URL


async def test_sign_in_links_work_once_expire_and_are_commits(client, world, capsys):
    assert cli.main(["--data", world.reg.settings.data, "login-link", "dev@acme.test"]) == 0
    url = capsys.readouterr().out.strip()
    secret = url.rsplit("/", 1)[1]
    assert url.startswith("http://127.0.0.1:8080/-/_/link/rgl_") and secret not in _everything_in_git(world)
    created = world.reg.ledger.commit(world.reg.ledger.head())
    assert created.summary.startswith("create sign-in link") and ("User", "dev@acme.test") in created.trailers
    page = await client.get(f"/-/_/link/{secret}")
    assert page.status_code == 200 and "Sign in as dev@acme.test" in page.text
    r = await client.post(f"/-/_/link/{secret}", data={"csrf": CSRF.search(page.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303
    used = world.reg.ledger.commit(world.reg.ledger.head())
    assert used.summary.startswith("sign in dev@acme.test with link") and used.author_email == "dev@acme.test"
    assert "dev@acme.test" in (await client.get("/-/")).text
    r = await client.post(f"/-/_/link/{secret}", data={"csrf": await csrf_of(client, "/-/")}, follow_redirects=False)
    assert r.status_code == 403 and "was used at" in r.text
    # signing out ends the link's session for good: its record is deleted, in a commit
    r = await client.post("/-/_/signout", data={"csrf": await csrf_of(client, "/-/")}, follow_redirects=False)
    assert (r.status_code == 303
            and world.reg.ledger.commit(world.reg.ledger.head()).summary.startswith("sign out dev@acme.test"))
    stale, _ = operations.create_signin_link(world.reg, identity.operator(), "cli", "dev@acme.test",
                                             timedelta(seconds=-1))
    assert "expired at" in (await client.get(f"/-/_/link/{stale}")).text
    assert (await client.get("/-/_/link/rgl_nothing")).status_code == 404
    assert cli.main(["--data", world.reg.settings.data, "login-link", "nobody@acme.test"]) == 1
    assert cli.main(["--data", world.reg.settings.data, "login-link", "dev@acme.test", "--url",
                     "https://r.example/"]) == 0
    assert capsys.readouterr().out.startswith("https://r.example/-/_/link/rgl_")
    assert maintenance.verify(world.reg, hash_blobs=False).ok  # (a link is a known kind of record)


def _everything_in_git(world) -> str:
    repo = world.reg.ledger.repo()
    return "\n".join(repo[o].data.decode("utf-8",
                                         "replace") if repo[o].type_str == "blob" else getattr(repo[o], "message", "")
                     for o in repo.odb)


async def test_state_changes_need_the_csrf_token_and_the_permission(client, world, tmp_path):
    publish(world.reg, identity.operator(), make_wheel(tmp_path, "Acme.Utils", "1.0"))
    await sign_in(client, world, "reader@acme.test")
    head = world.reg.ledger.head()  # (after signing in: that is a commit)
    csrf = await csrf_of(client, "/-/")
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank", data={"csrf": csrf})
    assert r.status_code == 403 and "needs write permission" in r.text and "<html" in r.text
    page = (await client.get(f"/-/{WS}/packages/acme-utils/")).text
    assert "data-confirm" not in page and "/yank" not in page
    await sign_in(client, world, "dev@acme.test")
    head = world.reg.ledger.head()
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank", data={"reason": "x"})
    assert r.status_code == 403 and "security token" in r.text
    # another session's
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank", data={"csrf": csrf, "reason": "x"})
    assert r.status_code == 403
    assert world.reg.ledger.head() == head
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank",
                          data={"csrf": await csrf_of(client, "/-/"), "reason": "bad"},
                          follow_redirects=False)
    assert r.status_code == 303 and records.get_version(world.reg.snapshot(), WS, "acme-utils", "1.0").yanked
    assert dict(world.reg.ledger.commit(world.reg.ledger.head()).trailers)["Channel"] == "web"
    r = await client.post(f"/-/{WS}/packages/acme-utils/delete", data={"csrf": await csrf_of(client, "/-/")})
    assert r.status_code == 403 and "needs admin permission" in r.text  # write deletes versions, not packages


async def test_create_package_offers_the_repositories_you_administer(client, world):
    await sign_in(client, world, "owner@acme.test")  # admin of acme/utils only
    page = await client.get(f"/-/{WS}/new")
    assert re.findall(r'<option value="([^"]+)"', page.text) == ["pypi", "utils"]
    csrf = CSRF.search(page.text).group(1)
    r = await client.post(f"/-/{WS}/new", data={"csrf": csrf, "name": "-bad-", "repository": "utils"})
    assert r.status_code == 400 and "Invalid package name" in r.text and 'value="-bad-"' in r.text
    r = await client.post(f"/-/{WS}/new", data={"csrf": csrf, "name": "Acme.Utils", "repository": "utils"})
    assert r.status_code == 409 and "already exists" in r.text
    r = await client.post(f"/-/{WS}/new", data={"csrf": csrf, "name": "sneaky", "repository": "public-lib"})
    assert r.status_code == 403 and "needs admin permission on repository acme/public-lib" in r.text
    r = await client.post(f"/-/{WS}/new", data={"csrf": csrf, "name": "New.Thing", "repository": "utils"},
                          follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/-/{WS}/packages/new-thing/")
    await sign_in(client, world, "wsadmin@acme.test")
    assert len(re.findall(r'<option value="', (await client.get(f"/-/{WS}/new")).text)) == 1 + 3
    await sign_in(client, world, "dev@acme.test")
    assert "You administer no repository" in (await client.get(f"/-/{WS}/new")).text


async def test_package_lists_search_sort_and_page(client, world):
    op = identity.operator()
    for n in range(60):
        operations.create_package(world.reg, op, "cli", WS, f"bulk-{n:02d}", "utils")
    reg, who = world.reg, world.principal("reader@acme.test")
    listing = data.packages(reg, who, WS)
    assert listing.total == 62 and listing.pages == 2 and len(listing.rows) == 50  # (not secret-pkg: no read)
    assert [r.name for r in data.packages(reg, who, WS, page=2).rows][-1] == "public-pkg"
    assert data.packages(reg, who, WS, q="Bulk_0").total == 10
    assert data.packages(reg, who, WS, repository="public-lib").total == 1
    assert data.packages(reg, who, WS, project="CORE").total == 61
    await sign_in(client, world, "reader@acme.test")
    page = await client.get(f"/-/{WS}/?q=bulk-05&sort=published")
    assert page.status_code == 200 and "1 package matching" in page.text
    assert (await client.get(f"/-/{WS}/?sort=size")).status_code == 400
    assert "secret-pkg" not in (await client.get(f"/-/{WS}/?q=secret")).text


async def test_history_and_commit_pages_show_only_what_you_may_read(client, world, tmp_path):
    publish(world.reg, identity.operator(), make_wheel(tmp_path, "secret-pkg", "1.0"))
    published = world.reg.ledger.head()
    project_commit = next(c.id for c in world.reg.ledger.walk() if c.summary.startswith("create project acme/CORE"))
    await sign_in(client, world, "reader@acme.test")
    history = (await client.get(f"/-/{WS}/history")).text
    assert "create package acme-utils" in history and "secret-pkg" not in history and "create project" not in history
    hidden = await client.get(f"/-/{WS}/commits/{published}")
    missing = await client.get(f"/-/{WS}/commits/{'0' * 40}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(published, "X") == missing.text.replace("0" * 40, "X")
    assert (await client.get(f"/-/{WS}/commits/{project_commit}")).status_code == 404
    await sign_in(client, world, "wsadmin@acme.test")
    page = await client.get(f"/-/{WS}/commits/{published}")
    assert page.status_code == 200 and "version secret-pkg 1" in page.text and 'class="add"' in page.text
    assert (await client.get(f"/-/{WS}/commits/{project_commit}")).status_code == 200
    assert "create project" in (await client.get(f"/-/{WS}/history")).text
    page = await client.get(f"/-/{WS}/packages/secret-pkg/1.0/history")
    assert "publish secret-pkg 1.0" in page.text and "upload" in page.text


async def test_creating_a_token_is_post_redirect_get_and_its_secret_is_shown_once(client, world):
    """Reloading the page a created token is shown on makes no second token, and the secret is shown
    once: never in a URL, the ledger or the log, and only to the session that made it."""
    await sign_in(client, world, "dev@acme.test")
    before = {t.id for t in Reader(world.reg).as_(identity.operator()).tokens("dev@acme.test")}
    page = await client.get("/-/_/tokens")
    r = await client.post("/-/_/tokens", data={"csrf": CSRF.search(page.text).group(1), "label": "laptop"},
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/-/_/tokens"
    made = {t.id for t in Reader(world.reg).as_(identity.operator()).tokens("dev@acme.test")} - before
    assert len(made) == 1
    sealed = client.cookies.get("registry_new_token")
    assert sealed and "rgy_" not in sealed and "rgy_" not in r.headers["location"]
    shown = await client.get("/-/_/tokens")
    secret = re.search(r"(rgy_[A-Za-z0-9_-]+)", shown.text).group(1)
    assert identity.check_token(world.reg.snapshot(), "dev@acme.test", secret).token_id in made
    for _ in range(2):  # reloading: the same page, one token, no secret
        again = await client.get("/-/_/tokens")
        assert again.status_code == 200 and secret not in again.text and "rgy_" not in again.text
        assert {t.id for t in Reader(world.reg).as_(identity.operator()).tokens("dev@acme.test")} - before == made
    assert secret not in _everything_in_git(world)
    # the sealed cookie replayed: to a new session of the same person, to another person's session,
    # or tampered with, it shows nothing (and is cleared)
    for who, value in (("dev@acme.test", sealed), ("reader@acme.test", sealed),
                       ("dev@acme.test", sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))):
        await sign_in(client, world, who)
        client.cookies.set("registry_new_token", value, path="/-")
        page = await client.get("/-/_/tokens")
        assert page.status_code == 200 and secret not in page.text
    # (made by the session that shows it, it is shown: the first display above; any other page clears it)


async def test_your_tokens_create_once_and_revoke(client, world):
    await sign_in(client, world, "dev@acme.test")
    page = await client.get("/-/_/tokens")
    r = await client.post("/-/_/tokens", data={"csrf": CSRF.search(page.text).group(1), "label": "ci", "scope": "read",
                                               "expires_days": "30"})
    secret = re.search(r"(rgy_[A-Za-z0-9_-]+)", r.text).group(1)
    assert r.status_code == 200 and identity.check_token(world.reg.snapshot(), "dev@acme.test", secret).scope == "read"
    assert secret not in (await client.get("/-/_/tokens")).text  # shown once
    made = identity.check_token(world.reg.snapshot(), "dev@acme.test", secret).token_id
    confirm = await client.get(f"/-/_/tokens/{made}/revoke")
    assert "Revoke token" in confirm.text
    r = await client.post(f"/-/_/tokens/{made}/revoke", data={"csrf": CSRF.search(confirm.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303
    with pytest.raises(Exception, match="revoked"):
        identity.check_token(world.reg.snapshot(), "dev@acme.test", secret)
    own = world.principal("dev@acme.test").token_id
    r = await client.post(f"/-/_/tokens/{own}/revoke", data={"csrf": CSRF.search(confirm.text).group(1)},
                          follow_redirects=False)
    assert r.headers["location"].startswith("/-/_/signin")
    assert (await client.get("/-/_/tokens")).status_code == 401


async def test_missing_pages_are_pages(client, world):
    r = await client.get(f"/-/{WS}/nowhere/at/all")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "Nothing here" in r.text
    r = await client.get(f"/-/{WS}/packages/secret-pkg/")
    assert r.status_code == 401 and "Sign in to see this" in r.text and "www-authenticate" not in r.headers


@BOTH
async def test_a_file_downloads_from_its_version_page(client, world, tmp_path):
    """From the data directory, or streamed from the bucket the registry's files are in."""
    wheel = make_wheel(tmp_path, "Acme.Utils", "1.0", payload=3 * 2**20)
    publish(world.reg, identity.operator(), wheel)
    await sign_in(client, world, "reader@acme.test")
    r = await client.get(f"/-/{WS}/packages/acme-utils/1.0/files/{wheel.name}")
    assert r.status_code == 200 and r.content == wheel.read_bytes()
    assert r.headers["cache-control"] == "private, no-store" and wheel.name in r.headers["content-disposition"]


async def test_members_see_the_upstream_indexes_and_a_squatter_on_an_owned_name(client, world, tmp_path):
    from registry.operations import upstream as verbs
    from tests.support.upstream_index import Index, Served

    index = Index()
    try:
        index.files["acme_utils-9.0-py3-none-any.whl"] = Served(make_wheel(tmp_path, "acme-utils", "9.0").read_bytes())
        op = identity.operator()
        verbs.add_upstream(world.reg, op, "cli", WS, "corp", index.url,
                           username="bot", password="never-shown")
        verbs.add_rule(world.reg, op, "cli", WS, "deny", "evil-*", "typosquats")
        verbs.set_cooldown(world.reg, op, "cli", WS, 7)
        await sign_in(client, world, "reader@acme.test")
        listing = await client.get(f"/-/{WS}/")
        assert "Upstream indexes" in listing.text and index.url in listing.text and "credentials set" in listing.text
        assert "evil-*" in listing.text and "typosquats" in listing.text and "7 days old" in listing.text
        assert "never-shown" not in listing.text
        package = await client.get(f"/-/{WS}/packages/acme-utils/")
        assert 'id="also-upstream"' in package.text and "<strong>corp</strong>" in package.text
        assert "squatter" in package.text
        await sign_in(client, world, "outsider@acme.test")  # (reads the public repository only: no member)
        assert "Upstream indexes" not in (await client.get(f"/-/{WS}/")).text
    finally:
        index.close()
