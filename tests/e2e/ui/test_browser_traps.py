"""Day-two traps in a real browser (headless Chromium): reloading the page a new token is shown on,
and a file's URL opened while signed in."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from registry import identity, operations
from registry.reads import Reader
from tests.support.helpers import make_wheel

from .conftest import person
from .test_browser_flows import twine


def labelled(site, email: str, label: str) -> list:
    return [t for t in Reader(site.reg).as_(identity.operator()).tokens(email) if t.label == label]


def test_reloading_after_create_token_makes_no_second_token_and_the_secret_is_gone(browser, site):
    email = "reloader@example.com"
    browser.sign_in(email, person(site, email))
    browser.visit("/-/_/tokens", "tokens")
    browser.fill("#label", "reload me")
    browser.click("form.row-form button[type=submit]")
    browser.wait_for("#new-token")
    browser.page("token-created")
    secret = browser.find("#new-token").text.strip()
    assert identity.check_token(site.reg.snapshot(), email, secret).email == email
    assert "rgy_" not in browser.driver.current_url and browser.driver.current_url.endswith("/-/_/tokens")
    browser.driver.refresh()  # (after a POST answered with the page, this would post the form again)
    browser.wait_text("Your API tokens")
    browser.page("token-page-reloaded")
    assert not browser.finds("#new-token") and secret not in browser.driver.page_source
    assert len(labelled(site, email, "reload me")) == 1
    assert secret not in site.log.read_text()


def test_a_private_file_url_opened_while_signed_in_downloads_its_bytes(browser, site, tmp_path):
    op = identity.operator()
    operations.create_repository(site.reg, op, "cli", "default", "private", "MAIN")
    operations.create_package(site.reg, op, "cli", "default", "hidden-thing", "private")
    wheel = make_wheel(tmp_path, "hidden-thing", "1.0")
    twine(site, tmp_path / "home", site.admin, site.token, wheel)
    url = f"{site.url}/default/hidden-thing/1.0/{wheel.name}"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow",
                                                                   "downloadPath": str(downloads)})
    email = "downloader@example.com"
    browser.sign_in(email, person(site, email, "read", repo="private"))
    browser.driver.get(url)  # (before: a Basic auth prompt, the session cookie being the UI's)
    got = _downloaded(downloads / wheel.name)
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()
    # someone signed in who may not read it is told what anyone is told of what doesn't exist
    browser.sign_out()
    stranger = "stranger@example.com"
    browser.sign_in(stranger, person(site, stranger))
    browser.visit(url, "file-not-readable")
    assert "hidden-thing" not in [p.name for p in downloads.iterdir() if p.name != wheel.name]
    assert browser.driver.current_url.startswith(f"{site.url}/-/") and "not" in browser.text().lower()


def _downloaded(path: Path, timeout: float = 15) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and not path.with_name(path.name + ".crdownload").exists() and path.stat().st_size:
            return path
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was not downloaded: {sorted(p.name for p in path.parent.iterdir())}")


def test_a_person_chooses_their_default_workspace_on_their_tokens_page(browser, site):
    from selenium.webdriver.support.ui import Select

    email = "chooser@example.com"
    browser.sign_in(email, person(site, email, "read"))
    browser.visit("/-/_/tokens", "tokens-with-default-workspace")
    Select(browser.find("#default-workspace")).select_by_value("default")
    browser.click("#default-h ~ form button[type=submit]")
    browser.wait_text("The root index now takes a name several workspaces hold from default.")
    browser.page("default-workspace-chosen")
    assert Reader(site.reg).user(email).default_workspace == "default"
    assert Select(browser.find("#default-workspace")).first_selected_option.get_attribute("value") == "default"
