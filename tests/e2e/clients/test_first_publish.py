"""A new name published with twine, uv and poetry (and by a pipeline): created in the publish's own
commit where the repository allows it; otherwise a 403 whose reason each client shows."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.helpers import build, client_env, make_project, run, said, tool

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def dists(tmp_path: Path, name: str, version: str = "1.0.0") -> list[Path]:
    src = make_project(tmp_path / f"src-{name}", name, version, ">=3.8")
    sdist, wheel = build(src, src / "dist")
    return [wheel, sdist]


def creation_commit(server, name: str) -> str:
    """The commit that added the package's record, with the paths it touched and its message."""
    git = ["git", "-C", str(server.data / "ledger.git")]
    added = subprocess.run([*git, "log", "--format=%H", "--diff-filter=A", "--",
                            f":(glob)workspaces/default/packages/pypi/*/{name}/package.json"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(added) == 1, added
    return subprocess.run([*git, "show", "--name-only", "--format=%B", added[0]],
                          capture_output=True, text=True, check=True).stdout


def test_twine_and_uv_publishing_a_new_name_create_it_in_that_commit(server, team, tmp_path):
    env = client_env(tmp_path / "home")
    server.cli("repo", "set", f"default/{team['repo']}", "--create-on-publish")
    name = f"fresh-twine{team['n']}"
    proc = run([sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", server.index(),
                "-u", team["email"], "-p", team["token"], *map(str, dists(tmp_path, name))], env=env)
    assert f"created package {name}, linked to default/{team['repo']}" in said(proc)
    name_uv = f"fresh-uv{team['n']}"
    run([tool("uv"), "publish", "--publish-url", server.index(), "--check-url", server.index(),
         "--username", team["email"], "--password", team["token"], *map(str, dists(tmp_path, name_uv))], env=env)
    listed = server.cli("package", "list", "default").stdout
    for n in (name, name_uv):
        assert f"{n}\t{n}\tdefault/{team['repo']}" in listed
        shown = creation_commit(server, n)  # one commit: the package, its first version, both Actions
        assert f"publish {n} 1.0.0" in shown and "Action: publish" in shown and "Action: create-package" in shown
        assert f"/{n}/package.json" in shown and f"/{n}/versions/" in shown


def test_with_the_option_off_each_client_shows_the_403_naming_the_package_and_the_command(server, team, tmp_path):
    env = client_env(tmp_path / "home")
    name = f"unmade{team['n']}"
    files = dists(tmp_path, name)
    command = f"registry package create default {name} --repo REPO"
    twine = [sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", team["email"],
             "-p", team["token"], str(files[0])]
    proc = run(twine, env=env, check=False)  # (without --verbose twine shows the status line only)
    assert proc.returncode != 0 and "403 Forbidden" in said(proc) and "--verbose" in said(proc)
    proc = run([*twine, "--verbose"], env=env, check=False)
    assert proc.returncode != 0 and f"Package '{name}' does not exist in workspace default" in said(proc)
    assert command in said(proc)
    proc = run([tool("uv"), "publish", "--publish-url", server.index(), "--check-url", server.index(),
                "--username", team["email"], "--password", team["token"], str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "403" in said(proc) and command in said(proc), said(proc)
    src = files[0].parent.parent
    run([tool("poetry"), "config", "repositories.bitbucket", server.index()], env=env, cwd=src)
    run([tool("poetry"), "config", "http-basic.bitbucket", team["email"], team["token"]], env=env, cwd=src)
    proc = run([tool("poetry"), "publish", "--repository", "bitbucket"], env=env, cwd=src, check=False)
    assert proc.returncode != 0 and "403" in said(proc) and command in said(proc), said(proc)
    assert name not in server.cli("package", "list", "default").stdout


def test_a_pipeline_creates_a_new_name_in_its_own_repository(server, team, tmp_path, issuer):
    ws_uuid = next(line.split("\t")[1] for line in server.cli("workspace", "list").stdout.splitlines()
                   if line.startswith("default\t"))
    repo_uuid, repo = f"{{{uuid.uuid4()}}}", f"piped-new{team['n']}"
    server.cli("repo", "create", f"default/{repo}", "--project", "MAIN", "--uuid", repo_uuid, "--create-on-publish")
    server.cli("trust", "default", "--issuer", issuer.issuer_url("default"))
    name = f"made-by-pipeline{team['n']}"
    token = issuer.mint(workspace="default", workspace_uuid=ws_uuid, repository_uuid=repo_uuid, branch="main")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", "bitbucket-pipelines",
         "-p", token, *map(str, dists(tmp_path, name))], env=client_env(tmp_path / "home"))
    assert f"{name}\t{name}\tdefault/{repo}" in server.cli("package", "list", "default").stdout
    shown = creation_commit(server, name)
    assert "Action: create-package" in shown and f"Repository-Uuid: {repo_uuid}" in shown
