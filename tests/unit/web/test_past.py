"""The index as it stood: `/<ws>/@<commit>/` and `/<ws>/@<ISO time>/` serve what the index served
then (HTML and JSON, project pages, files), to whoever may read it now; files deleted since are
410 Gone once their bytes are freed. pip and uv, pointed there, resolve as they did then."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pygit2
import pytest

from registry import identity, maintenance, operations
from tests.support.world import WS, publish

JSON = {"accept": "application/vnd.pypi.simple.v1+json"}
READER = "reader@acme.test"


@pytest.fixture
def history(world, dists):
    """1.0.0 published (`then`, and the time of it), then 1.1.0 and 2.0.0rc1 published, 1.1.0
    yanked, 1.0.0 deleted."""
    reg, op = world.reg, identity.operator()
    for path in dists[("Acme.Utils", "1.0.0")]:
        publish(reg, op, path)
    then = reg.ledger.head()
    when = datetime.fromtimestamp(reg.ledger.repo()[then].committer.time, UTC)
    time.sleep(1.1)  # (commit times are whole seconds: what follows must be later than `when`)
    for version in ("1.1.0", "2.0.0rc1"):
        for path in dists[("Acme.Utils", version)]:
            publish(reg, op, path)
    operations.yank(reg, op, "cli", WS, "acme-utils", "1.1.0", "broken")
    operations.delete_version(reg, op, "cli", WS, "acme-utils", "1.0.0")
    deleted = reg.ledger.head()
    return dict(then=then, when=when.strftime("%Y-%m-%dT%H:%M:%SZ"), deleted=deleted, world=world)


async def test_the_past_index_is_the_index_of_then(client, world, dists):
    reg, op = world.reg, identity.operator()
    for path in dists[("Acme.Utils", "1.0.0")]:
        publish(reg, op, path)
    auth = world.basic(READER)
    formats = {"html": {}, "json": JSON}
    pages = {(u, f): (await client.get(u, headers={**auth, **formats[f]})).content
             for u in (f"/{WS}/", f"/{WS}/acme-utils/") for f in formats}
    then = reg.ledger.head()
    operations.yank(reg, op, "cli", WS, "acme-utils", "1.0.0", "broken")
    for path in dists[("Acme.Utils", "1.1.0")]:
        publish(reg, op, path)
    operations.create_package(reg, op, "cli", WS, "later-pkg", "utils")
    for (url, fmt), body in pages.items():
        past = url.replace(f"/{WS}/", f"/{WS}/@{then}/", 1)
        response = await client.get(past, headers={**auth, **formats[fmt]})
        assert response.status_code == 200 and response.content == body, past
        now = await client.get(url, headers={**auth, **formats[fmt]})
        assert now.content != body
    short = await client.get(f"/{WS}/@{then[:10]}/acme-utils/", headers=auth)  # an abbreviated commit id
    assert short.status_code == 200 and b"data-yanked" not in short.content and b"1.1.0" not in short.content


async def test_a_time_names_the_last_commit_made_by_then(client, history):
    world = history["world"]
    auth = world.basic(READER)
    by_commit = await client.get(f"/{WS}/@{history['then']}/acme-utils/", headers={**auth, **JSON})
    by_time = await client.get(f"/{WS}/@{history['when']}/acme-utils/", headers={**auth, **JSON})
    assert by_time.status_code == 200 and by_time.content == by_commit.content
    versions = by_time.json()["versions"]
    assert versions == ["1.0.0"] and all(f["yanked"] is False for f in by_time.json()["files"])
    now = (await client.get(f"/{WS}/acme-utils/", headers={**auth, **JSON})).json()
    assert now["versions"] == ["1.1.0", "2.0.0rc1"]
    early = await client.get(f"/{WS}/@2001-01-01/", headers=auth)
    assert early.status_code == 404 and "begins later" in early.text


async def test_files_deleted_since_are_served_until_freed_then_gone(client, history):
    world, reg = history["world"], history["world"].reg
    auth = world.basic(READER)
    files = (await client.get(f"/{WS}/@{history['then']}/acme-utils/", headers={**auth, **JSON})).json()["files"]
    wheel = next(f for f in files if f["filename"].endswith(".whl"))
    url = f"/{WS}/@{history['then']}/acme-utils/{wheel['url']}"
    assert (await client.get(f"/{WS}/acme-utils/{wheel['url']}", headers=auth)).status_code == 404  # not today's
    served = await client.get(url, headers=auth)  # deleted, but its bytes are still stored
    assert served.status_code == 200 and served.headers["etag"] == f'"{wheel["hashes"]["sha256"]}"'
    assert (await client.get(url + ".metadata", headers=auth)).status_code == 200
    maintenance.collect(reg, grace_seconds=0, repack=False)
    for gone in (url, url + ".metadata"):
        response = await client.get(gone, headers=auth)
        assert response.status_code == 410, response.text
        assert f"was deleted by commit {history['deleted']} (after commit {history['then']})" in response.text


async def test_todays_permissions_apply_to_the_past(client, history):
    world, reg, op = history["world"], history["world"].reg, identity.operator()
    then = history["then"]
    page = f"/{WS}/@{then}/acme-utils/"
    assert (await client.get(page, headers=world.basic(READER))).status_code == 200
    operations.grant(reg, op, "cli", WS, READER, None, repository="utils")  # no longer a reader
    revoked = await client.get(page, headers=world.basic(READER))
    missing = await client.get(f"/{WS}/@{then}/no-such-pkg/", headers=world.basic(READER))
    assert revoked.status_code == missing.status_code == 404
    assert revoked.text == missing.text.replace("no-such-pkg", "acme-utils")
    operations.create_user(reg, op, "cli", "newcomer@acme.test")
    world.tokens["newcomer@acme.test"], _ = operations.create_token(reg, op, "cli", "newcomer@acme.test", "read")
    operations.grant(reg, op, "cli", WS, "newcomer@acme.test", "read", repository="utils")  # granted after `then`
    assert (await client.get(page, headers=world.basic("newcomer@acme.test"))).status_code == 200


async def test_strangers_learn_nothing_from_the_past(client, history):
    world, reg, op = history["world"], history["world"].reg, identity.operator()
    operations.create_workspace(reg, op, "cli", "hidden")
    operations.create_project(reg, op, "cli", "hidden", "P")
    operations.create_repository(reg, op, "cli", "hidden", "r", "P")
    head = reg.ledger.head()
    outsider = world.basic("outsider@acme.test")
    for ref in (head, "zzz", "2001-01-01"):
        private = await client.get(f"/hidden/@{ref}/", headers=outsider)
        missing = await client.get(f"/nowhere/@{ref}/", headers=outsider)
        assert private.status_code == missing.status_code == 404
        assert private.text == missing.text.replace("nowhere", "hidden")
        anonymous = await client.get(f"/hidden/@{ref}/x/")
        nobody = await client.get(f"/nowhere/@{ref}/x/")
        assert anonymous.status_code == nobody.status_code == 401
        assert anonymous.text == nobody.text.replace("nowhere", "hidden")
    secret = await client.get(f"/{WS}/@{history['then']}/secret-pkg/", headers=outsider)
    assert secret.status_code == 404


async def test_refs_that_name_no_commit_of_main_are_refused_clearly(client, history):
    world, reg = history["world"], history["world"].reg
    auth = world.basic(READER)
    repo = reg.ledger.repo()
    tip = repo[reg.ledger.head()]
    sig = pygit2.Signature("x", "x@example.com")
    stray = repo.create_commit(None, sig, sig, "not on main\n", tip.tree.id, [tip.id])  # in the repository, not on main
    for ref, words in (("zzz", "use a commit id"), ("0000000", "No commit of the ledger's main branch"),
                       (str(stray), "No commit of the ledger's main branch")):
        response = await client.get(f"/{WS}/@{ref}/", headers=auth)
        assert response.status_code == 404 and words in response.text, (ref, response.text)
    moved = await client.get(f"/{WS}/@{history['then']}", headers=auth, follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == f"/{WS}/@{history['then']}/"
    moved = await client.get(f"/{WS}/@{history['then']}/Acme.Utils/", headers=auth, follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == f"/{WS}/@{history['then']}/acme-utils/"
    page = await client.get(f"/{WS}/@{history['then']}/acme-utils/", headers=auth)
    again = await client.get(f"/{WS}/@{history['then']}/acme-utils/",
                             headers={**auth, "if-none-match": page.headers["etag"]})
    assert again.status_code == 304
    refused = await client.post(f"/{WS}/@{history['then']}/", headers=auth, files={"content": ("x.whl", b"x")})
    assert refused.status_code == 404 and "Uploads go to" in refused.text
    assert (await client.get(f"/{WS}/not-a-ref/acme-utils/", headers=auth)).status_code == 404


async def test_the_ui_version_page_links_to_the_index_as_of_its_publish(client, history):
    world, then = history["world"], history["then"]
    from tests.unit.web.ui.test_pages import CHROME, sign_in

    # 1.1.0's second file: after it came 2.0.0rc1's two, the yank and the deletion
    published = world.reg.ledger.repo().revparse_single("main~4")
    await sign_in(client, world, READER)  # (a commit: the session)
    page = await client.get(f"/-/{WS}/packages/acme-utils/1.1.0/")
    assert page.status_code == 200, page.text
    index = f"/{WS}/@{published.id}/"
    assert f"--index-url http://testserver.local{index}</code>" in page.text
    assert "the index as it stood when this version was published" in page.text
    assert f'href="/-/{WS}/commits/{published.id}"' in page.text
    shown = await client.get(f"{index}acme-utils/", headers=world.basic(READER), follow_redirects=False)
    assert shown.status_code == 200 and "1.1.0" in shown.text and "2.0.0rc1" not in shown.text
    seen = await client.get(f"{index}acme-utils/", headers={**world.basic(READER), "accept": CHROME},
                            follow_redirects=False)  # (a browser too is shown the index of then)
    assert seen.status_code == 200 and "1.1.0" in seen.text and "2.0.0rc1" not in seen.text
    then_page = await client.get(f"/{WS}/@{then}/", headers={**world.basic(READER), "accept": CHROME},
                                 follow_redirects=False)
    assert then_page.status_code == 200  # (a browser is shown the index of then, not sent to the UI)
