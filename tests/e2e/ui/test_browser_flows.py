"""The web UI in a real browser (headless Chromium): what a person does, page by page.

Each flow saves a screenshot of every page it visits (the folder is printed at the end of the run)
and runs axe-core on it: no serious or critical violation anywhere.
"""

from __future__ import annotations

import hashlib
import re

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from registry import identity, layout, operations
from registry.model import Workspace
from registry.reads import records
from tests.support.helpers import client_env, make_wheel, run, tool

from .conftest import person

PIPED_REPO = "{5b7a0c1e-3f4d-4c6b-9a2e-1d0f9e8c7b6a}"


def twine(site, home, username: str, token: str, *files) -> None:
    run([tool("twine"), "upload", "--non-interactive", "--repository-url", f"{site.url}/default/",
         "-u", username, "-p", token, *map(str, files)], env=client_env(home))


def test_sign_in_with_the_first_start_link_then_with_a_token(browser, site):
    assert site.first_link, "the first start prints a one-time sign-in link"
    browser.visit(site.first_link, "sign-in-link")
    assert "Sign in as admin@localhost" in browser.text()
    browser.click("main form button[type=submit]")
    browser.wait_text("Signed in as admin@localhost")
    browser.page("signed-in-by-link")
    assert "Default workspace" in browser.text() and "Admin of default" in browser.find("header").text
    used = site.reg.ledger.commit(site.reg.ledger.head())
    assert used.summary.startswith("sign in admin@localhost with link") and dict(used.trailers)["Channel"] == "web"
    browser.sign_out()
    browser.page("signed-out")
    browser.visit(site.first_link, "sign-in-link-again")
    assert "was used at" in browser.text()  # single use
    browser.sign_in(site.admin, "rgy_not-a-token", ok=False)
    assert "Invalid credentials" in browser.text()
    browser.page("sign-in-refused")
    browser.sign_in(site.admin, site.token)
    browser.page("signed-in-by-token")
    browser.visit("/-/_/tokens", "tokens")
    assert "bootstrap" in browser.text() and "this session" in browser.text().lower()
    browser.fill("#label", "ci runner")
    browser.click("form.row-form button[type=submit]")
    browser.wait_for("#new-token")
    browser.page("token-created")
    secret = browser.find("#new-token").text.strip()
    assert secret.startswith("rgy_") and browser.find("button[data-copy='new-token']").is_displayed()
    assert identity.check_token(site.reg.snapshot(), site.admin, secret).email == site.admin
    browser.visit("/-/_/tokens", "tokens-again")
    assert secret not in browser.driver.page_source  # shown once
    made = identity.check_token(site.reg.snapshot(), site.admin, secret).token_id
    browser.confirm_in_dialog(f"a[href='/-/_/tokens/{made}/revoke']", "revoke-dialog")
    browser.wait_text(f"Revoked token {made}.")
    browser.page("token-revoked")
    log = site.log.read_text()
    assert log.count(site.first_link.rsplit("/", 1)[1]) == 1  # the link was printed once, never logged
    assert secret not in log


def test_create_a_package_publish_with_twine_and_see_the_version_and_its_publisher(browser, site, tmp_path):
    browser.sign_in(site.admin, site.token)
    browser.visit("/-/default/", "workspace-packages")
    browser.link("Create package")
    browser.page("create-package")
    browser.fill("#name", "Acme.Widgets")
    Select(browser.find("#repo")).select_by_value("packages")
    browser.click("form.stack button.primary")
    browser.wait_text("Created Acme.Widgets")
    browser.page("created")
    assert "No versions yet" in browser.text() and "Your role: admin" in browser.text()
    with_user = site.url.replace("://", "://admin%40localhost:<your API token>@", 1)
    assert f'--index-url "{with_user}/default/"' in browser.text()

    wheel = make_wheel(tmp_path, "Acme.Widgets", "1.0.0")
    twine(site, tmp_path / "home", site.admin, site.token, wheel)
    browser.driver.refresh()
    browser.page("package-with-a-version")
    row = browser.find("#versions tbody tr").text
    assert "1.0.0" in row and "admin@localhost" in row and "bootstrap" in row

    browser.click("#versions tbody a[href$='/1.0.0/']")
    browser.page("version")
    text = browser.text()
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in text and wheel.name in text
    assert "API token “bootstrap”" in text and f"{wheel.stat().st_size} bytes" in text
    commit = browser.find(".publisher-card a[href*='/commits/']")
    assert commit.text == site.reg.history.package("default", "acme-widgets", limit=1)[0].id

    commit.click()
    browser.page("commit")
    assert "publish acme-widgets 1.0.0" in browser.text() and "added" in browser.text()
    assert browser.finds("pre.diff span.add")

    for path, name in (("/-/default/", "workspace-list"), ("/-/default/projects/MAIN/", "project-list"),
                       ("/-/default/repos/packages/", "repository-list")):
        browser.visit(path, name)
        listed = browser.find("#results").text
        assert "Acme.Widgets" in listed and "1.0.0" in listed and "admin@localhost" in listed, name
    browser.fill("#q", "widg")  # search as you type (htmx) ...
    browser.wait_text("matching “widg”")
    browser.fill("#q", "nothing-like-it")
    browser.wait_text("No package you can see matches")
    browser.page("search-none")
    browser.visit("/-/default/?q=widg&sort=published", "search-without-script")  # ... and as a plain GET
    assert "Acme.Widgets" in browser.find("#results").text

    for path, name in (("/-/default/history", "workspace-history"),
                       ("/-/default/repos/packages/history", "repository-history"),
                       ("/-/default/packages/acme-widgets/history", "package-history"),
                       ("/-/default/packages/acme-widgets/1.0.0/history", "version-history")):
        browser.visit(path, name)
        assert "publish acme-widgets 1.0.0" in browser.text(), name
    assert "upload" in browser.find("table.history").text


def test_a_pipeline_published_version_shows_its_claims_and_a_changed_publisher_is_flagged(
        browser, site, issuer, tmp_path):
    reg, op = site.reg, identity.operator()
    ws_uuid = reg.snapshot().get(layout.workspace("default"), Workspace).uuid
    operations.create_repository(reg, op, "cli", "default", "piped", "MAIN", uuid=PIPED_REPO)
    operations.create_package(reg, op, "cli", "default", "piped-lib", "piped")
    operations.set_trust(reg, op, "cli", "default", issuer.issuer_url("default"))

    def publish(version: str, branch: str, build: str) -> None:
        step = issuer.mint(workspace="default", workspace_uuid=ws_uuid, repository_uuid=PIPED_REPO, branch=branch)
        context = {"build_number": build, "commit": "c0ffee" * 6 + "ab", "repo_full_name": "acme/piped"}
        minted = httpx.post(f"{site.url}/_/oidc/mint-token", json={"token": step, "context": context}).json()["token"]
        twine(site, tmp_path / f"home-{version}", "__token__", minted, make_wheel(tmp_path, "piped-lib", version))

    publish("1.0", "main", "41")
    publish("1.1", "feature/rewrite", "42")
    browser.sign_in(site.admin, site.token)
    browser.visit("/-/default/packages/piped-lib/1.0/", "pipeline-version")
    text = browser.text()
    assert "Bitbucket Pipelines run" in text and PIPED_REPO in text and ws_uuid in text and "main" in text
    assert "build #41" in text and "c0ffeec0ffee" in text
    assert browser.find("a[href='https://bitbucket.org/acme/piped/pipelines/results/41']")
    assert not browser.finds(".publisher-changed")
    browser.visit("/-/default/packages/piped-lib/1.1/", "publisher-changed")
    warning = browser.find(".publisher-changed").text
    assert "Publisher changed" in warning and "feature/rewrite" in warning and "branch main" in warning
    browser.visit("/-/default/packages/piped-lib/", "pipeline-package")
    assert "Pipeline · piped · feature/rewrite" in browser.find("#versions").text
    browser.visit("/-/default/packages/piped-lib/history", "pipeline-history")
    assert "pipeline run" in browser.find("table.history").text


def test_yank_unyank_delete_a_version_then_the_package(browser, site, tmp_path):
    op = identity.operator()
    operations.create_package(site.reg, op, "cli", "default", "doomed", "packages")
    twine(site, tmp_path / "home", site.admin, site.token,
          *(make_wheel(tmp_path, "doomed", v) for v in ("1.0", "2.0", "3.0")))
    browser.sign_in(site.admin, site.token)
    browser.visit("/-/default/packages/doomed/", "package")
    # the dialog is keyboard-usable: opened from the keyboard, focus inside it, Escape closes it, focus comes back
    action = browser.find("#versions a[href$='/2.0/delete']")
    action.send_keys(Keys.ENTER)
    browser.wait_for("dialog[open] #confirm")
    assert browser.driver.switch_to.active_element.get_attribute("type") == "submit"
    browser.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    WebDriverWait(browser.driver, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"))
    assert browser.driver.switch_to.active_element == action
    assert len(records.versions(site.reg.snapshot(), "default", "doomed")) == 3  # nothing happened
    browser.confirm_in_dialog("#versions a[href$='/2.0/yank']", "yank-dialog", reason="broken on 3.12")
    browser.wait_text("Yanked doomed 2.0")
    browser.page("yanked")
    assert "broken on 3.12" in browser.text()
    index = httpx.get(f"{site.url}/default/doomed/", auth=(site.admin, site.token)).json()  # what pip sees
    assert {f["filename"]: f["yanked"] for f in index["files"]}["doomed-2.0-py3-none-any.whl"] == "broken on 3.12"
    browser.confirm_in_dialog(".actions a[href$='/2.0/unyank']", "unyank-dialog")
    browser.wait_text("Un-yanked doomed 2.0")
    assert "yanked" not in browser.find("h1").text.lower()

    browser.visit("/-/default/packages/doomed/", "package-again")
    browser.confirm_in_dialog("#versions a[href$='/3.0/delete']", "delete-version-dialog")
    browser.wait_text("Deleted doomed 3.0 (1 file)")
    browser.page("version-deleted")
    assert not browser.finds("#versions a[href$='/3.0/']")

    browser.visit("/-/default/packages/doomed/1.0/delete", "delete-version-page")  # without scripts: a page
    assert "doomed-1.0-py3-none-any.whl" in browser.text()
    browser.click("#confirm button[type=submit]")
    browser.wait_text("Deleted doomed 1.0")

    browser.visit("/-/default/packages/doomed/", "before-package-delete")
    browser.confirm_in_dialog(".actions a[href$='/doomed/delete']", "delete-package-dialog")
    browser.wait_text("Deleted package doomed and all its versions")
    browser.page("package-deleted")
    assert "doomed" not in browser.find("#results").text
    browser.visit("/-/default/packages/doomed/", "deleted-package-page")
    assert browser.find(".problem .status").text == "404"


def test_see_your_sessions_and_sign_another_browser_out(browser, site):
    token = person(site, "roaming@example.com")
    with httpx.Client(base_url=site.url, timeout=30) as phone:  # another browser, signed in as the same person
        csrf = re.search(r'name="csrf" value="([^"]+)"', phone.get("/-/_/signin").text).group(1)
        assert phone.post("/-/_/signin", data={"csrf": csrf, "email": "roaming@example.com",
                                               "token": token}).status_code == 303
        assert phone.get("/-/_/tokens").status_code == 200
        browser.sign_in("roaming@example.com", token)
        browser.visit("/-/_/tokens", "sessions")
        ends = browser.finds("a[href^='/-/_/sessions/'][href$='/end']")
        assert len(ends) == 1 and "this session" in browser.text().lower()  # (the phone's; this one has Sign out)
        browser.confirm_in_dialog("a[href^='/-/_/sessions/'][href$='/end']", "end-session-dialog")
        browser.wait_text("that browser is signed out")
        browser.page("session-ended")
        assert phone.get("/-/_/tokens").status_code == 401  # on its next request
    read = operations.create_token(site.reg, identity.operator(), "cli", "roaming@example.com", "read")[0]
    browser.sign_out()
    browser.sign_in("roaming@example.com", read)
    browser.visit("/-/_/tokens", "sessions-read-scoped")
    assert "read-scoped token" in browser.text() and not browser.finds("a[data-confirm]")
    assert not browser.finds("form.row-form")  # (no Create token)
