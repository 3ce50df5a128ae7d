"""The rules on the names and text a user gives (registry/names.py)."""

import pytest

from registry import names
from registry.errors import Invalid


@pytest.mark.parametrize("value", ["acme", "a", "team-1", "my_ws"])
def test_workspace_slugs_accepted(value):
    assert names.workspace_slug(value) == value


@pytest.mark.parametrize("value", ["", "Acme", "-x", "a b", "a/b", "x" * 63, "api", "_", "files", "../x"])
def test_workspace_slugs_refused(value):
    with pytest.raises(Invalid):
        names.workspace_slug(value)


def test_project_keys_are_uppercased_and_checked():
    assert names.project_key("core_2") == "CORE_2"
    for bad in ("2X", "", "A-B", "A B"):
        with pytest.raises(Invalid):
            names.project_key(bad)


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "Repo", "x" * 63, "a b"])
def test_repository_slugs_refused(value):
    with pytest.raises(Invalid):
        names.repository_slug(value)


def test_emails_lowercased_and_checked():
    assert names.email(" Dev@Example.COM ") == "dev@example.com"
    assert names.email("admin@localhost") == "admin@localhost"
    for bad in ("", "dev", "dev@", "@x.io", "a b@x.io", "a/b@x.io", "a@x..io"):
        with pytest.raises(Invalid):
            names.email(bad)


def test_package_names():
    assert names.package_name("Acme.Utils") == ("acme-utils", "Acme.Utils")
    assert names.package_name("zope__Thing") == ("zope-thing", "zope__Thing")
    for bad in ("", "-x", "x-", "a b", "a/b", "ünïcode", "x\n"):
        with pytest.raises(Invalid):
            names.package_name(bad)


def test_roles():
    assert names.role("write") == "write"
    with pytest.raises(Invalid):
        names.role("owner")
