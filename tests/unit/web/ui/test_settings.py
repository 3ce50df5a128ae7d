"""Administration in the web UI, in-process: a workspace admin (who is not the operator) does what the
command line does for their workspace, one commit per form through the web channel; a repository
admin manages their repository's people and its packages' policies; everyone else is refused and
nothing changes; every form needs its CSRF token; what was typed wrong comes back with the form."""

from __future__ import annotations

import html
import re

import pytest

from registry import identity, layout, model, operations
from registry.model import Project, Repository, Workspace
from registry.reads import Reader
from tests.support.world import WS

from .test_pages import CSRF, csrf_of, sign_in

UUID = "{0d6c1f5e-9a1b-4b7e-8f3a-2c4d5e6f7a8b}"
OTHER_UUID = "{1e7d2a6f-0b2c-4c8f-9a4b-3d5e6f7a8b9c}"
CLI_UUID = "{2f8e3b7a-1c3d-4d9a-8b5c-4e6f7a8b9c0d}"
ISSUER = "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"
OTHER_ISSUER = "https://api.bitbucket.org/2.0/workspaces/acme-labs/pipelines-config/identity/oidc"


def snap(world):
    return world.reg.snapshot()


def repo(world, slug: str) -> Repository:
    return snap(world).get(layout.repository(WS, slug), Repository)


def workspace(world) -> Workspace:
    return snap(world).get(layout.workspace(WS), Workspace)


async def post(client, path: str, **fields):
    """A form posted with the CSRF token of the signed-in session."""
    return await client.post(path, data={"csrf": await csrf_of(client, "/-/"), **fields}, follow_redirects=False)


def one_web_commit(world, before: str, by: str) -> None:
    """The ledger moved by exactly one commit, made through the web by ``by``."""
    made = list(world.reg.ledger.walk(since=before))
    assert len(made) == 1, [c.summary for c in made]
    assert made[0].trailer("Channel") == "web" and made[0].author_email == by, made[0].trailers


# (path, fields) of every form of the workspace's settings, with good values: what an admin may do
def forms() -> list[tuple[str, dict[str, str]]]:
    s = f"/-/{WS}/settings"
    return [
        (f"{s}/", {"email": "dev@acme.test", "on": "repo:public-lib", "role": "write"}),
        (f"{s}/", {"email": "dev@acme.test", "on": "project:LABS", "role": "read"}),
        (f"{s}/", {"email": "dev@acme.test", "on": "workspace", "role": "admin"}),
        (f"{s}/revoke?email=dev%40acme.test&on=repo%3Autils", {}),
        (f"{s}/projects/new", {"key": "TOOLS", "name": "Tools"}),
        (f"{s}/repos/new", {"slug": "cli", "project": "CORE", "visibility": "public", "uuid": CLI_UUID,
                            "create_on_publish": "on"}),
        (f"{s}/repos/new", {"slug": "scratch", "project": "TOOLS"}),
        (f"{s}/uuid", {"repo": "utils", "uuid": UUID}),
        (f"{s}/uuid", {"repo": "", "uuid": UUID}),
        (f"{s}/pipelines", {"issuer": ISSUER, "audiences": "one\ntwo"}),
        (f"{s}/pipelines", {"issuer": OTHER_ISSUER, "audiences": ""}),
        (f"/-/{WS}/repos/utils/people", {"email": "outsider@acme.test", "role": "read"}),
        (f"/-/{WS}/repos/utils/people/revoke?email=reader%40acme.test", {}),
        (f"/-/{WS}/repos/utils/pipelines", {"source": "public-lib"}),
        (f"/-/{WS}/repos/utils/pipelines", {"source": "*"}),
        (f"/-/{WS}/repos/utils/pipelines/revoke?source=%2A", {}),
        (f"/-/{WS}/packages/acme-utils/policy", {"branches": "main\nrelease/*", "environments": ""}),
        (f"{s}/name", {"name": "Acme Corporation"}),
        (f"{s}/projects/LABS/name", {"name": "Laboratory"}),
        (f"/-/{WS}/repos/public-lib/rename", {"slug": "public-library"}),
        (f"/-/{WS}/repos/utils/create-on-publish", {"create_on_publish": "on"}),
        (f"/-/{WS}/repos/scratch/delete", {}),
        (f"{s}/projects/TOOLS/delete", {}),
        (f"{s}/members/remove?email=projreader%40acme.test", {}),
        (f"{s}/storage", {"name": "nightlies", "repository": "utils", "keep_newest": "3", "protect": "production"}),
        (f"{s}/storage/remove?policy=nightlies", {}),
    ]


async def test_a_workspace_admin_who_is_not_the_operator_administers_it(client, world):
    admin = "wsadmin@acme.test"
    await sign_in(client, world, admin)
    page = await client.get(f"/-/{WS}/")
    assert f'href="/-/{WS}/settings/"' in page.text  # the sidebar's Settings
    people = await client.get(f"/-/{WS}/settings/")
    assert people.status_code == 200 and "People and permissions" in people.text
    for label in ("Workspace acme (its admins)", "Project CORE", "Repository utils", "Project LABS"):
        assert label in people.text
    assert "owner@acme.test" in people.text and "projreader@acme.test" in people.text
    for path, fields in forms():
        before = world.reg.ledger.head()
        r = await post(client, path, **fields)
        assert r.status_code == 303, (path, r.text)
        one_web_commit(world, before, admin)
    assert repo(world, "public-library").grants == {"dev@acme.test": "write"} and repo(world, "public-lib") is None
    project = snap(world).get(layout.project(WS, "LABS"), Project)
    assert project.grants["dev@acme.test"] == "read"
    assert "dev@acme.test" in workspace(world).admins and workspace(world).uuid == UUID
    assert "dev@acme.test" not in repo(world, "utils").grants and "reader@acme.test" not in repo(world, "utils").grants
    assert repo(world, "utils").grants["outsider@acme.test"] == "read"
    assert repo(world, "utils").pipeline_readers == ["public-library"]  # (granted, then carried by the rename)
    assert not snap(world).exists(layout.project(WS, "TOOLS")) and repo(world, "scratch") is None
    assert repo(world, "cli").public and repo(world, "cli").uuid == CLI_UUID and repo(world, "utils").uuid == UUID
    assert repo(world, "cli").create_packages_on_publish and repo(world, "utils").create_packages_on_publish
    assert not repo(world, "public-library").create_packages_on_publish
    assert workspace(world).name == "Acme Corporation" and project.name == "Laboratory"
    assert not any(g.user == "projreader@acme.test" for g in Reader(world.reg, identity.operator()).grants(WS))
    trusts = [t for _, t in Reader(world.reg, identity.operator()).trusts(WS)]  # (adding kept the first)
    assert {(t.issuer, tuple(t.audiences)) for t in trusts} == {(ISSUER, ("one", "two")), (OTHER_ISSUER, ())}
    assert snap(world).get(layout.trusted_issuer(WS, ISSUER), model.TrustedIssuer).audiences == ["one", "two"]
    policy = Reader(world.reg, identity.operator()).package(WS, "acme-utils").package.publish_policy
    assert policy.branches == ["main", "release/*"] and policy.environments == []
    # a role changed (the row's form), then the pipelines' issuer removed, each with its confirmation
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/settings/", form="change", email="dev@acme.test", on="project:LABS", role="write")
    assert r.status_code == 303
    assert snap(world).get(layout.project(WS, "LABS"), Project).grants["dev@acme.test"] == "write"
    one_web_commit(world, before, admin)
    pipelines = await client.get(f"/-/{WS}/settings/pipelines")
    assert ISSUER in pipelines.text and OTHER_ISSUER in pipelines.text and "one, two" in pipelines.text
    assert "Add an issuer" in pipelines.text and "replaces" not in pipelines.text
    assert pipelines.text.count("/settings/pipelines/remove?issuer=") == 2  # (a Remove for each)
    confirm = await client.get(f"/-/{WS}/settings/pipelines/remove", params={"issuer": ISSUER})
    assert confirm.status_code == 200 and "Stop trusting" in confirm.text
    before = world.reg.ledger.head()
    r = await client.post(f"/-/{WS}/settings/pipelines/remove", params={"issuer": ISSUER},
                          data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303 and not snap(world).exists(layout.trusted_issuer(WS, ISSUER))
    kept = [t.issuer for _, t in Reader(world.reg, identity.operator()).trusts(WS)]
    assert kept == [OTHER_ISSUER]  # (the other stays)
    one_web_commit(world, before, admin)
    confirm = await client.get(f"/-/{WS}/settings/revoke", params={"email": "dev@acme.test", "on": "workspace"})
    assert confirm.status_code == 200 and "will no longer administer it" in confirm.text
    page = await client.get(f"/-/{WS}/settings/projects")
    assert "TOOLS" not in page.text and UUID in page.text and "cli" in page.text and "Laboratory" in page.text
    assert "created on first publish" in page.text
    people = await client.get(f"/-/{WS}/settings/")
    assert "projreader@acme.test" not in people.text
    assert "/settings/members/remove?email=owner%40acme.test" in people.text


async def test_everyone_else_is_refused_and_nothing_changes(client, world):
    world.reg.ledger.head()
    pages = [f"/-/{WS}/settings/", f"/-/{WS}/settings/projects", f"/-/{WS}/settings/pipelines",
             f"/-/{WS}/settings/revoke?email=dev%40acme.test&on=repo%3Autils",
             f"/-/{WS}/repos/utils/people", f"/-/{WS}/packages/acme-utils/policy", f"/-/{WS}/settings/delete",
             f"/-/{WS}/settings/members/remove?email=dev%40acme.test", f"/-/{WS}/settings/projects/CORE/delete",
             f"/-/{WS}/repos/utils/delete", f"/-/{WS}/settings/storage"]
    for path in pages:  # a visitor: sign in
        r = await client.get(path)
        assert r.status_code == 401 and "Sign in" in r.text, path
    for who in ("dev@acme.test", "reader@acme.test", "outsider@acme.test", "projreader@acme.test"):
        await sign_in(client, world, who)
        assert f"/-/{WS}/settings/" not in (await client.get(f"/-/{WS}/")).text  # no Settings in the sidebar
        for path in pages:
            r = await client.get(path)
            # what they may read but not administer: a 403; the package of a repository they can't read: missing
            assert (r.status_code, "needs admin permission" in r.text) in ((403, True), (404, False)), (who, path)
        before = world.reg.ledger.head()
        for path, fields in forms():
            r = await post(client, path, **fields)
            assert r.status_code in (403, 404), (who, path, r.status_code)
        assert world.reg.ledger.head() == before, who
    client.cookies.clear()
    for path, fields in forms():  # signed out (with a visitor's own CSRF token): sign in first
        r = await client.post(path, data={"csrf": await csrf_of(client), **fields})
        assert r.status_code == 401, path
    # a repository admin administers their repository, not the workspace, nor another repository
    await sign_in(client, world, "owner@acme.test")
    assert (await client.get(f"/-/{WS}/repos/utils/people")).status_code == 200
    assert (await client.get(f"/-/{WS}/settings/")).status_code == 403
    assert (await client.get(f"/-/{WS}/repos/public-lib/people")).status_code == 403  # (read by anyone)
    hidden = await client.get(f"/-/{WS}/repos/secret/people")
    missing = await client.get(f"/-/{WS}/repos/secrez/people")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace("secret", "X") == missing.text.replace("secrez", "X")
    # a workspace no one shows them is missing, not forbidden
    operations.create_workspace(world.reg, identity.operator(), "cli", "hidden", admins=["wsadmin@acme.test"])
    assert (await client.get("/-/hidden/settings/")).status_code == 404
    assert (await post(client, "/-/hidden/settings/projects/new", key="X")).status_code == 404


async def test_every_form_needs_its_csrf_token(client, world):
    await sign_in(client, world, "wsadmin@acme.test")
    before = world.reg.ledger.head()
    for path, fields in forms():
        for csrf in ({}, {"csrf": "forged"}):
            r = await client.post(path, data={**fields, **csrf})
            assert r.status_code == 403 and "security token" in r.text, path
    assert world.reg.ledger.head() == before


@pytest.mark.parametrize(("path", "fields", "status", "said"), [
    ("settings/", {"email": "nobody@acme.test", "on": "repo:utils", "role": "read"}, 404,
     "User nobody@acme.test does not exist: only the registry's operator creates users"),
    ("settings/", {"email": "not an email", "on": "repo:utils", "role": "read"}, 400, "Invalid email"),
    ("settings/", {"email": "dev@acme.test", "on": "repo:utils", "role": "owner"}, 400, "owner"),
    ("settings/", {"email": "dev@acme.test", "on": "workspace", "role": "write"}, 400, "only the admin role"),
    ("settings/", {"email": "dev@acme.test", "on": "galaxy:far", "role": "read"}, 400, "Grant on the workspace"),
    ("settings/", {"email": "dev@acme.test", "on": "repo:utils", "role": "write"}, 409, "already has write"),
    ("settings/", {"email": "dev@acme.test", "on": "project:NOPE", "role": "read"}, 404, "Project NOPE does not"),
    ("settings/projects/new", {"key": "9 lives", "name": ""}, 400, "Invalid project key"),
    ("settings/projects/new", {"key": "CORE", "name": ""}, 409, "already exists"),
    ("settings/repos/new", {"slug": "Bad Slug!", "project": "CORE"}, 400, "Invalid repository slug"),
    ("settings/repos/new", {"slug": "utils", "project": "CORE"}, 409, "already exists"),
    ("settings/repos/new", {"slug": "fresh", "project": "CORE", "uuid": "not-a-uuid"}, 400, "Invalid UUID"),
    ("settings/repos/new", {"slug": "fresh", "project": "NOPE"}, 404, "Project NOPE does not exist"),
    ("settings/uuid", {"repo": "utils", "uuid": "{123}"}, 400, "Invalid UUID"),
    ("settings/uuid", {"repo": "nowhere", "uuid": UUID}, 404, "does not exist"),
    ("settings/pipelines", {"issuer": "http://evil.example/oidc", "audiences": ""}, 400, "use an https:// URL"),
    ("settings/pipelines", {"issuer": "", "audiences": ""}, 400, "Issuer"),
    ("repos/utils/people", {"email": "ghost@acme.test", "role": "read"}, 404, "only the registry's operator"),
    ("repos/utils/pipelines", {"source": "utils"}, 400, "already publish to and read it"),
    ("repos/utils/pipelines", {"source": "nowhere"}, 404, "Repository acme/nowhere does not exist"),
    ("repos/utils/pipelines", {"source": "Bad Slug!"}, 400, "Invalid repository slug"),
    ("repos/utils/pipelines", {"source": ""}, 400, "repository slug"),
    ("settings/name", {"name": ""}, 400, "new display name"),
    ("settings/name", {"name": "Acme"}, 409, "already called"),
    ("settings/name", {"name": "two\nlines"}, 400, "one line"),
    ("settings/projects/CORE/name", {"name": " "}, 400, "new display name"),
    ("settings/projects/CORE/name", {"name": "Core"}, 409, "already called"),
    ("settings/projects/NOPE/name", {"name": "Nope"}, 404, "Project NOPE does not exist"),
    ("repos/utils/rename", {"slug": "Bad Slug!"}, 400, "Invalid repository slug"),
    ("repos/utils/rename", {"slug": "secret"}, 409, "already exists"),
    ("repos/utils/rename", {"slug": "utils"}, 409, "already called"),
    ("packages/acme-utils/policy", {"branches": "", "environments": "prod"}, 400, "Invalid UUID"),
    ("packages/acme-utils/policy", {"branches": "main\n" + "x" * 300, "environments": ""}, 400, "ranch"),
])
async def test_what_was_typed_wrong_comes_back_with_the_form(client, world, path, fields, status, said):
    await sign_in(client, world, "wsadmin@acme.test")
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/{path}", **fields)
    alerts = re.findall(r'role="alert"[^>]*>([^<]*)', r.text)
    assert (r.status_code, said in html.unescape(r.text)) == (status, True), alerts
    assert 'role="alert"' in r.text and "<form" in r.text  # the page again, the message beside its form
    typed = next((v for v in fields.values() if v and len(v) < 60 and "\n" not in v), None)
    if typed and "email" in fields:
        assert f'value="{typed}"' in r.text  # what was typed is kept
    assert world.reg.ledger.head() == before


async def test_a_taken_uuid_is_refused_wherever_it_is_set(client, world):
    operations.set_uuid(world.reg, identity.operator(), "cli", WS, OTHER_UUID, "secret")
    await sign_in(client, world, "wsadmin@acme.test")
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/settings/uuid", repo="utils", uuid=OTHER_UUID.upper().strip("{}"))
    assert r.status_code == 409 and "already belongs to repository acme/secret" in r.text
    r = await post(client, f"/-/{WS}/settings/repos/new", slug="fresh", project="CORE", uuid=OTHER_UUID)
    assert r.status_code == 409 and 'value="fresh"' in r.text
    assert world.reg.ledger.head() == before


async def test_a_repository_admin_manages_its_people_and_policies(client, world):
    owner = "owner@acme.test"
    await sign_in(client, world, owner)
    listing = await client.get(f"/-/{WS}/repos/utils/")
    assert f'href="/-/{WS}/repos/utils/people"' in listing.text
    assert f'href="/-/{WS}/repos/public-lib/people"' not in (await client.get(f"/-/{WS}/repos/public-lib/")).text
    page = await client.get(f"/-/{WS}/repos/utils/people")
    assert all(e in page.text for e in ("dev@acme.test", "reader@acme.test", owner))
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/repos/utils/people", form="change", email="reader@acme.test", role="write")
    assert r.status_code == 303 and repo(world, "utils").grants["reader@acme.test"] == "write"
    one_web_commit(world, before, owner)
    confirm = await client.get(f"/-/{WS}/repos/utils/people/revoke", params={"email": "dev@acme.test"})
    assert confirm.status_code == 200 and "Revoke dev@acme.test" in confirm.text
    assert (await client.get(f"/-/{WS}/repos/utils/people/revoke",
                             params={"email": "nobody@acme.test"})).status_code == 404
    package_page = await client.get(f"/-/{WS}/packages/acme-utils/")
    assert f'href="/-/{WS}/packages/acme-utils/policy"' in package_page.text
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/packages/acme-utils/policy", branches="main", environments=UUID)
    assert r.status_code == 303
    one_web_commit(world, before, owner)
    page = await client.get(f"/-/{WS}/packages/acme-utils/policy")
    assert "main" in page.text and UUID in page.text
    r = await post(client, f"/-/{WS}/packages/acme-utils/policy", branches="", environments="")
    assert r.status_code == 303
    assert Reader(world.reg, identity.operator()).package(WS, "acme-utils").package.publish_policy is None
    await sign_in(client, world, "dev@acme.test")  # write on the repository: no policy link, no policy page
    assert "/policy" not in (await client.get(f"/-/{WS}/packages/acme-utils/")).text


async def test_whoever_administers_a_workspace_sees_it_and_no_one_is_called_a_global_admin(client, world):
    op = identity.operator()
    operations.create_user(world.reg, op, "cli", "alice@later.test")
    operations.create_workspace(world.reg, op, "cli", "later", "Later", admins=["alice@later.test"])
    alice, _ = operations.create_token(world.reg, op, "cli", "alice@later.test")
    world.tokens["alice@later.test"] = alice
    await sign_in(client, world, "alice@later.test")
    home = await client.get("/-/")
    cards = dict(re.findall(r'<strong>(\w+)</strong>(.*?)</li>', home.text))
    assert "you administer it" in cards["Later"] and "you administer it" not in cards["Acme"]  # (public: seen)
    assert "administering one gives no role in another" in home.text
    # a workspace with nothing in it yet: its admin sees it, and its settings, from the first commit
    page = await client.get("/-/later/settings/projects")
    assert page.status_code == 200 and "Create a project first" in page.text
    await sign_in(client, world, "wsadmin@acme.test")  # an admin of another workspace: not of this one
    home = await client.get("/-/")
    cards = dict(re.findall(r'<strong>(\w+)</strong>(.*?)</li>', home.text))
    assert "Later" not in cards and "you administer it" in cards["Acme"]
    assert (await client.get("/-/later/settings/")).status_code == 404


@pytest.mark.parametrize(("path", "left"), [
    (f"/-/{WS}/settings/delete", "still has 3 packages (acme-utils, public-pkg, secret-pkg"),
    (f"/-/{WS}/settings/projects/CORE/delete", "still has 1 repository: utils"),
    (f"/-/{WS}/repos/utils/delete", "still has 1 linked package: acme-utils"),
])
async def test_what_is_not_empty_is_not_deleted_and_the_page_says_what_is_left(client, world, path, left):
    await sign_in(client, world, "wsadmin@acme.test")
    confirm = await client.get(path)
    assert confirm.status_code == 200 and "Delete" in confirm.text
    before = world.reg.ledger.head()
    r = await client.post(path, data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 409 and left in html.unescape(r.text), re.findall(r'role="alert"[^>]*>([^<]*)', r.text)
    assert 'role="alert"' in r.text and "<form" in r.text  # (the confirmation again, saying why)
    assert world.reg.ledger.head() == before


async def test_an_empty_workspace_is_deleted_by_its_admin(client, world):
    operations.create_workspace(world.reg, identity.operator(), "cli", "later", admins=["wsadmin@acme.test"])
    await sign_in(client, world, "dev@acme.test")  # (not its admin: it doesn't exist to them)
    assert (await post(client, "/-/later/settings/delete")).status_code == 404
    await sign_in(client, world, "wsadmin@acme.test")
    page = await client.get("/-/later/settings/projects")
    assert 'href="/-/later/settings/delete"' in page.text
    confirm = await client.get("/-/later/settings/delete")
    before = world.reg.ledger.head()
    r = await client.post("/-/later/settings/delete", data={"csrf": CSRF.search(confirm.text).group(1)},
                          follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/-/"
    assert not snap(world).exists(layout.workspace("later"))
    one_web_commit(world, before, "wsadmin@acme.test")


async def test_removing_a_member_confirms_what_they_lose_and_takes_it_all_in_one_commit(client, world):
    operations.grant(world.reg, identity.operator(), "cli", WS, "dev@acme.test", "read", project="LABS")
    await sign_in(client, world, "wsadmin@acme.test")
    confirm = await client.get(f"/-/{WS}/settings/members/remove", params={"email": "dev@acme.test"})
    assert confirm.status_code == 200 and "Remove dev@acme.test from workspace acme?" in confirm.text
    assert "write on acme/utils" in confirm.text and "read on acme --project LABS" in confirm.text
    assert (await client.get(f"/-/{WS}/settings/members/remove",
                             params={"email": "nobody@acme.test"})).status_code == 404
    before = world.reg.ledger.head()
    r = await client.post(f"/-/{WS}/settings/members/remove", params={"email": "dev@acme.test"},
                          data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303
    one_web_commit(world, before, "wsadmin@acme.test")
    assert not Reader(world.reg, identity.operator()).grants(WS, user="dev@acme.test")
    # someone who holds nothing there (any more): refused, nothing changed
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/settings/members/remove?email=dev%40acme.test")
    assert r.status_code == 404 and "holds no grant" in r.text and world.reg.ledger.head() == before
    # removing yourself: back to the workspace, whose settings are no longer yours
    r = await post(client, f"/-/{WS}/settings/members/remove?email=wsadmin%40acme.test")
    assert r.status_code == 303 and r.headers["location"] == f"/-/{WS}/"
    assert "wsadmin@acme.test" not in workspace(world).admins


async def test_creating_packages_on_publish_is_turned_off_too_and_a_repository_admin_may(client, world):
    await sign_in(client, world, "owner@acme.test")  # (admin of utils, not of the workspace)
    page = await client.get(f"/-/{WS}/repos/utils/people")
    box = page.text.split('id="create-on-publish"')[1][:80]
    assert 'name="create_on_publish"' in box and " checked" not in box
    for on, fields in ((True, {"create_on_publish": "on"}), (False, {})):
        before = world.reg.ledger.head()
        r = await post(client, f"/-/{WS}/repos/utils/create-on-publish", **fields)
        assert r.status_code == 303 and repo(world, "utils").create_packages_on_publish is on
        one_web_commit(world, before, "owner@acme.test")
    before = world.reg.ledger.head()  # (already so: said, no commit)
    assert (await post(client, f"/-/{WS}/repos/utils/create-on-publish")).status_code == 303
    assert world.reg.ledger.head() == before
    # and renames it: its packages follow, and its page is at the new slug
    r = await post(client, f"/-/{WS}/repos/utils/rename", slug="utilities")
    assert r.status_code == 303 and r.headers["location"] == f"/-/{WS}/repos/utilities/people"
    assert Reader(world.reg, identity.operator()).package(WS, "acme-utils").package.repository == "utilities"
    assert (await post(client, f"/-/{WS}/repos/public-lib/rename", slug="x")).status_code == 403


async def test_a_person_changes_their_own_name_and_no_one_elses(client, world):
    await sign_in(client, world, "dev@acme.test")
    page = await client.get("/-/_/tokens")
    assert 'action="/-/_/name"' in page.text
    before = world.reg.ledger.head()
    r = await post(client, "/-/_/name", name="Dev Eloper", email="owner@acme.test")  # (an email is ignored)
    assert r.status_code == 303
    one_web_commit(world, before, "dev@acme.test")
    users = Reader(world.reg, identity.operator())
    assert users.user("dev@acme.test").name == "Dev Eloper" and users.user("owner@acme.test").name != "Dev Eloper"
    assert 'value="Dev Eloper"' in (await client.get("/-/_/tokens")).text
    before = world.reg.ledger.head()
    for name, status, said in (("Dev Eloper", 409, "already called"), ("Dev <dev@evil>", 400, "can't hold '<'"),
                               ("", 400, "ame"), ("x" * 1000, 400, "ame")):
        r = await post(client, "/-/_/name", name=name)
        assert r.status_code == status and said in html.unescape(r.text) and 'id="name-error"' in r.text, name
    await sign_in(client, world, "dev-readonly")  # a read-scoped session: no form, and refused if posted
    page = await client.get("/-/_/tokens")
    assert 'action="/-/_/name"' not in page.text and "Dev Eloper" in page.text
    r = await post(client, "/-/_/name", name="Someone Else")
    assert r.status_code == 403 and "read scope" in r.text
    client.cookies.clear()
    r = await client.post("/-/_/name", data={"csrf": await csrf_of(client), "name": "Anyone"})
    assert r.status_code == 401
    changed = [c.summary for c in world.reg.ledger.walk(since=before)]
    assert all(c.startswith(("start session", "sign in", "end session", "sign out")) for c in changed), changed
    assert Reader(world.reg, identity.operator()).user("dev@acme.test").name == "Dev Eloper"


async def test_a_repository_admin_lets_other_pipelines_read_it_and_stops_them(client, world):
    owner = "owner@acme.test"
    await sign_in(client, world, owner)
    page = await client.get(f"/-/{WS}/repos/utils/people")
    assert "Pipelines that may read this repository" in page.text and "only its own" in page.text
    # what may be chosen: every pipeline, or a repository they read (not itself, not one hidden from them)
    options = re.findall(r'<option value="([^"]+)"', page.text.split('id="pipelines-source"')[1].split("</select>")[0])
    assert options == ["*", "public-lib"]
    before = world.reg.ledger.head()
    r = await post(client, f"/-/{WS}/repos/utils/pipelines", source="public-lib")
    assert r.status_code == 303 and repo(world, "utils").pipeline_readers == ["public-lib"]
    one_web_commit(world, before, owner)
    made = world.reg.ledger.commit(world.reg.ledger.head())
    assert (made.trailer("Action"), made.trailer("Pipelines-Of")) == ("grant-pipelines", "public-lib")
    page = await client.get(f"/-/{WS}/repos/utils/people")
    assert f'href="/-/{WS}/repos/utils/pipelines/revoke?source=public-lib"' in page.text
    # a mistake comes back with the form and the message, and changes nothing: granted already, itself,
    # one they may not read (as a missing one, word for word)
    before = world.reg.ledger.head()
    again = await post(client, f"/-/{WS}/repos/utils/pipelines", source="public-lib")
    assert again.status_code == 409 and "may already read acme/utils" in html.unescape(again.text)
    assert 'id="pipelines-error"' in again.text and 'id="pipelines-source"' in again.text
    hidden = await post(client, f"/-/{WS}/repos/utils/pipelines", source="secret")
    missing = await post(client, f"/-/{WS}/repos/utils/pipelines", source="secrez")
    assert hidden.status_code == missing.status_code == 404
    said = [re.search(r'id="pipelines-error">([^<]*)', x.text).group(1) for x in (hidden, missing)]
    assert said[0].replace("secret", "X") == said[1].replace("secrez", "X")
    assert world.reg.ledger.head() == before
    # every reader of the repository sees which pipelines read it on its page
    assert "those of <a" in (await client.get(f"/-/{WS}/repos/utils/")).text
    await sign_in(client, world, "reader@acme.test")
    listing = await client.get(f"/-/{WS}/repos/utils/")
    assert 'id="pipeline-readers"' in listing.text and f'href="/-/{WS}/repos/public-lib/"' in listing.text
    assert 'id="pipeline-readers"' not in (await client.get(f"/-/{WS}/repos/public-lib/")).text  # (none read it)
    # revoking is confirmed first, then one commit
    await sign_in(client, world, owner)
    confirm = await client.get(f"/-/{WS}/repos/utils/pipelines/revoke", params={"source": "public-lib"})
    assert confirm.status_code == 200 and "Stop the pipelines of acme/public-lib reading acme/utils?" in confirm.text
    for source in ("*", "secret", ""):  # (what it doesn't let read it: nothing to confirm)
        r = await client.get(f"/-/{WS}/repos/utils/pipelines/revoke", params={"source": source})
        assert r.status_code == 404 and "people and settings page lists" in html.unescape(r.text), source
    before = world.reg.ledger.head()
    r = await client.post(f"/-/{WS}/repos/utils/pipelines/revoke", params={"source": "public-lib"},
                          data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303 and repo(world, "utils").pipeline_readers == []
    one_web_commit(world, before, owner)
    assert world.reg.ledger.commit(world.reg.ledger.head()).trailer("Action") == "revoke-pipelines"
    assert 'id="pipeline-readers"' not in (await client.get(f"/-/{WS}/repos/utils/")).text


async def test_only_a_repositorys_admins_change_which_pipelines_read_it(client, world):
    operations.grant_pipelines(world.reg, identity.operator(), "cli", WS, "utils", "public-lib")
    grant, revoke = f"/-/{WS}/repos/utils/pipelines", f"/-/{WS}/repos/utils/pipelines/revoke"
    for who in ("dev@acme.test", "reader@acme.test", "projreader@acme.test", "outsider@acme.test"):
        await sign_in(client, world, who)
        before = world.reg.ledger.head()
        readable = who != "outsider@acme.test"
        confirm = await client.get(revoke, params={"source": "public-lib"})
        assert confirm.status_code == (403 if readable else 404), who
        assert (await post(client, grant, source="*")).status_code == (403 if readable else 404), who
        r = await client.post(revoke, params={"source": "public-lib"}, data={"csrf": await csrf_of(client, "/-/")},
                              follow_redirects=False)
        assert r.status_code == (403 if readable else 404), who
        assert world.reg.ledger.head() == before and repo(world, "utils").pipeline_readers == ["public-lib"]
        # (a reader sees which pipelines read it, but no form to change that)
        if readable:
            listing = await client.get(f"/-/{WS}/repos/utils/")
            assert "public-lib</a>" in listing.text and "/pipelines/revoke" not in listing.text
    client.cookies.clear()
    assert (await client.get(revoke, params={"source": "public-lib"})).status_code == 401
