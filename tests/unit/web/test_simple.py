"""The Simple API in-process: negotiation, pages, redirects, caching, permissions and downloads."""

import base64
import dataclasses
import hashlib
import html as htmlmod
import json
import time
from datetime import UTC, datetime

import pytest

from registry import datadir, identity, model, operations
from registry.reads import records
from registry.web.negotiation import HTML, JSON, TEXT_HTML, NotAcceptable, negotiate
from registry.web.simple import render_index, render_project
from tests.support.world import WS, publish, upload_form

PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
POETRY = "application/vnd.pypi.simple.v1+json, */*;q=0.1"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("accept", "fmt", "expected"), [
    (PIP, None, JSON), (UV, None, JSON), (POETRY, None, JSON), (BROWSER, None, TEXT_HTML),
    (None, None, JSON), ("*/*", None, JSON), ("text/html", None, TEXT_HTML),
    ("application/vnd.pypi.simple.v1+html", None, HTML),
    ("application/vnd.pypi.simple.latest+json", None, JSON),
    ("application/vnd.pypi.simple.latest+html", None, HTML),
    ("application/vnd.pypi.simple.v1+json;q=0, text/html", None, TEXT_HTML),   # q=0 means "not this"
    ("application/*;q=0.5, text/html;q=0.4", None, JSON),
    ("*/*;q=0.5, application/vnd.pypi.simple.v1+json;q=0", None, HTML),       # the specific q=0 wins
    (PIP, "text/html", TEXT_HTML), (PIP, "application/vnd.pypi.simple.latest+html", HTML),
])
def test_negotiation(accept, fmt, expected):
    assert negotiate(accept, fmt) == expected


@pytest.mark.parametrize(("accept", "fmt"), [("application/json", None), ("text/plain", None),
                                             ("text/html;q=0, application/vnd.pypi.simple.v1+json;q=0", None),
                                             (None, "application/json")])
def test_nothing_acceptable(accept, fmt):
    with pytest.raises(NotAcceptable):
        negotiate(accept, fmt)


@pytest.fixture
def published(world, dists):
    dev = world.principal("dev@acme.test")
    out = {}
    for version in ("1.0.0", "1.1.0", "2.0.0rc1", "3.0"):
        sdist, wheel = dists[("Acme.Utils", version)]
        out[version] = (publish(world.reg, dev, wheel).file, publish(world.reg, dev, sdist).file)
    operations.yank(world.reg, dev, "api", WS, "acme-utils", "1.1.0", "broken <build> & more")
    return out


async def get(client, world, url, who="reader@acme.test", accept=PIP, **headers):
    if who:
        headers.update(world.basic(who))
    if accept:
        headers["accept"] = accept
    return await client.get(url, headers=headers, follow_redirects=False)


async def test_project_page_json(client, world, published):
    r = await get(client, world, f"/{WS}/acme-utils/")
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    assert "Accept" in r.headers["vary"] and r.headers["etag"].startswith('"')
    page = r.json()
    assert page["meta"]["api-version"] == "1.1" and page["name"] == "acme-utils"
    assert page["versions"] == ["1.0.0", "1.1.0", "2.0.0rc1", "3.0"]
    files = {f["filename"]: f for f in page["files"]}
    wheel, sdist = published["1.0.0"]
    w = files[wheel.filename]
    assert w["url"] == f"1.0.0/{wheel.filename}"
    assert w["hashes"] == {"sha256": wheel.sha256} and w["size"] == wheel.size
    assert w["requires-python"] == ">=3.8" and w["yanked"] is False
    assert w["core-metadata"] == {"sha256": wheel.metadata_sha256}
    assert "dist-info-metadata" not in w  # (PEP 714: pip 22.3 to 23.1 crash on it in JSON)
    assert w["upload-time"].endswith("Z") and len(w["upload-time"]) == 27
    assert files[sdist.filename]["core-metadata"] is False
    assert files[published["1.1.0"][0].filename]["yanked"] == "broken <build> & more"
    assert files[published["3.0"][0].filename]["requires-python"] == ">=3.99"


async def test_project_page_html(client, world, published):
    r = await get(client, world, f"/{WS}/acme-utils/", accept="text/html")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    body = r.text
    assert '<meta name="pypi:repository-version" content="1.1">' in body
    wheel, _ = published["1.0.0"]
    assert (f'<a href="1.0.0/{wheel.filename}#sha256={wheel.sha256}" data-requires-python="&gt;=3.8" '
            f'data-dist-info-metadata="sha256={wheel.metadata_sha256}" '
            f'data-core-metadata="sha256={wheel.metadata_sha256}">'
            f'{wheel.filename}</a>') in body
    assert 'data-yanked="broken &lt;build&gt; &amp; more"' in body
    r = await get(client, world, f"/{WS}/acme-utils/", accept="application/vnd.pypi.simple.v1+html")
    assert r.headers["content-type"] == HTML and r.text == body


async def test_redirects_to_the_canonical_url(client, world, published):
    for path, target in [(f"/{WS}/Acme.Utils/", f"/{WS}/acme-utils/"), (f"/{WS}/acme_utils", f"/{WS}/acme-utils/"),
                         (f"/{WS}/acme-utils", f"/{WS}/acme-utils/"), (f"/{WS}", f"/{WS}/"),
                         (f"/{WS}/ACME-utils/?format=text/html", f"/{WS}/acme-utils/?format=text/html")]:
        r = await get(client, world, path)
        assert (r.status_code, r.headers["location"]) == (301, target), path


async def test_etag_revalidation_and_a_publish_changes_the_page(client, world, published, dists):
    r = await get(client, world, f"/{WS}/acme-utils/")
    etag = r.headers["etag"]
    again = await get(client, world, f"/{WS}/acme-utils/", **{"if-none-match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    html_etag = (await get(client, world, f"/{WS}/acme-utils/", accept="text/html")).headers["etag"]
    assert html_etag != etag  # one ETag per representation
    # another writer (say, another granian worker) publishes: the next request sees it
    other = datadir.Registry.open(world.reg.settings)
    other.ledger  # noqa: B018
    operations.delete_version(other, identity.operator(), "cli", WS, "acme-utils", "3.0")
    r = await get(client, world, f"/{WS}/acme-utils/", **{"if-none-match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag and "3.0" not in r.json()["versions"]


async def test_unrelated_changes_keep_the_page_cached(client, world, published):
    etag = (await get(client, world, f"/{WS}/acme-utils/")).headers["etag"]
    operations.create_package(world.reg, identity.operator(), "cli", WS, "another", "utils")
    assert (await get(client, world, f"/{WS}/acme-utils/", **{"if-none-match": etag})).status_code == 304


@pytest.mark.parametrize(("who", "status"), [
    ("reader@acme.test", 200), ("dev@acme.test", 200), ("owner@acme.test", 200), ("wsadmin@acme.test", 200),
    ("projreader@acme.test", 200), ("dev-readonly", 200), ("outsider@acme.test", 404), (None, 401),
])
async def test_who_may_read_a_private_package(client, world, published, who, status):
    r = await get(client, world, f"/{WS}/acme-utils/", who=who)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic realm=")
    if status == 404:  # as if it didn't exist
        assert r.text == "Package 'acme-utils' does not exist in workspace acme.\n"


async def test_public_packages_are_readable_anonymously(client, world, dists):
    publish(world.reg, world.principal("wsadmin@acme.test"), dists[("public-pkg", "0.1")][1])
    r = await get(client, world, f"/{WS}/public-pkg/", who=None)
    assert r.status_code == 200 and r.headers["cache-control"].startswith("public")
    url = r.json()["files"][0]["url"]
    assert (await get(client, world, f"/{WS}/public-pkg/{url}", who=None)).status_code == 200
    index = await get(client, world, f"/{WS}/", who=None)
    assert [p["name"] for p in index.json()["projects"]] == ["public-pkg"]


def _refused_tokens(world, monkeypatch) -> dict[str, dict[str, str]]:
    """Every kind of API token that is no credential: unknown, another user's, revoked, expired."""
    from datetime import timedelta

    op = identity.operator()
    revoked, record = operations.create_token(world.reg, op, "cli", "reader@acme.test")
    operations.revoke_token(world.reg, op, "cli", "reader@acme.test", record.id)
    real = model.now
    monkeypatch.setattr(model, "now", lambda: real() - timedelta(days=3))  # made three days ago, for one day
    expired, _ = operations.create_token(world.reg, op, "cli", "reader@acme.test", expires_days=1)
    monkeypatch.undo()
    basic = lambda user, secret: {"authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}  # noqa: E731
    return {"unknown": basic("reader@acme.test", "rgy_nope"), "bearer": {"authorization": "Bearer xyz"},
            "another user's": basic("dev@acme.test", world.tokens["reader@acme.test"]),
            "revoked": basic("reader@acme.test", revoked), "expired": basic("reader@acme.test", expired)}


async def test_bad_credentials_are_401_everywhere_so_clients_say_so(client, world, published, dists, monkeypatch):
    # pip reports a 401 as "Credentials not correct" (a 403 it passes over in silence): every token
    # that is no credential is a 401 with WWW-Authenticate and the reason, on every kind of read and on uploads
    wheel, _ = published["1.0.0"]
    reasons = {"unknown": "Invalid credentials", "bearer": "Invalid credentials",
               "another user's": "Invalid credentials", "revoked": "was revoked", "expired": "expired at"}
    refused = _refused_tokens(world, monkeypatch)
    head = world.reg.ledger.head()
    for kind, headers in refused.items():
        for url in ("/", f"/{WS}/", f"/{WS}/public-pkg/", f"/{WS}/acme-utils/", "/acme-utils/",
                    f"/{WS}/acme-utils/1.0.0/{wheel.filename}", f"/api/workspaces/{WS}/packages"):
            r = await client.get(url, headers={**headers, "accept": PIP})
            assert r.status_code == 401 and reasons[kind] in r.text, (kind, url, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Basic realm="), (kind, url)
        data, files = upload_form(dists[("Acme.Utils", "1.0.0")][1])
        r = await client.post(f"/{WS}/", data=data, files=files, headers=headers)
        assert r.status_code == 401 and reasons[kind] in r.text and "www-authenticate" in r.headers, (kind, r.text)
        assert world.reg.ledger.head() == head
    r = await client.get(f"/{WS}/public-pkg/", headers={"authorization": "Digest username=x"})
    assert r.status_code == 401 and "HTTP Basic" in r.text


async def test_missing_things(client, world):
    assert (await get(client, world, f"/{WS}/no-such-package/")).status_code == 404
    assert (await get(client, world, f"/{WS}/no-such-package/", who=None)).status_code == 401  # no existence leak
    r = await get(client, world, "/nowhere/acme-utils/")
    assert r.status_code == 404 and "No workspace 'nowhere' with a package 'acme-utils' is visible to you" in r.text
    assert (await get(client, world, f"/{WS}/acme-utils/", accept="application/json")).status_code == 406


async def test_revoked_token_stops_working_at_once(client, world, published):
    assert (await get(client, world, f"/{WS}/acme-utils/")).status_code == 200
    token_id = world.principal("reader@acme.test").token_id
    operations.revoke_token(world.reg, identity.operator(), "cli", "reader@acme.test", token_id)
    r = await get(client, world, f"/{WS}/acme-utils/")
    assert r.status_code == 401 and "revoked" in r.text


async def test_workspace_index_lists_only_what_the_caller_can_read(client, world):
    names = lambda r: [p["name"] for p in r.json()["projects"]]  # noqa: E731
    assert names(await get(client, world, f"/{WS}/", who="reader@acme.test")) == ["Acme.Utils", "public-pkg"]
    assert names(await get(client, world, f"/{WS}/",
                           who="wsadmin@acme.test")) == ["Acme.Utils", "public-pkg", "secret-pkg"]
    assert names(await get(client, world, f"/{WS}/", who="outsider@acme.test")) == ["public-pkg"]
    r = await get(client, world, f"/{WS}/", who="reader@acme.test", accept="text/html")
    assert '<a href="acme-utils/">Acme.Utils</a>' in r.text


async def test_the_index_across_workspaces(client, world, published):
    r = await get(client, world, "/")
    assert [p["name"] for p in r.json()["projects"]] == ["Acme.Utils", "public-pkg"]
    r = await get(client, world, "/acme-utils/")
    assert r.status_code == 200
    wheel, _ = published["1.0.0"]
    url = next(f["url"] for f in r.json()["files"] if f["filename"] == wheel.filename)
    assert url == f"../{WS}/acme-utils/1.0.0/{wheel.filename}"
    assert (await get(client, world, "/Acme.Utils/")).headers["location"] == "/acme-utils/"
    # the same name in a second workspace the caller can read: refused as ambiguous
    op = identity.operator()
    operations.create_workspace(world.reg, op, "cli", "beta")
    operations.create_project(world.reg, op, "cli", "beta", "B")
    operations.create_repository(world.reg, op, "cli", "beta", "r", "B")
    operations.grant(world.reg, op, "cli", "beta", "reader@acme.test", "read", repository="r")
    operations.create_package(world.reg, op, "cli", "beta", "acme-utils", "r")
    r = await get(client, world, "/acme-utils/")
    assert r.status_code == 409 and "several workspaces you can read: acme (http://testserver.local/acme/), " \
        "beta (http://testserver.local/beta/)" in r.text, r.text
    assert "registry user default-workspace" in r.text
    assert [p["name"] for p in (await get(client, world, "/")).json()["projects"]] == ["public-pkg"]


async def test_the_root_index_takes_a_shared_name_from_the_default_workspace(client, world, published):
    """A grant that makes a name visible in a second workspace turns the root index's answer for it into
    a 409 naming only the workspaces the caller reads, with their URLs; a default workspace that holds
    the name answers it again, and one that doesn't leaves the 409 (saying so)."""
    op = identity.operator()
    for ws in ("beta", "gamma"):
        operations.create_workspace(world.reg, op, "cli", ws)
        operations.create_project(world.reg, op, "cli", ws, "B")
        operations.create_repository(world.reg, op, "cli", ws, "r", "B")
        operations.create_package(world.reg, op, "cli", ws, "acme-utils", "r")
    operations.create_package(world.reg, op, "cli", "beta", "only-beta", "r")
    names = lambda r: [p["name"] for p in r.json()["projects"]]  # noqa: E731
    assert (await get(client, world, "/acme-utils/")).status_code == 200  # (beta's and gamma's unseen)
    operations.grant(world.reg, op, "cli", "beta", "reader@acme.test", "read", repository="r")
    r = await get(client, world, "/acme-utils/")
    assert r.status_code == 409 and "acme (" in r.text and "beta (" in r.text and "gamma" not in r.text
    assert "/acme-utils/" not in str(names(await get(client, world, "/")))
    # the person chooses beta: the root index answers beta's package, and lists the name again
    operations.set_default_workspace(world.reg, world.principal("reader@acme.test"), "api", "reader@acme.test", "beta")
    r = await get(client, world, "/acme-utils/")
    assert r.status_code == 200 and r.json()["files"] == [], r.text  # (beta's has no files; acme's has)
    assert names(await get(client, world, "/")) == ["acme-utils", "only-beta", "public-pkg"]  # (beta's spelling)
    assert (await get(client, world, "/acme-utils/", who="wsadmin@acme.test")).status_code == 200  # (theirs only)
    # a default that doesn't hold the name: still a 409, which says so
    operations.set_default_workspace(world.reg, world.principal("reader@acme.test"), "api", "reader@acme.test", "beta")
    operations.grant(world.reg, op, "cli", "gamma", "wsadmin@acme.test", "read", repository="r")
    operations.set_default_workspace(world.reg, op, "cli", "wsadmin@acme.test", "acme")
    assert len((await get(client, world, "/acme-utils/", who="wsadmin@acme.test")).json()["files"]) > 0
    operations.create_workspace(world.reg, op, "cli", "delta")
    operations.create_project(world.reg, op, "cli", "delta", "D")
    operations.create_repository(world.reg, op, "cli", "delta", "r", "D")
    operations.grant(world.reg, op, "cli", "delta", "reader@acme.test", "read", repository="r")
    operations.set_default_workspace(world.reg, op, "cli", "reader@acme.test", "delta")
    r = await get(client, world, "/acme-utils/")
    assert r.status_code == 409 and "your default workspace, delta, doesn't hold it" in r.text
    operations.set_default_workspace(world.reg, op, "cli", "reader@acme.test", None)
    assert "your default" not in (await get(client, world, "/acme-utils/")).text


async def test_downloads(client, world, published):
    wheel, sdist = published["1.0.0"]
    url = f"/{WS}/acme-utils/1.0.0/{wheel.filename}"
    r = await get(client, world, url, accept=None)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == wheel.sha256
    assert r.headers["content-length"] == str(wheel.size) and r.headers["accept-ranges"] == "bytes"
    assert r.headers["etag"] == f'"{wheel.sha256}"' and "immutable" in r.headers["cache-control"]
    whole = r.content
    r = await get(client, world, url, accept=None, range="bytes=10-19")
    assert r.status_code == 206 and r.content == whole[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{wheel.size}" and r.headers["content-length"] == "10"
    r = await get(client, world, url, accept=None, range="bytes=-22")
    assert r.status_code == 206 and r.content == whole[-22:]
    r = await get(client, world, url, accept=None, range=f"bytes={wheel.size}-")
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{wheel.size}"
    r = await client.head(url, headers=world.basic("reader@acme.test"))
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(wheel.size)
    r = await get(client, world, url, accept=None, **{"if-none-match": f'"{wheel.sha256}"'})
    assert r.status_code == 304
    # PEP 658: the core metadata beside every wheel, matching the hash in the index
    r = await get(client, world, url + ".metadata", accept=None)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == wheel.metadata_sha256
    assert r.content.startswith(b"Metadata-Version:")
    metadata = r.content
    r = await get(client, world, url + ".metadata", accept=None, range="bytes=0-16")
    assert r.status_code == 206 and r.content == b"Metadata-Version:"
    # it is a cache, stored without fsync: a copy lost or torn by a crash is extracted again from the wheel
    cached = world.reg.blobs.local_path(wheel.metadata_sha256)
    for n, damage in enumerate((lambda: cached.write_bytes(b""), lambda: cached.unlink())):
        damage()  # (a request of its own each time: the same bytes again are answered from memory, repeats.py)
        r = await get(client, world, url + ".metadata", accept=None, **{"x-attempt": str(n)})
        assert r.status_code == 200 and r.content == metadata and cached.read_bytes() == metadata
    assert (await get(client, world, f"/{WS}/acme-utils/1.0.0/{sdist.filename}.metadata")).status_code == 404
    assert (await get(client, world, f"/{WS}/acme-utils/1.0.0/nope.whl")).status_code == 404
    assert (await get(client, world, url, who="outsider@acme.test")).status_code == 404
    assert (await get(client, world, url, who=None)).status_code == 401


async def test_page_links_resolve(client, world, published):
    r = await get(client, world, f"/{WS}/acme-utils/", accept="text/html")
    hrefs = [htmlmod.unescape(part.split('"')[1]) for part in r.text.split("<a href=")[1:]]
    for href in hrefs:
        url, _, fragment = href.partition("#sha256=")
        got = await get(client, world, f"/{WS}/acme-utils/{url}", accept=None)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == fragment


async def test_health(client):
    r = await client.get("/_/health")
    assert r.status_code == 200 and json.loads(r.text)["status"] == "ok"


async def test_repeat_requests_are_answered_before_routing_and_never_stale(client, world, published, monkeypatch):
    app = client.served
    reached = []
    front = app._front  # (the front door: repeats of the very same bytes are answered before it, repeats.py)
    inner = front.app

    async def counting(scope, receive, send):
        if scope["type"] == "http":
            reached.append(scope["path"])
        await inner(scope, receive, send)

    monkeypatch.setattr(front, "app", counting)
    url = f"/{WS}/acme-utils/"
    first = await get(client, world, url)
    second = await get(client, world, url)
    assert len(reached) == 1 and second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"] == JSON and second.headers["vary"] == "Accept, Authorization"
    assert (await get(client, world, url, **{"if-none-match": first.headers["etag"]})).status_code == 304
    head = await client.head(url, headers=world.basic("reader@acme.test") | {"accept": PIP})
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(first.content))
    assert len(reached) == 1
    # another credential, another Accept: not the same answer
    assert (await get(client, world, url, who="outsider@acme.test")).status_code == 404
    assert (await get(client, world, url, accept="text/html")).headers["content-type"].startswith("text/html")
    assert len(reached) == 3
    # any commit makes every remembered answer stale, whatever it touched
    operations.create_user(world.reg, identity.operator(), "cli", "someone@acme.test")
    again = await get(client, world, url)
    assert len(reached) == 4 and again.content == first.content
    # credentials that expire are not answered from memory past their expiry
    answers = app._state.answers
    key, answer = next(iter(answers._answers.items()))
    scope = {"headers": [(b"authorization", key[2].encode()), (b"accept", key[1].encode())], "path": key[0],
             "query_string": b""}
    assert answers.lookup(scope, answer.commit)[0] is answer
    answers._answers.put(key, dataclasses.replace(answer, expires=time.time() - 1), answer.nbytes())
    assert answers.lookup(scope, answer.commit) is None


async def test_the_simple_segment_other_indexes_use_leads_to_ours(client, world, published):
    """`--index-url https://HOST/<ws>/simple/` (the habit) must not end in `from versions: none`."""
    for path, target in ((f"/{WS}/simple/", f"/{WS}/"), (f"/{WS}/simple/acme-utils/", f"/{WS}/acme-utils/"),
                         ("/simple/", "/"), (f"/{WS}/simple/acme-utils/?format=json",
                                             f"/{WS}/acme-utils/?format=json")):
        r = await get(client, world, path)
        assert r.status_code == 301 and r.headers["location"] == target, (path, r.status_code, r.text)
    r = await client.get(f"/{WS}/simple/acme-utils/", headers=world.basic("reader@acme.test"), follow_redirects=True)
    assert r.status_code == 200 and "acme_utils-1.0.0" in r.text
    with pytest.raises(Exception, match="'simple' is reserved"):
        operations.create_package(world.reg, identity.operator(), "cli", WS, "Simple", "utils")


async def test_a_workspace_in_capitals_is_the_workspace_everywhere(client, world, published, tmp_path):
    """`/ACME/` redirected while `/ACME/acme-utils/` said not visible and uploads said it didn't exist:
    a slug resolves one way, for pages, files and uploads alike."""
    for path, target in ((f"/{WS.title()}/acme-utils/", f"/{WS}/acme-utils/"),
                         (f"/{WS.upper()}/acme-utils/1.0.0/x.whl", f"/{WS}/acme-utils/1.0.0/x.whl"),
                         (f"/{WS.upper()}/@HEAD/?format=json", f"/{WS}/@HEAD/?format=json")):
        r = await get(client, world, path)
        assert r.status_code == 301 and r.headers["location"] == target, (path, r.status_code, r.text)
    r = await client.get(f"/{WS.upper()}/acme-utils/", headers=world.basic("reader@acme.test"), follow_redirects=True)
    assert r.status_code == 200 and "acme_utils-1.0.0" in r.text
    r = await client.get(f"/{WS.upper()}/", headers=world.basic("reader@acme.test"), follow_redirects=True)
    assert r.status_code == 200 and "Acme.Utils" in r.text  # (the workspace's index, in as many hops as it takes)
    from tests.support.helpers import make_wheel

    data, files = upload_form(make_wheel(tmp_path, "Acme.Utils", "7.0"))
    r = await client.post(f"/{WS.upper()}/", data=data, files=files, headers=world.basic("dev@acme.test"))
    assert r.status_code == 200, r.text
    assert records.get_version(world.reg.snapshot(), WS, "acme-utils", "7.0") is not None


async def test_a_publish_to_the_root_says_where_uploads_go(client, world, dists):
    data, files = upload_form(dists[("Acme.Utils", "1.0.0")][1])
    r = await client.post("/", data=data, files=files, headers=world.basic("dev@acme.test"))
    assert r.status_code == 405 and "Uploads go to a workspace's URL, /<workspace>/" in r.text


# The Simple HTML pages (PEP 503) byte for byte: names, filenames, reasons and URLs holding
# `&<>"'` and non-ASCII are escaped exactly as they always were (html.escape's spelling: `&quot;`,
# `&#x27;`), whatever renders them.

AT = datetime(2025, 1, 1, tzinfo=UTC)
MADE = model.Provenance(at=AT, by="dev@acme.test", channel="upload")


def dist(filename, kind, requires_python, i):
    return model.DistFile(filename=filename, size=10, sha256=f"{i:064x}", blake2b_256=f"{i:064x}", md5=f"{i:032x}",
                          packagetype=kind, python_version="py3" if kind == "bdist_wheel" else "source",
                          requires_python=requires_python, metadata_version="2.1",
                          metadata_sha256=f"{i + 100:064x}", uploaded=MADE)


def cases():
    package = model.Package(name="caf\u00e9-&<>\"'", display_name="Caf\u00e9 &<>\"'", workspace="acme",
                            repository="utils", created=MADE)
    versions = [
        model.Version(package=package.name, version="1.0", summary="", created=MADE, files=[
            dist("caf\u00e9_pkg-1.0-py3-none-any.whl", "bdist_wheel", ">=3.8,<4", 1),
            dist("caf\u00e9 &<>\"'.tar.gz", "sdist", None, 2),
        ]),
        model.Version(package=package.name, version="2.0rc1", summary="", created=MADE, yanked=True,
                      yanked_reason="broken <build> & \"quotes\" 'single' \u2014 \u00fc", files=[
            dist("pkg-2.0rc1.tar.gz", "sdist", ">=3.10", 3),
        ]),
        model.Version(package=package.name, version="3.0", summary="", created=MADE, yanked=True, yanked_reason="",
                      files=[dist("pkg-3.0-py3-none-any.whl", "bdist_wheel", "", 4)]),
        model.Version(package=package.name, version="4.0", summary="", created=MADE, files=[]),
    ]
    empty = model.Package(name="empty", display_name="Empty", workspace="acme", repository="utils", created=MADE)
    return {
        "project": render_project(package, versions, HTML, "../acme/caf%C3%A9/"),
        "project_base_escaped": render_project(package, versions[:1], HTML, "../a&b\"c'/"),
        "empty_project": render_project(empty, [], HTML, ""),
        "index": render_index([("caf\u00e9-x", "Caf\u00e9 &<>\"'"), ("plain", "Plain"), ("a&b", "<b>")], HTML),
        "empty_index": render_index([], HTML),
    }



EXPECTED = {
    'project': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</h1>\n'
        b'    <a href="../acme/caf%C3%A9/1.0/caf%C3%A9_pkg-1.0-py3-none-any.whl'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000001"'
        b' data-requires-python="&gt;=3.8,&lt;4"'
        b' data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065"'
        b' data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065'
        b'">caf\xc3\xa9_pkg-1.0-py3-none-any.whl</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/1.0/caf%C3%A9%20%26%3C%3E%22%27.tar.gz'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000002'
        b'">caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;.tar.gz</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/2.0rc1/pkg-2.0rc1.tar.gz'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000003"'
        b' data-requires-python="&gt;=3.10"'
        b' data-yanked="broken &lt;build&gt; &amp; &quot;quotes&quot; &#x27;single&#x27; \xe2\x80\x94 \xc3\xbc'
        b'">pkg-2.0rc1.tar.gz</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/3.0/pkg-3.0-py3-none-any.whl'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000004"'
        b' data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000068"'
        b' data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000068"'
        b' data-yanked="'
        b'">pkg-3.0-py3-none-any.whl</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'project_base_escaped': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</h1>\n'
        b'    <a href="../a&amp;b&quot;c&#x27;/1.0/caf%C3%A9_pkg-1.0-py3-none-any.whl'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000001"'
        b' data-requires-python="&gt;=3.8,&lt;4"'
        b' data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065"'
        b' data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065'
        b'">caf\xc3\xa9_pkg-1.0-py3-none-any.whl</a><br>\n'
        b'    <a href="../a&amp;b&quot;c&#x27;/1.0/caf%C3%A9%20%26%3C%3E%22%27.tar.gz'
        b'#sha256=0000000000000000000000000000000000000000000000000000000000000002'
        b'">caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;.tar.gz</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'empty_project': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for empty</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for empty</h1>\n'
        b'\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'index': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Simple index</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Simple index</h1>\n'
        b'    <a href="caf%C3%A9-x/">Caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;</a><br>\n'
        b'    <a href="plain/">Plain</a><br>\n'
        b'    <a href="a%26b/">&lt;b&gt;</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'empty_index': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Simple index</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Simple index</h1>\n'
        b'\n'
        b'  </body>\n'
        b'</html>\n'
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_simple_html_pages_are_byte_identical(name):
    assert cases()[name] == EXPECTED[name]
