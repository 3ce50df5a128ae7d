"""A repository's pipeline readers never name a repository the viewer can't read.

A workspace admin lets the pipelines of `hideout` (private) read `acme/utils`. Every route and page
that shows, grants or revokes `utils`'s pipeline readers (the API's list, grant and revoke, their
refusals; the repository's page, its people and settings page, the revoke confirmation and its
flash, the grant form's refusal) is walked as each kind of viewer: utils's admin (who can't read
hideout), hideout's admin, utils's reader, a member with no role, a stranger. None of them ever sees
`hideout` in a body or a header; utils's admin still sees that such a grant exists (by its UUID
only: UUIDs are no secret, a pipeline's provenance shows them) and revokes it by that UUID. A slug
guessed at the revoke routes answers exactly as a slug that names nothing. The workspace's admin sees
every slug (so the walk can see one).
"""

from __future__ import annotations

import pytest

from registry import layout, operations
from registry.model import Repository
from tests.support.hidden_repository import HIDDEN, HIDDEN_UUID, OP, VIEWERS, as_viewer, csrf, hide, shown
from tests.support.world import WS

NOBODY = "hidecat"  # (the same length as HIDDEN: answers compare with one swapped for the other)
API = f"/api/workspaces/{WS}/repositories/utils/pipeline-readers"
UI = f"/-/{WS}/repos/utils"


@pytest.fixture
def hidden(world):
    return hide(world)


def readers(world) -> list[str]:
    return world.reg.snapshot().get(layout.repository(WS, "utils"), Repository).pipeline_readers


async def walk(client, auth: dict, name: str) -> list[tuple[str, object]]:
    """Every answer that shows utils's pipeline readers, or refuses a change to them (``name``: the
    slug the refusals are asked about); none of these change anything."""
    token = await csrf(client)
    answers = []
    for method, url, extra in [
        ("GET", API, {}),
        ("PUT", f"{API}/{name}", {}),
        ("DELETE", f"{API}/{name}", {}),
        ("DELETE", f"{API}/%7B00000000-0000-4000-8000-000000000000%7D", {}),  # (a UUID that reads nothing)
        ("GET", f"{UI}/", {}),
        ("GET", f"{UI}/people", {}),
        ("GET", f"{UI}/pipelines/revoke?source={name}", {}),
        ("POST", f"{UI}/pipelines", {"data": {"csrf": token, "source": name}}),
        ("POST", f"{UI}/pipelines/revoke?source={name}", {"data": {"csrf": token}}),
    ]:
        r = await client.request(method, url, headers=auth, follow_redirects=False, **extra)
        answers.append((f"{method} {url}", r))
    return answers


@pytest.mark.parametrize("who", VIEWERS)
async def test_no_viewer_who_cant_read_it_sees_the_slug(client, hidden, who):
    auth = await as_viewer(client, hidden, who)
    before = hidden.reg.ledger.head()
    for label, r in await walk(client, auth, NOBODY):  # (asked about it, an answer echoes it: the next test)
        assert HIDDEN not in shown(r), f"{label} as {who}: {r.status_code} {r.text[:500]}"
        assert r.status_code < 500, (label, r.text)
    assert hidden.reg.ledger.head() == before and HIDDEN in readers(hidden)


@pytest.mark.parametrize("who", VIEWERS)
async def test_a_guessed_slug_answers_as_one_that_names_nothing(client, hidden, who):
    auth = await as_viewer(client, hidden, who)
    real = await walk(client, auth, HIDDEN)
    nothing = await walk(client, auth, NOBODY)
    for (label, r), (_, n) in zip(real, nothing, strict=True):
        if label.startswith("POST"):
            continue  # (a form's answer carries its own CSRF token; the walk above checks its words)
        assert (r.status_code, r.text.replace(HIDDEN, NOBODY)) == (n.status_code, n.text), label


async def test_the_repositorys_admin_sees_and_revokes_the_hidden_grant_by_its_uuid(client, hidden):
    auth = await as_viewer(client, hidden, "owner@acme.test")
    r = await client.get(API, headers=auth)
    assert r.json()["readers"] == ["public-lib"] and r.json()["hidden"] == [HIDDEN_UUID], r.text
    page = (await client.get(f"{UI}/people")).text
    assert f"a repository you can't read <code>{HIDDEN_UUID}</code>" in page
    assert "those of 1 repository you can't read." in (await client.get(f"{UI}/")).text
    confirm = await client.get(f"{UI}/pipelines/revoke", params={"source": HIDDEN_UUID})
    assert confirm.status_code == 200 and HIDDEN not in confirm.text, confirm.text
    r = await client.post(f"{UI}/pipelines/revoke", params={"source": HIDDEN_UUID},
                          data={"csrf": await csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and readers(hidden) == ["public-lib"], r.text
    flashed = await client.get(r.headers["location"])
    assert HIDDEN not in flashed.text and "no longer lets" in flashed.text
    operations.grant_pipelines(hidden.reg, OP, "cli", WS, "utils", HIDDEN)
    r = await client.delete(f"{API}/{HIDDEN_UUID.upper()}", headers=auth)  # (any case, as UUIDs are)
    assert r.status_code == 200 and r.json() == {"workspace": WS, "repository": "utils", "readers": ["public-lib"],
                                                 "hidden": []}, r.text
    assert readers(hidden) == ["public-lib"]


async def test_a_reader_of_the_repository_learns_nothing_of_a_hidden_grant(client, hidden):
    auth = await as_viewer(client, hidden, "reader@acme.test")
    r = await client.get(API, headers=auth)
    assert r.json()["readers"] == ["public-lib"] and r.json()["hidden"] == [], r.text
    assert HIDDEN_UUID not in (await client.get(f"{UI}/")).text


@pytest.mark.parametrize("source", ["{not-a-uuid}", "{" + "f" * 200 + "}"])
async def test_a_bad_uuid_is_refused_and_changes_nothing(client, hidden, source):
    auth = await as_viewer(client, hidden, "owner@acme.test")
    before = hidden.reg.ledger.head()
    r = await client.delete(f"{API}/{source}", headers=auth)
    assert r.status_code in (400, 422) and "UUID" in r.text and HIDDEN not in r.text, r.text
    assert hidden.reg.ledger.head() == before


async def test_the_workspaces_admin_sees_every_slug(client, hidden):
    auth = await as_viewer(client, hidden, "wsadmin@acme.test")
    r = await client.get(API, headers=auth)
    assert r.json()["readers"] == sorted([HIDDEN, "public-lib"]) and r.json()["hidden"] == [], r.text
    for page in (f"{UI}/", f"{UI}/people"):
        assert HIDDEN in (await client.get(page)).text, page
