"""The real clients, as subprocesses, against `registry serve` under granian on 127.0.0.1.

Each test follows the Bitbucket Packages page our product is modelled on, command for command,
with only the host swapped: publish with twine / uv / poetry, install with pip / uv / poetry; on a
registry that keeps its files in the data directory, and on one that keeps them in a bucket.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.helpers import (
    build,
    client_env,
    installed_version,
    make_project,
    pip_install,
    run,
    said,
    tool,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    # every client against a server with its files in the data directory, and one with them in a bucket
    pytest.mark.parametrize("server", ["file", "s3"], indirect=True),
]


def project(tmp_path: Path, name: str, version: str, requires_python: str = ">=3.8") -> tuple[Path, list[Path]]:
    src = make_project(tmp_path / f"src-{name}-{version}", name, version, requires_python)
    sdist, wheel = build(src, src / "dist")
    return src, [wheel, sdist]


def uv_consumer(root: Path, name: str, index: str) -> Path:
    """A uv project that takes ``name`` from the registry only, as the seed shows."""
    root.mkdir()
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "consumer"
        version = "0"
        requires-python = ">=3.11"
        dependencies = []

        [tool.uv.sources]
        {name} = {{ index = "bitbucket" }}

        [[tool.uv.index]]
        name = "bitbucket"
        url = "{index}"
        explicit = true
        """))
    return root


def test_twine_publishes_and_pip_installs(server, team, tmp_path):
    name = f"Acme.Twine_Utils{team['n']}"  # dots, underscores and mixed case
    canonical = f"acme-twine-utils{team['n']}"
    module = name.lower().replace(".", "_")
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    src, files = project(tmp_path, name, "1.0.0")
    _, pre = project(tmp_path, name, "2.0.0rc1")
    _, future = project(tmp_path, name, "3.0", requires_python=">=3.99")
    # the seed's .pypirc, host swapped
    (tmp_path / ".pypirc").write_text(textwrap.dedent(f"""\
        [distutils]
        index-servers = bitbucket

        [bitbucket]
        repository = {server.url}/default
        username = {team['email']}
        password = {team['token']}
        """))
    env = client_env(tmp_path / "home")
    twine = [sys.executable, "-m", "twine", "upload", "--repository", "bitbucket", "--config-file",
             str(tmp_path / ".pypirc")]
    run([*twine, *map(str, files + pre + future)], env=env)
    # re-running succeeds: the identical file again is a 200 that changes nothing (twine 7 allows
    # --skip-existing only against the public index, so a plain re-run is how twine users repeat)
    run([*twine, *map(str, files)], env=env)
    log = server.cli("log", "default", canonical).stdout
    assert log.count(f"publish {canonical} ") == 6 and team["email"] in log

    # pip: credentials in the index URL, as the seed shows
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0.0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert installed_version(site, module) == "1.0.0"
    # unpinned: pre-releases and versions whose Requires-Python excludes us are skipped
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], name)
    assert proc.returncode == 0 and installed_version(site, module) == "1.0.0", proc.stderr
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], name, extra=["--pre"])
    assert proc.returncode == 0 and installed_version(site, module) == "2.0.0rc1", proc.stderr
    # the seed's form exactly: the bare host as index, the workspace found from the name
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0.0", index_path="")
    assert proc.returncode == 0 and installed_version(site, module) == "1.0.0", proc.stderr
    # and the sdist is installable too (its build backend comes from this environment)
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0.0",
                             extra=["--no-binary", ":all:", "--no-build-isolation"])
    assert proc.returncode == 0 and installed_version(site, module) == "1.0.0", proc.stderr


def test_twine_refusals_are_clear(server, team, tmp_path):
    name = f"refused-pkg{team['n']}"
    _, files = project(tmp_path, name, "1.0")
    env = client_env(tmp_path / "home")
    upload = [sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", f"{server.url}/default/",
              "-u", team["email"]]
    proc = run([*upload, "-p", team["token"], str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "403" in said(proc) and "does not exist in workspace default" in said(proc)
    assert f"`registry package create default {name} --repo REPO`" in said(proc)
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    proc = run([*upload, "-p", team["read_token"], str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "read scope" in said(proc)
    proc = run([*upload, "-p", "rgy_not-a-token", str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "401" in said(proc)
    # the same filename with other bytes: twine's --skip-existing recognises "File already exists"
    run([*upload, "-p", team["token"], str(files[0])], env=env)
    _, rebuilt = project(tmp_path / "again", name, "1.0")
    shutil.copy(rebuilt[0], tmp_path / rebuilt[0].name)
    proc = run([*upload, "-p", team["token"], str(rebuilt[0])], env=env, check=False)
    if proc.returncode != 0:  # wheels are reproducible, but if the bytes differ this must be the reason
        assert "File already exists" in said(proc)


def test_uv_publishes_and_installs(server, team, tmp_path):
    name = f"uv_Thing{team['n']}"
    module = name.lower()
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    src, files = project(tmp_path, name, "0.3.0")
    env = client_env(tmp_path / "home")
    uv = tool("uv")
    index = f"{server.url}/default"
    # credentials as the seed shows
    run([uv, "auth", "login", index, "--username", team["email"], "--password", "-"], env=env,
        input=team["token"] + "\n")
    (src / "pyproject.toml").write_text((src / "pyproject.toml").read_text() + textwrap.dedent(f"""
        [[tool.uv.index]]
        name = "bitbucket"
        url = "{index}"
        publish-url = "{index}"
        explicit = true
        """))
    run([uv, "publish", "--index", "bitbucket", *map(str, files)], env=env, cwd=src)
    again = run([uv, "publish", "--index", "bitbucket", *map(str, files)], env=env, cwd=src)
    assert "already exists" in again.stderr  # --check-url semantics via the index URL

    consumer = uv_consumer(tmp_path / "consumer", name, index)
    run([uv, "add", f"{name}==0.3.0"], env=env, cwd=consumer)
    lock = (consumer / "uv.lock").read_text()
    assert f'name = "uv-thing{team["n"]}"' in lock and 'version = "0.3.0"' in lock
    proc = run([str(consumer / ".venv/bin/python"), "-c", f"import {module}; print({module}.__version__)"], env=env)
    assert proc.stdout.strip() == "0.3.0"


def test_uv_without_credentials_is_asked_for_them(server, team, tmp_path):
    name = f"private-uv{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")
    consumer = uv_consumer(tmp_path / "c", name, f"{server.url}/default")
    proc = run([tool("uv"), "add", name], env=env, cwd=consumer, check=False)
    assert proc.returncode != 0 and "401" in proc.stderr


def test_poetry_publishes_and_installs(server, team, tmp_path):
    name = f"Poetry.Pkg{team['n']}"
    module = name.lower().replace(".", "_")
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    src, files = project(tmp_path, name, "1.4.2")
    env = client_env(tmp_path / "home")
    poetry = tool("poetry")
    index = f"{server.url}/default"
    # the seed's source block; poetry publishes only to a configured repository URL
    (src / "pyproject.toml").write_text((src / "pyproject.toml").read_text() + textwrap.dedent(f"""
        [[tool.poetry.source]]
        name = "bitbucket"
        url = "{index}"
        priority = "explicit"
        """))
    run([poetry, "config", "repositories.bitbucket", index], env=env, cwd=src)
    run([poetry, "config", "http-basic.bitbucket", team["email"], team["token"]], env=env, cwd=src)
    run([poetry, "publish", "--repository", "bitbucket"], env=env, cwd=src)
    again = run([poetry, "publish", "--repository", "bitbucket", "--skip-existing"], env=env, cwd=src)
    assert "Uploading" in again.stdout + again.stderr
    log = server.cli("log", "default", name).stdout
    assert log.count("publish ") == 2

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "consumer"
        version = "0.1.0"
        requires-python = ">=3.11"

        [tool.poetry]
        package-mode = false

        [[tool.poetry.source]]
        name = "bitbucket"
        url = "{index}"
        priority = "explicit"
        """))
    run([poetry, "add", "--source", "bitbucket", f"{name}==1.4.2"], env=env, cwd=consumer)
    proc = run([str(consumer / ".venv/bin/python"), "-c", f"import {module}; print({module}.__version__)"], env=env)
    assert proc.stdout.strip() == "1.4.2"
    lock = (consumer / "poetry.lock").read_text()
    assert json.dumps(name.lower().replace(".", "-")) in lock or name.lower().replace(".", "-") in lock


def test_pipelines_publish_with_their_oidc_token(server, team, tmp_path, issuer):
    """twine, uv publish and poetry publish, each with a step's OIDC token as the password."""
    ws_uuid = next(line.split("\t")[1] for line in server.cli("workspace", "list").stdout.splitlines()
                   if line.startswith("default\t"))
    repo_uuid = f"{{{__import__('uuid').uuid4()}}}"
    repo = f"piped{team['n']}"
    server.cli("repo", "create", f"default/{repo}", "--project", "MAIN", "--uuid", repo_uuid)
    server.cli("trust", "default", "--issuer", issuer.issuer_url("default"))
    name = f"piped-pkg{team['n']}"
    server.cli("package", "create", "default", name, "--repo", repo)
    env = client_env(tmp_path / "home")
    index = f"{server.url}/default/"

    def step_token(branch="main"):
        return issuer.mint(workspace="default", workspace_uuid=ws_uuid, repository_uuid=repo_uuid, branch=branch)

    # twine: BITBUCKET_PACKAGES_USERNAME-style username, the token as password
    _, files = project(tmp_path / "twine", name, "1.0.0")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", index, "-u", "bitbucket-pipelines",
         "-p", step_token(), *map(str, files)], env=env)
    # uv publish
    _, files = project(tmp_path / "uv", name, "1.1.0")
    run([tool("uv"), "publish", "--publish-url", index, "--username", "x-token-auth", "--password", step_token(),
         *map(str, files)], env=env)
    # poetry publish, credentials from poetry config http-basic
    src, files = project(tmp_path / "poetry", name, "1.2.0")
    run([tool("poetry"), "config", "repositories.bitbucket", index], env=env, cwd=src)
    run([tool("poetry"), "config", "http-basic.bitbucket", "x-token-auth", step_token()], env=env, cwd=src)
    run([tool("poetry"), "publish", "--repository", "bitbucket"], env=env, cwd=src)

    log = server.cli("log", "default", name).stdout
    assert log.count(f"publish {name} ") == 6
    assert log.count(f"pipelines+{repo_uuid.strip('{}')}@bitbucket.invalid") == 6
    assert log.count(f"repository-uuid {repo_uuid}") == 6 and "branch main" in log
    # a token from a branch the package's policy doesn't allow is refused, with the reason
    server.cli("package", "policy", "default", name, "--branch", "main")
    _, files = project(tmp_path / "late", name, "1.3.0")
    proc = run([sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", index, "-u", "x",
                "-p", step_token(branch="feature/x"), str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "branches main only; this run is on feature/x" in said(proc)


def test_pip_and_uv_skip_a_yanked_version_unless_pinned(server, team, tmp_path):
    name = f"yanky{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")
    for version in ("1.0", "1.1"):
        _, files = project(tmp_path, name, version)
        run([sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", team["email"],
             "-p", team["token"], *map(str, files)], env=env)
    # yank the newest through the management API, as a tool would
    import httpx
    r = httpx.post(f"{server.url}/api/workspaces/default/packages/pypi/{name}/versions/1.1/yank",
                   json={"reason": "breaks on Tuesdays"}, auth=(team["email"], team["token"]))
    assert r.status_code == 200 and r.json()["yanked"] is True

    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], name)
    assert proc.returncode == 0 and installed_version(site, name) == "1.0", proc.stderr
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.1")
    assert proc.returncode == 0 and installed_version(site, name) == "1.1", proc.stderr
    assert "yanked" in said(proc).lower() and "breaks on Tuesdays" in said(proc)

    host = server.url.split("://", 1)[1]
    index = f"http://{quote(team['email'], safe='')}:{team['read_token']}@{host}/default/"
    for requirement, expected in ((name, "1.0"), (f"{name}==1.1", "1.1")):
        target = tmp_path / f"uv-{expected}"
        run([tool("uv"), "pip", "install", "--no-cache", "--target", str(target), "--index-url", index, requirement],
            env=env)
        assert installed_version(target, name) == expected
