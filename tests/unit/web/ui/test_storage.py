"""A workspace's storage and retention in the web UI, in-process: its admins see its usage against the
quota (by repository, the largest packages) and what applying its retention policies would delete
now, from the same plan the command line applies, without anything being deleted; they set and remove
policies, one web commit each; a mistake comes back with the form and what was typed; no one else
sees any of it, and a package's page says what its files take."""

from __future__ import annotations

import html
import re

import pytest

from registry import identity, layout, model, operations, retention
from registry.audit import Action, action
from registry.reads.usage import package_usage, stored
from registry.web.ui.present import size
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

from .test_pages import CSRF, sign_in
from .test_settings import one_web_commit, post

OP = identity.operator()
ADMIN = "wsadmin@acme.test"
PAGE = f"/-/{WS}/settings/storage"


def published(world, tmp_path, *versions: str) -> None:
    for v in versions:
        publish(world.reg, OP, make_wheel(tmp_path, "Acme.Utils", v, payload=2048))


def rows(text: str, table: str) -> list[str]:
    """The row headers of a table of the page, by its class (the versions a plan names); none if the
    page has no such table."""
    if f'class="list {table}"' not in text:
        return []
    body = text.split(f'class="list {table}"')[1].split("</table>")[0]
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r'<th scope="row">(.*?)</th>', body)]


async def test_an_admin_sees_usage_against_the_quota_and_what_the_policies_would_delete(client, world, tmp_path):
    published(world, tmp_path, "1.0", "1.1", "2.0", "2.1.dev1")
    used = stored(world.reg.snapshot(), WS)
    operations.set_quota(world.reg, OP, "cli", WS, used.bytes * 4)
    operations.set_retention(world.reg, world.principal("owner@acme.test"), "cli", WS, "nightlies",
                             repository="utils", keep_newest=1, protect=["production"])
    await sign_in(client, world, ADMIN)
    settings = await client.get(f"/-/{WS}/settings/")
    assert f'href="{PAGE}"' in settings.text and "Storage and retention" in settings.text  # (the tab)
    head = world.reg.ledger.head()
    page = await client.get(PAGE)
    assert page.status_code == 200 and world.reg.ledger.head() == head  # (looking deletes nothing)
    text = html.unescape(page.text)
    said = " ".join(re.sub(r"<[^>]+>", "", text).split())
    assert f"take {size(used.bytes)} ({used.bytes} bytes) in {used.files} files" in said, said
    assert f"of a quota of {size(used.bytes * 4)} ({used.bytes * 4} bytes; 25% used" in said
    assert 'id="usage-percent">25%<' in text and '<meter id="usage-meter"' in text
    assert '<label for="usage-meter">' in text  # (the bar has a name, and the figure is said in words too)
    assert rows(text, "usage-repositories") == ["public-lib", "secret", "utils"]  # (each, if only 0 bytes)
    assert rows(text, "usage-packages") == ["acme-utils"]  # (the largest: those that take anything)
    assert size(package_usage(world.reg.snapshot(), WS, "acme-utils")) in text
    # the policy, in words, and who set it; the plan is the one `registry retention apply` carries out
    assert 'id="policy-nightlies"' in text and "keep the newest 1" in text and "production" in text
    assert "by owner@acme.test" in text and "registry retention apply" in text
    plan = retention.plan(world.reg.snapshot(), WS, model.now())
    assert rows(text, "plan-deletions") == [f"acme-utils {d.version}" for d in plan.deletions]
    assert {d.version for d in plan.deletions} == {"1.1", "1.0"}  # (2.1.dev1: the newest; 2.0: the newest release)
    for d in plan.deletions:
        assert d.reason in text
    assert rows(text, "plan-spared") == ["acme-utils 2.0"] and "the package&#39;s newest release" in page.text
    assert 'href="/-/acme/settings/storage/remove?policy=nightlies"' in text


async def test_with_no_quota_and_no_policy_the_page_says_so(client, world):
    await sign_in(client, world, ADMIN)
    page = await client.get(PAGE)
    assert page.status_code == 200 and "the workspace has no quota" in page.text and "<meter" not in page.text
    assert "No retention policy" in page.text and 'id="plan-empty"' in page.text


async def test_no_one_else_sees_the_storage_or_changes_the_policies(client, world, tmp_path):
    published(world, tmp_path, "1.0")
    operations.set_retention(world.reg, OP, "cli", WS, "nightlies", repository="utils", keep_newest=2)
    pages = [PAGE, f"{PAGE}/remove?policy=nightlies"]
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 401 and "Sign in" in r.text, path
    # a repository admin (of utils: the policy's repository), a writer, readers, an outsider
    for who in ("owner@acme.test", "dev@acme.test", "reader@acme.test", "projreader@acme.test",
                "outsider@acme.test"):
        await sign_in(client, world, who)
        for path in pages:
            r = await client.get(path)
            assert r.status_code in (403, 404) and "nightlies" not in r.text and "acme-utils" not in r.text, (who, path)
        before = world.reg.ledger.head()
        for path, fields in ((PAGE, {"name": "mine", "repository": "utils", "keep_newest": "1"}),
                             (f"{PAGE}/remove?policy=nightlies", {})):
            r = await post(client, path, **fields)
            assert r.status_code in (403, 404), (who, path, r.status_code)
        assert world.reg.ledger.head() == before, who


async def test_an_admin_sets_a_policy_sees_its_plan_and_removes_it_confirming(client, world, tmp_path):
    published(world, tmp_path, "1.0", "1.1", "2.0.dev1")
    await sign_in(client, world, ADMIN)
    before = world.reg.ledger.head()
    r = await post(client, PAGE, name="Old-Dev", repository="", pattern="acme-*", keep_newest="",
                   prerelease_days="0", protect="production\n{11111111-2222-3333-4444-555555555555}")
    assert r.status_code == 303 and r.headers["location"].endswith(PAGE)
    one_web_commit(world, before, ADMIN)
    commit = world.reg.ledger.commit(world.reg.ledger.head())
    assert action(commit) is Action.SET_RETENTION
    policy = world.reg.snapshot().get(layout.retention_policy(WS, "old-dev"), model.RetentionPolicy)
    assert (policy.pattern, policy.keep_newest, policy.prerelease_days, policy.repository) == ("acme-*", None, 0, None)
    assert policy.protect_environments == ["production", "{11111111-2222-3333-4444-555555555555}"]
    assert policy.updated.channel == "web"
    page = await client.get(PAGE)
    assert "Nothing is deleted until" in page.text  # (the flash)
    assert rows(page.text, "plan-deletions") == []  # ("2.0.dev1" is less than a day old)
    # the same again: no commit, the same answer
    head = world.reg.ledger.head()
    r = await post(client, PAGE, name="old-dev", pattern="acme-*", prerelease_days="0",
                   protect="{11111111-2222-3333-4444-555555555555}\nproduction")
    assert r.status_code == 303 and world.reg.ledger.head() == head
    confirm = await client.get(f"{PAGE}/remove", params={"policy": "old-dev"})
    assert confirm.status_code == 200 and "Remove retention policy old-dev?" in confirm.text
    assert world.reg.ledger.head() == head  # (asking is not removing)
    r = await client.post(f"{PAGE}/remove", params={"policy": "old-dev"},
                          data={"csrf": CSRF.search(confirm.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303
    one_web_commit(world, head, ADMIN)
    assert action(world.reg.ledger.commit(world.reg.ledger.head())) is Action.REMOVE_RETENTION
    assert not world.reg.snapshot().exists(layout.retention_policy(WS, "old-dev"))
    # a policy that isn't there: nothing to confirm, nothing removed
    for r in (await client.get(f"{PAGE}/remove", params={"policy": "old-dev"}),
              await post(client, f"{PAGE}/remove?policy=old-dev")):
        assert r.status_code == 404 and "no retention policy" in r.text
    for r in (await client.get(f"{PAGE}/remove"), await client.get(f"{PAGE}/remove", params={"policy": "Bad Name!"})):
        assert r.status_code == 404


GOOD = {"name": "nightlies", "repository": "utils", "pattern": "", "keep_newest": "3", "prerelease_days": "",
        "protect": ""}


@pytest.mark.parametrize(("fields", "status", "said"), [
    ({"name": ""}, 400, "Invalid policy name"),
    ({"name": "Bad Name!"}, 400, "Invalid policy name"),
    ({"name": "x" * 41}, 400, "at most 40"),
    ({"repository": "", "pattern": ""}, 400, "Say which packages the policy covers"),
    ({"repository": "nowhere"}, 404, "Repository acme/nowhere does not exist"),
    ({"repository": "Bad Slug!"}, 400, "Invalid repository slug"),
    ({"pattern": "acme utils"}, 400, "Invalid name pattern"),
    ({"keep_newest": "", "prerelease_days": ""}, 400, "Give the policy a rule"),
    ({"keep_newest": "three"}, 400, "Keep the newest is a whole number"),
    ({"keep_newest": "-1"}, 400, "Keep the newest is a whole number"),
    ({"keep_newest": "0"}, 400, "must be from 1"),
    ({"keep_newest": "1" * 30}, 400, "Keep the newest is a whole number"),
    ({"keep_newest": "1" * 5000}, 400, "Keep the newest is a whole number"),  # (past int()'s digit limit)
    ({"keep_newest": "²"}, 400, "Keep the newest is a whole number"),  # (a digit to str.isdigit, not to int())
    ({"prerelease_days": "1.5"}, 400, "Pre-releases older than is a whole number"),
    ({"prerelease_days": "99999999"}, 400, "must be from 0"),
    ({"protect": "two\nlines\x00"}, 400, "Environment names"),
])
async def test_what_was_typed_wrong_comes_back_with_the_form(client, world, fields, status, said):
    await sign_in(client, world, ADMIN)
    before = world.reg.ledger.head()
    typed = {**GOOD, **fields}
    r = await post(client, PAGE, **typed)
    alerts = re.findall(r'id="retention-error">([^<]*)', r.text)
    assert (r.status_code, said in html.unescape(" ".join(alerts))) == (status, True), alerts
    assert 'id="retention-name"' in r.text and 'id="usage-h"' in r.text  # (the page again, the form beside)
    for key in ("name", "pattern", "keep_newest", "prerelease_days"):
        if typed[key] and len(typed[key]) < 40:
            assert f'name="{key}" ' in r.text and f'value="{html.escape(typed[key])}"' in r.text, key
    assert world.reg.ledger.head() == before


async def test_a_package_page_says_what_its_files_take(client, world, tmp_path):
    published(world, tmp_path, "1.0", "1.1")
    await sign_in(client, world, "reader@acme.test")
    page = await client.get(f"/-/{WS}/packages/acme-utils/")
    used = package_usage(world.reg.snapshot(), WS, "acme-utils")
    assert used > 4096
    assert f'id="package-size">Its files take {size(used)} (2 files)' in html.unescape(page.text)


async def test_the_tab_says_whether_the_server_runs_the_policies_and_what_its_last_run_did_here(client, world,
                                                                                               tmp_path):
    from registry import retention_runs

    published(world, tmp_path, "1.0", "1.1", "2.0")
    operations.set_retention(world.reg, OP, "cli", WS, "two", repository="utils", keep_newest=2)
    await sign_in(client, world, ADMIN)
    page = (await client.get(PAGE)).text
    assert "REGISTRY_RETENTION_APPLY=off" in page and 'id="runs-last"' not in page
    retention_runs.save(world.reg.settings, retention_runs.run_once(world.reg))  # (a run from when it was on)
    page = html.unescape((await client.get(PAGE)).text)
    last = page.split('id="runs-last"')[1].split("</dl>")[0]
    assert "1 version deleted, 0 refused" in last and 'id="runs-failed"' not in page
