"""The UI's answers to what a person types or mistypes: short commit ids, the advice on a refusal,
mangled page numbers, the past index in a browser, the token form's limits, a wrong token."""

from __future__ import annotations

import re

from registry import identity
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish
from tests.unit.web.ui.test_pages import CHROME, CSRF, INSTALLERS, csrf_of, sign_in

ADVICE = "Ask a repository or workspace admin for the permission named above"


async def test_commit_pages_take_short_ids_and_advise_on_commits(client, world, tmp_path):
    publish(world.reg, identity.operator(), make_wheel(tmp_path, "Acme.Utils", "1.0"))
    head = world.reg.ledger.head()
    await sign_in(client, world, "wsadmin@acme.test")
    for short in (head[:7], head[:12], head.upper()):
        r = await client.get(f"/-/{WS}/commits/{short}")
        assert r.status_code == 200 and "acme-utils" in r.text, short
    missing = await client.get(f"/-/{WS}/commits/{'0' * 7}")
    assert (missing.status_code == 404 and "Check the commit id" in missing.text
            and "spelled as published" not in missing.text)
    bad = await client.get(f"/-/{WS}/commits/zzz")
    assert bad.status_code == 400 and "7 to 40 hex digits" in bad.text
    two = [c.id for c in world.reg.ledger.walk()][:2]  # (a 7-digit clash is rare: pretend one)
    world.reg.history.completions = lambda prefix, limit=2: two
    r = await client.get(f"/-/{WS}/commits/{head[:7]}")
    assert r.status_code == 400 and "More than one commit starts with" in r.text


async def test_a_403_advises_asking_for_a_permission_only_when_one_is_named(client, world, tmp_path):
    publish(world.reg, identity.operator(), make_wheel(tmp_path, "Acme.Utils", "1.0"))
    await sign_in(client, world, "reader@acme.test")
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank", data={"csrf": await csrf_of(client, "/-/")})
    assert r.status_code == 403 and "needs write permission" in r.text and ADVICE in r.text
    r = await client.post(f"/-/{WS}/packages/acme-utils/1.0/yank", data={"csrf": "forged"})
    assert r.status_code == 403 and "security token" in r.text and ADVICE not in r.text


async def test_mangled_page_numbers_are_clamped(client, world):
    for query in ("page=abc", "page=-1", "page=0", "per_page=100000", "page=99999999999999999999", "per_page=x"):
        for path in (f"/-/{WS}/", f"/-/{WS}/history", f"/-/{WS}/packages/acme-utils/"):
            r = await client.get(f"{path}?{query}")
            assert r.status_code in (200, 401), (path, query, r.status_code)
    r = await client.get(f"/-/{WS}/?page=-1")
    assert r.status_code == 200 and "public-pkg" in r.text  # (the first page)


async def test_html_has_one_charset(client, world):
    for path in ("/-/", f"/-/{WS}/", "/-/nowhere"):
        assert (await client.get(path)).headers["content-type"] == "text/html; charset=utf-8", path


async def test_the_past_index_is_shown_to_browsers_as_it_stood(client, world):
    """`/<ws>/@<ref>/...` is the index of then, for a browser too (the UI has no page of then): no redirect."""
    head = world.reg.ledger.head()
    for path in (f"/{WS}/@{head[:7]}/acme-utils/", f"/{WS}/@{head}/"):
        r = await client.get(path, headers={**world.basic("reader@acme.test"), "accept": CHROME},
                             follow_redirects=False)
        assert r.status_code == 200 and "acme-utils" in r.text.lower(), path
    for name, accept in INSTALLERS.items():
        headers = {**world.basic("reader@acme.test"), **({"accept": accept} if accept else {})}
        r = await client.get(f"/{WS}/@{head[:7]}/acme-utils/", headers=headers, follow_redirects=False)
        assert r.status_code == 200 and "acme-utils" in r.text.lower(), name


async def test_the_version_page_gives_a_full_index_url_for_then(client, world, tmp_path):
    publish(world.reg, identity.operator(), make_wheel(tmp_path, "Acme.Utils", "1.0"))
    await sign_in(client, world, "reader@acme.test")
    page = (await client.get(f"/-/{WS}/packages/acme-utils/1.0/")).text
    url = re.search(r"--index-url (\S+?)</code>", page).group(1)
    assert re.fullmatch(rf"https?://[^/]+/{WS}/@[0-9a-f]{{40}}/", url), url


async def test_the_token_form_speaks_of_its_own_fields(client, world):
    await sign_in(client, world, "dev@acme.test")
    head = world.reg.ledger.head()
    for fields, said in (({"expires_days": "0"}, "Expires after (days) must be"),
                         ({"expires_days": "99999"}, "from 1 to 3650"),
                         ({"expires_days": "1.5"}, "whole number of days"),
                         ({"scope": "admin"}, "Scope must be read or write")):
        csrf = CSRF.search((await client.get("/-/_/tokens")).text).group(1)
        r = await client.post("/-/_/tokens", data={"csrf": csrf, "label": "x", "scope": "read", **fields})
        assert r.status_code == 400 and said in r.text, fields
        assert "--expires-days" not in r.text and "witness" not in r.text
    assert world.reg.ledger.head() == head


async def test_a_wrong_token_at_sign_in_says_whom_to_ask(client, world):
    r = await client.post("/-/_/signin", data={"csrf": await csrf_of(client), "email": "dev@acme.test",
                                               "token": "nope"})
    said = re.search(r'id="signin-error"[^>]*>(.*?)</', r.text, re.S).group(1)
    assert r.status_code == 403 and "registry token create" not in said and "ask the registry&#39;s operator" in said
