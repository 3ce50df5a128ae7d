"""The real clients, as subprocesses, against `registry serve` under granian on 127.0.0.1.

Each test follows the Bitbucket Packages page our product is modelled on, command for command,
with only the host swapped: publish with twine / uv / poetry, install with pip / uv / poetry.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from .helpers import build, client_env, make_project, run, tool

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def team(server, tmp_path):
    """A fresh user with a write token, a repository they can write to, and a name to publish."""
    n = len(list(server.data.parent.glob("team-*"))) + 1
    (server.data.parent / f"team-{n}").mkdir()
    email, repo = f"dev{n}@example.com", f"repo{n}"
    server.cli("user", "create", email, "--name", f"Developer {n}")
    server.cli("repo", "create", f"default/{repo}", "--project", "MAIN")
    server.cli("grant", f"default/{repo}", email, "write")
    token = server.cli("token", "create", email).stdout.strip()
    read_token = server.cli("token", "create", email, "--scope", "read").stdout.strip()
    return dict(email=email, repo=repo, token=token, read_token=read_token, n=n)


def project(tmp_path: Path, name: str, version: str, requires_python: str = ">=3.8") -> tuple[Path, list[Path]]:
    src = make_project(tmp_path / f"src-{name}-{version}", name, version, requires_python)
    sdist, wheel = build(src, src / "dist")
    return src, [wheel, sdist]


def installed_version(site: Path, module: str) -> str:
    proc = run([sys.executable, "-c", f"import {module}; print({module}.__version__)"],
               env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    return proc.stdout.strip()


def pip_install(server, tmp_path, email, token, *requirements, index_path="default/", extra=()):
    target = tmp_path / f"site-{len(list(tmp_path.glob('site-*')))}"
    host = server.url.split("://", 1)[1]
    index = f"http://{quote(email, safe='')}:{token}@{host}/{index_path}"
    env = client_env(tmp_path / "pip-home")
    proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target),
                "--index-url", index, *extra, *requirements], env=env, check=False)
    return target, proc


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
    twine = [sys.executable, "-m", "twine", "upload", "--repository", "bitbucket", "--config-file", str(tmp_path / ".pypirc")]
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
    assert proc.returncode != 0 and "does not exist in workspace default" in proc.stdout + proc.stderr
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    proc = run([*upload, "-p", team["read_token"], str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "read scope" in proc.stdout + proc.stderr
    proc = run([*upload, "-p", "rgy_not-a-token", str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "403" in proc.stdout + proc.stderr
    # the same filename with other bytes: twine's --skip-existing recognises "File already exists"
    run([*upload, "-p", team["token"], str(files[0])], env=env)
    _, rebuilt = project(tmp_path / "again", name, "1.0")
    shutil.copy(rebuilt[0], tmp_path / rebuilt[0].name)
    proc = run([*upload, "-p", team["token"], str(rebuilt[0])], env=env, check=False)
    if proc.returncode != 0:  # wheels are reproducible, but if the bytes differ this must be the reason
        assert "File already exists" in proc.stdout + proc.stderr


def test_uv_publishes_and_installs(server, team, tmp_path):
    name = f"uv_Thing{team['n']}"
    module = name.lower()
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    src, files = project(tmp_path, name, "0.3.0")
    env = client_env(tmp_path / "home")
    uv = tool("uv")
    index = f"{server.url}/default"
    # credentials as the seed shows
    run([uv, "auth", "login", index, "--username", team["email"], "--password", "-"], env=env, input=team["token"] + "\n")
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

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(textwrap.dedent(f"""\
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
    run([uv, "add", f"{name}==0.3.0"], env=env, cwd=consumer)
    lock = (consumer / "uv.lock").read_text()
    assert f'name = "uv-thing{team["n"]}"' in lock and 'version = "0.3.0"' in lock
    proc = run([str(consumer / ".venv/bin/python"), "-c", f"import {module}; print({module}.__version__)"], env=env)
    assert proc.stdout.strip() == "0.3.0"


def test_uv_without_credentials_is_asked_for_them(server, team, tmp_path):
    name = f"private-uv{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")
    consumer = tmp_path / "c"
    consumer.mkdir()
    (consumer / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "consumer"
        version = "0"
        requires-python = ">=3.11"
        [tool.uv.sources]
        {name} = {{ index = "bitbucket" }}
        [[tool.uv.index]]
        name = "bitbucket"
        url = "{server.url}/default"
        explicit = true
        """))
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
