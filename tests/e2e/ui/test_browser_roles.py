"""The web UI by role, in a real browser: a reader sees no write actions and a forged POST changes
nothing; a stranger can't tell a private package from a missing one; a phone-sized screen works."""

from __future__ import annotations

import pytest

from registry import identity, operations
from tests.support.helpers import make_wheel, pip_install

from .conftest import person


@pytest.fixture(scope="module")
def shelf(site, tmp_path_factory):
    """A private package with a version in default/packages, and people with and without roles."""
    from tests.support.world import publish

    op = identity.operator()
    operations.create_package(site.reg, op, "cli", "default", "shelved", "packages")
    publish(site.reg, op, make_wheel(tmp_path_factory.mktemp("shelf"), "shelved", "1.0"), ws="default")
    return {"reader": person(site, "reader@example.com", "read"), "stranger": person(site, "stranger@example.com")}


def test_a_reader_sees_no_write_actions_and_forged_posts_are_refused(browser, site, shelf):
    browser.sign_in("reader@example.com", shelf["reader"])
    browser.visit("/-/default/", "reader-packages")
    assert browser.finds("#results a[href='/-/default/packages/shelved/']")
    assert not browser.finds("a[href^='/-/default/new']")  # no "Create package"
    browser.visit("/-/default/packages/shelved/", "reader-package")
    assert "Your role: read" in browser.text()
    assert not browser.finds("a[data-confirm]") and "Delete" not in browser.text() and "Yank" not in browser.text()
    browser.visit("/-/default/packages/shelved/1.0/", "reader-version")
    assert not browser.finds("a[data-confirm]")
    browser.visit("/-/default/packages/shelved/1.0/delete", "reader-confirm-page")  # typed by hand: refused
    assert browser.find(".problem .status").text == "403" and "needs write permission" in browser.text()

    head = site.reg.ledger.head()
    with browser.http() as http:  # the reader's own session, with a valid CSRF token: still no permission
        r = http.post("/-/default/packages/shelved/1.0/delete", data={"csrf": browser.csrf()})
        assert r.status_code == 403 and "needs write permission on repository default/packages" in r.text
        r = http.post("/-/default/packages/shelved/delete", data={"csrf": browser.csrf()})
        assert r.status_code == 403 and "needs admin permission" in r.text
    assert site.reg.ledger.head() == head  # nothing changed
    browser.sign_out()
    browser.sign_in(site.admin, site.token)
    head = site.reg.ledger.head()  # (signing out and in are commits)
    with browser.http() as http:  # an admin's session, without the form's CSRF token (another site's form)
        for data in ({}, {"csrf": "forged"}):
            r = http.post("/-/default/packages/shelved/1.0/yank", data=data)
            assert r.status_code == 403 and "security token" in r.text
    assert site.reg.ledger.head() == head  # nothing changed


@pytest.mark.parametrize("signed_in", [False, True])
def test_a_stranger_cannot_tell_private_from_missing(browser, site, shelf, signed_in):
    if signed_in:
        browser.sign_in("stranger@example.com", shelf["stranger"])
    pages = {}
    for name in ("shelved", "shelvex"):  # (same length: the pages compare as they are, names swapped)
        for path, page in ((f"/-/default/packages/{name}/", "package"), (f"/-/default/packages/{name}/1.0/", "version"),
                           (f"/-/default/packages/{name}/history", "history")):
            browser.visit(path, f"{name}-{page}")
            pages[path.replace(name, "NAME")] = pages.get(path.replace(name, "NAME"), []) + [
                browser.driver.page_source.replace(name, "NAME")]
    for path, (private, missing) in pages.items():
        assert private == missing, path
        # (a workspace they can read nothing of: neither name is said to be the missing one)
        assert ("Sign in to see this" if not signed_in else "No workspace 'default' with a package 'NAME'") in private
    if signed_in:  # the workspace's lists and history don't show it either
        browser.visit("/-/default/", "stranger-packages")
        assert "shelved" not in browser.driver.page_source
        browser.visit("/-/default/history", "stranger-history")
        assert "shelved" not in browser.driver.page_source


def test_the_pages_fit_a_phone(browser, site, shelf):
    browser.driver.set_window_size(390, 844)
    browser.sign_in(site.admin, site.token)
    for path, name in (("/-/", "phone-home"), ("/-/default/", "phone-packages"),
                       ("/-/default/packages/shelved/", "phone-package"),
                       ("/-/default/packages/shelved/1.0/", "phone-version"), ("/-/default/history", "phone-history"),
                       ("/-/_/tokens", "phone-tokens")):
        browser.visit(path, name)
        width, overflow = browser.driver.execute_script(
            "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
        assert width <= 390 and overflow <= width, f"{path}: {overflow}px of content in a {width}px window"
    browser.visit("/-/default/packages/shelved/", "phone-package-again")
    browser.click("#versions a[href$='/1.0/yank']")  # the dialog fits too
    browser.wait_for("dialog[open] #confirm")
    browser.page("phone-dialog")
    assert browser.driver.execute_script("return document.querySelector('dialog').getBoundingClientRect().width") <= 390


def test_a_browser_at_the_index_url_gets_the_ui_and_pip_still_installs_from_it(browser, site, shelf, tmp_path):
    browser.sign_in(site.admin, site.token)
    browser.visit("/default/", "index-url-in-a-browser")
    assert browser.driver.current_url == f"{site.url}/-/default/" and "shelved" in browser.find("#results").text
    browser.visit("/default/shelved/", "project-url-in-a-browser")
    assert browser.driver.current_url == f"{site.url}/-/default/packages/shelved/"
    target, proc = pip_install(site, tmp_path, site.admin, site.token, "shelved==1.0")
    assert proc.returncode == 0, proc.stderr
    assert (target / "shelved").is_dir()
