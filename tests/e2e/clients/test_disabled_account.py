"""A disabled account's token, as twine and pip meet it: refused at once, with the reason and who to
ask; accepted again once the account is enabled (the same token: nothing was revoked)."""

from __future__ import annotations

import sys

import pytest

from tests.support.helpers import build, client_env, make_project, pip_install, run, said

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def test_a_disabled_accounts_token_is_refused_by_twine_with_the_reason_then_works_once_enabled(server, team, tmp_path):
    name = f"disabled-pkg{team['n']}"
    sdist, wheel = build(make_project(tmp_path / "src", name, "1.0"), tmp_path / "dist")
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")
    upload = [sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", f"{server.url}/default/",
              "-u", team["email"], "-p", team["token"], str(wheel)]
    server.cli("user", "disable", team["email"], "--reason", "left the team in March")
    proc = run(upload, env=env, check=False)
    shown = said(proc)
    assert proc.returncode != 0 and "403" in shown, shown
    assert f"account {team['email']} is disabled" in shown and "left the team in March" in shown, shown
    assert f"registry user enable {team['email']}" in shown, shown
    server.cli("user", "enable", team["email"])
    run(upload, env=env)
    _, installed = pip_install(server, tmp_path, team["email"], team["token"], f"{name}==1.0")
    assert installed.returncode == 0, said(installed)
