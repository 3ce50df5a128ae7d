"""The front door: a file's URL opened in a browser is served by the UI's download, which reads with
the browser's session (its cookie is scoped to /-/, on purpose: no write ever takes it)."""

from __future__ import annotations

import hashlib
import re

from registry import identity
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

CHROME = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8"
PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client, world, who: str) -> None:
    client.cookies.clear()
    page = await client.get("/-/_/signin")
    r = await client.post("/-/_/signin", data={"csrf": CSRF.search(page.text).group(1), "email": world.email(who),
                                               "token": world.tokens[who]}, follow_redirects=False)
    assert r.status_code == 303, r.text


async def test_a_file_url_opened_in_a_signed_in_browser_gives_its_bytes(client, world, tmp_path):
    record = publish(world.reg, identity.operator(), make_wheel(tmp_path, "secret-pkg", "1.0")).file
    url = f"/{WS}/secret-pkg/1.0/{record.filename}"
    ui = f"/-/{WS}/packages/secret-pkg/1.0/files/{record.filename}"
    # a browser is sent to the UI's download (no Basic prompt), whoever it is
    for who in (None, "wsadmin@acme.test"):
        client.cookies.clear()
        if who:
            await sign_in(client, world, who)
        r = await client.get(url, headers={"accept": CHROME}, follow_redirects=False)
        assert r.status_code == 302 and r.headers["location"] == ui and "www-authenticate" not in r.headers
    # signed in with read on it: the bytes
    r = await client.get(url, headers={"accept": CHROME})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == record.sha256
    # signed in without read on it, or not signed in: the UI's refusal, as for what doesn't exist
    for who in ("outsider@acme.test", None):
        client.cookies.clear()
        if who:
            await sign_in(client, world, who)
        r = await client.get(url, headers={"accept": CHROME})
        assert r.status_code in (401, 404) and record.sha256 not in r.text and "www-authenticate" not in r.headers
        assert b"PK" not in r.content[:2]
    client.cookies.clear()
    # installers, and a browser that sends credentials itself, get the file's URL as always
    r = await client.get(url, headers={"accept": PIP, **world.basic("wsadmin@acme.test")})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == record.sha256
    r = await client.get(url, headers={"accept": CHROME, **world.basic("wsadmin@acme.test")})
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == record.sha256
    r = await client.get(url, headers={"accept": PIP})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    # what the UI has no download for is left as it is: .metadata, the index as it stood at a commit
    for other in (url + ".metadata", f"/{WS}/@{world.reg.ledger.head()[:12]}/secret-pkg/{record.filename}"):
        r = await client.get(other, headers={"accept": CHROME}, follow_redirects=False)
        assert not (r.status_code == 302 and r.headers["location"].startswith("/-/")), other
