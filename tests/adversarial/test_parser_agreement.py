"""What a handler checks is what the program behind it acts on. `/_/ledger.git` hands requests to
`git http-backend`: its checks (fetch only: `service=git-upload-pack`) are made on the values git
is then given, and nothing git reads is given twice (of a repeated query parameter git takes the
last, a Python parser the first; of repeated headers, whoever reads them picks one). A repeated
one is refused with a 400 that names it; a request either gets the fetch advertisement or a
refusal, however its query string is spelt."""

from __future__ import annotations

import httpx
import pytest

from registry import identity, operations
from registry.web.app import create_asgi

REFS = "/_/ledger.git/info/refs"
ADVERTISEMENT = "application/x-git-upload-pack-advertisement"


@pytest.fixture
async def witness(world) -> dict:
    reg, op = world.reg, identity.operator()
    operations.create_user(reg, op, "cli", "witness@acme.test")
    world.tokens["witness@acme.test"], _ = operations.create_token(reg, op, "cli", "witness@acme.test", "witness")
    return world.basic("witness@acme.test")


@pytest.mark.parametrize("query", [
    "service=git-upload-pack&service=git-receive-pack",
    "service=git-receive-pack&service=git-upload-pack",
    "service=git-upload-pack&service=",
    "service=git-upload-pack&%73ervice=git-receive-pack",  # (a name spelt in %-escapes is the same name to both)
    "service=git-upload-pack&service=git-upload-pack",
])
async def test_a_repeated_service_is_refused_naming_it(client, witness, query):
    r = await client.get(f"{REFS}?{query}", headers=witness)
    assert r.status_code == 400 and "query parameter 'service'" in r.text and "more than once" in r.text, r.text


@pytest.mark.parametrize("query, status", [
    ("service=git-upload-pack", 200),
    ("service=git-upload-pack&other=1&other=2", 200),  # (git reads nothing else: it isn't given anything else)
    ("service=git-upload-pack&Service=git-receive-pack", 200),  # (names are case-sensitive to both)
    ("service=git-%72eceive-pack", 403),
    ("%73ervice=git-receive-pack", 403),
    ("service=git-upload-pack;service=git-receive-pack", 404),  # (one value to both: ';' separates nothing)
    ("service=git-upload-pack+", 404),
    ("service=git-upload-archive", 404),
    ("", 404),
])
async def test_every_spelling_gets_the_fetch_advertisement_or_a_refusal(client, witness, query, status):
    r = await client.get(f"{REFS}?{query}", headers=witness)
    assert r.status_code == status, (query, r.text)
    if status == 200:
        assert r.headers["content-type"] == ADVERTISEMENT


@pytest.mark.parametrize("header", ["content-type", "content-encoding", "git-protocol"])
async def test_a_header_git_reads_given_twice_is_refused_naming_it(world, witness, header):
    """(Sent as two header lines, as a server's worker receives them: the in-process test client
    would join them into one.)"""
    values = {"content-type": ("application/x-git-upload-pack-request", "text/plain"),
              "content-encoding": ("gzip", "identity"), "git-protocol": ("version=2", "version=1")}[header]
    app = create_asgi(world.reg.settings, world.reg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        twice = [*witness.items(), (header, values[0]), (header, values[1])]
        r = await client.post("/_/ledger.git/git-upload-pack", headers=twice, content=b"0000")
        # (the front door refuses a second copy of a field that holds one value; the handler, of what git reads)
        said = r.text.lower()
        assert r.status_code == 400, r.text
        assert f"the header '{header}'" in said or (f"more than one {header} header" in said), r.text
        once = [*witness.items(), (header, values[0])]
        assert (await client.get(f"{REFS}?service=git-upload-pack", headers=once)).status_code == 200
