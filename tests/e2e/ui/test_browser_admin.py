"""A workspace administered in a real browser by its admin, who is not the operator: the operator
creates the workspace (naming alice its admin) and the users on the command line; alice does the
rest in the UI, and bob's view follows what she grants and revokes. Every page passes axe."""

from __future__ import annotations

from selenium.webdriver.support.ui import Select

from registry import cli, identity, layout, operations
from registry.model import Repository
from registry.reads import Reader

REPO_UUID = "{7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f}"
ISSUER = "https://api.bitbucket.org/2.0/workspaces/orbit/pipelines-config/identity/oidc"
OTHER_ISSUER = "https://api.bitbucket.org/2.0/workspaces/orbit-labs/pipelines-config/identity/oidc"
ALICE, BOB = "alice@orbit.example", "bob@orbit.example"


def submit(browser, field_css: str) -> None:
    """Press the submit button of the form holding ``field_css``."""
    browser.click(f"form:has({field_css}) button[type=submit]")


def test_a_workspace_admin_administers_it_in_the_browser(browser, site):
    data = ["--data", str(site.data)]
    for email in (ALICE, BOB):
        assert cli.main([*data, "user", "create", email]) == 0
    assert cli.main([*data, "workspace", "create", "orbit", "--name", "Orbit", "--admin", ALICE]) == 0
    op = identity.operator()
    alice, _ = operations.create_token(site.reg, op, "cli", ALICE, "write", label="laptop")
    bob, _ = operations.create_token(site.reg, op, "cli", BOB, "write", label="laptop")

    browser.sign_in(BOB, bob)  # bob, before: no workspace of his
    browser.visit("/-/", "bob-before")
    assert "Orbit" not in browser.text() and "You don't have access to any workspace yet" in browser.text()
    browser.sign_out()

    browser.sign_in(ALICE, alice)
    browser.visit("/-/", "alice-home")
    assert "Orbit" in browser.text() and "you administer it" in browser.text().lower()
    browser.visit("/-/orbit/", "alice-workspace")
    browser.link("Settings")
    browser.page("settings-people")
    assert "People and permissions" in browser.text() and ALICE in browser.text()

    browser.link("Projects and repositories")
    browser.page("settings-projects")
    browser.fill("#project-key", "CORE")
    browser.fill("#project-name", "Core")
    submit(browser, "#project-key")
    browser.wait_text("Created project CORE")
    browser.page("project-created")
    browser.fill("#repo-slug", "tools")
    Select(browser.find("#repo-project")).select_by_value("CORE")
    submit(browser, "#repo-slug")
    browser.wait_text("Created private repository orbit/tools")
    browser.page("repository-created")
    browser.fill("#uuid-tools", REPO_UUID.upper())
    submit(browser, "#uuid-tools")
    browser.wait_text(f"orbit/tools has Bitbucket UUID {REPO_UUID} now.")
    browser.page("uuid-set")
    assert site.reg.snapshot().get(layout.repository("orbit", "tools"), Repository).uuid == REPO_UUID

    browser.link("People and permissions")
    browser.fill("#grant-email", "nobody@orbit.example")  # a mistake: the form again, saying what to do
    Select(browser.find("#grant-on")).select_by_value("repo:tools")
    submit(browser, "#grant-email")
    browser.wait_for("#grant-error")
    browser.page("grant-unknown-user")
    assert "only the registry's operator creates users" in browser.text()
    browser.fill("#grant-email", BOB)
    Select(browser.find("#grant-on")).select_by_value("repo:tools")
    Select(browser.find("#grant-role")).select_by_value("write")
    submit(browser, "#grant-email")
    browser.wait_text(f"Granted write on orbit/tools to {BOB}.")
    browser.page("bob-granted")
    browser.fill("#grant-email", BOB)  # and read on the project (removing him as a member takes both)
    Select(browser.find("#grant-on")).select_by_value("project:CORE")
    Select(browser.find("#grant-role")).select_by_value("read")
    submit(browser, "#grant-email")
    browser.wait_text(f"Granted read on project CORE to {BOB}.")

    browser.link("Pipelines")
    browser.page("settings-pipelines")
    for issuer in (ISSUER, OTHER_ISSUER):  # two issuers, added one after the other: both trusted
        browser.fill("#issuer", issuer)
        submit(browser, "#issuer")
        browser.wait_text(f"Pipelines of orbit are trusted from {issuer} (audiences: the default).")
    browser.page("issuers-trusted")
    assert len(browser.finds("a[href*='/pipelines/remove?issuer=']")) == 2
    browser.confirm_in_dialog("a[href*='/pipelines/remove?issuer='][href*='orbit-labs']", "untrust-dialog")
    browser.wait_text(f"Pipelines of orbit are no longer trusted from {OTHER_ISSUER}.")
    browser.page("issuer-removed")
    assert [t.issuer for _, t in Reader(site.reg, op).trusts("orbit")] == [ISSUER]

    browser.visit("/-/orbit/new", "create-package")  # a package to set a policy on
    browser.fill("#name", "orbit-tools")
    submit(browser, "#name")
    browser.wait_text("Created orbit-tools")
    browser.link("Publish policy")
    browser.page("policy")
    browser.fill("#branches", "main\nrelease/*")
    submit(browser, "#branches")
    browser.wait_text("Set the publish policy of orbit-tools")
    browser.page("policy-set")
    assert "release/*" in browser.text()
    policy = Reader(site.reg, op).package("orbit", "orbit-tools").package.publish_policy
    assert policy is not None and policy.branches == ["main", "release/*"]
    browser.sign_out()

    browser.sign_in(BOB, bob)  # bob, granted: the repository and its package, no settings
    browser.visit("/-/orbit/packages/orbit-tools/", "bob-granted-package")
    assert "Your role: write" in browser.text()
    assert not browser.finds("a[href='/-/orbit/settings/']") and "Publish policy" not in browser.text()
    browser.visit("/-/orbit/settings/", "bob-refused-settings")
    assert browser.find(".problem .status").text == "403" and "needs admin permission" in browser.text()
    browser.sign_out()

    browser.sign_in(ALICE, alice)  # alice revokes bob's role on tools, then removes him, confirming each
    browser.visit("/-/orbit/repos/tools/people", "repository-people")
    browser.confirm_in_dialog("a[href*='revoke?email=bob']", "revoke-dialog")
    browser.wait_text(f"Revoked {BOB}'s role on orbit/tools.")
    browser.page("bob-revoked")
    assert BOB not in site.reg.snapshot().get(layout.repository("orbit", "tools"), Repository).grants
    browser.visit("/-/orbit/settings/", "members")
    browser.confirm_in_dialog("a[href*='members/remove?email=bob']", "remove-member-dialog")
    browser.wait_text(f"Removed {BOB} from workspace orbit (1 role taken away).")
    browser.page("bob-removed")
    assert not Reader(site.reg, op).grants("orbit", user=BOB)

    # the repository: packages created on first publish, then a new slug (its package follows)
    browser.visit("/-/orbit/repos/tools/people", "repository-settings")
    browser.click("#create-on-publish")
    submit(browser, "#create-on-publish")
    browser.wait_text("orbit/tools creates a package when a name it doesn't have is first published to it.")
    browser.page("create-on-publish")
    submit(browser, "#pipelines-source")  # (its first choice: every pipeline of the workspace)
    browser.wait_text("orbit/tools lets every pipeline of workspace orbit read it now")
    browser.page("pipelines-granted")
    assert site.reg.snapshot().get(layout.repository("orbit", "tools"), Repository).pipeline_readers == ["*"]
    browser.confirm_in_dialog("a[href*='pipelines/revoke?source=']", "pipelines-revoke-dialog")
    browser.wait_text("orbit/tools no longer lets every pipeline of workspace orbit read it.")
    assert site.reg.snapshot().get(layout.repository("orbit", "tools"), Repository).pipeline_readers == []
    browser.fill("#new-slug", "toolbox")
    submit(browser, "#new-slug")
    browser.wait_text("Renamed orbit/tools to orbit/toolbox")
    browser.page("repository-renamed")
    renamed = site.reg.snapshot().get(layout.repository("orbit", "toolbox"), Repository)
    assert renamed.create_packages_on_publish and renamed.uuid == REPO_UUID
    assert Reader(site.reg, op).package("orbit", "orbit-tools").package.repository == "toolbox"

    # the projects: one renamed, an empty one made and deleted
    browser.visit("/-/orbit/settings/projects", "projects-again")
    browser.fill("#project-name-CORE", "Core tools")
    submit(browser, "#project-name-CORE")
    browser.wait_text("Project CORE is called 'Core tools' now.")
    browser.page("project-renamed")
    browser.fill("#project-key", "SPARE")
    submit(browser, "#project-key")
    browser.wait_text("Created project SPARE")
    browser.confirm_in_dialog("a[href='/-/orbit/settings/projects/SPARE/delete']", "delete-project-dialog")
    browser.wait_text("Deleted project SPARE.")
    browser.page("project-deleted")
    assert not site.reg.snapshot().exists(layout.project("orbit", "SPARE"))
    browser.sign_out()

    browser.sign_in(BOB, bob)  # bob, after: nothing of it again
    browser.visit("/-/", "bob-after")
    assert "Orbit" not in browser.text()
    browser.visit("/-/orbit/packages/orbit-tools/", "bob-after-package")
    assert browser.find(".problem .status").text == "404"

    # every change alice made is one commit through the web, by her
    made = [c for c in site.reg.ledger.walk() if c.author_email == ALICE and c.trailer("Channel") == "web"]
    summaries = " | ".join(c.summary for c in made)
    for said in ("create project orbit/CORE", "create repository orbit/tools", "set the Bitbucket UUID",
                 f"grant write on orbit/tools to {BOB}", "trust pipelines of orbit", "set publish policy",
                 f"stop trusting pipelines of orbit from {OTHER_ISSUER}", f"revoke grants on orbit/tools from {BOB}",
                 f"remove {BOB} from workspace orbit", "repository orbit/tools now creates packages on publish",
                 "rename repository orbit/tools to orbit/toolbox", "rename project orbit/CORE",
                 "delete project orbit/SPARE"):
        assert said in summaries, said
