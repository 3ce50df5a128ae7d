"""What pip, uv, twine and poetry show of a refusal, against `registry serve`: a token that is no
credential is a 401 (which pip and uv report as bad credentials), the root index's 409 for a name two
workspaces hold (pip shows none of its body: the README's troubleshooting gives the curl that does),
and twine's --skip-existing (refused by twine itself for any index but PyPI's: a plain re-run is the
way, and re-uploading identical bytes succeeds)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.support.helpers import build, client_env, make_project, pip_install, run, said, tool


def project(tmp_path: Path, name: str, version: str) -> list[Path]:
    src = make_project(tmp_path / f"src-{name}-{version}", name, version)
    sdist, wheel = build(src, src / "dist")
    return [wheel, sdist]


def revoked_token(server, email: str) -> str:
    secret = server.cli("token", "create", email, "--label", "to revoke").stdout.strip()
    token_id = next(line.split()[0] for line in server.cli("token", "list", email).stdout.splitlines()
                    if "to revoke" in line)
    server.cli("token", "revoke", email, token_id)
    return secret


def test_what_each_client_shows_of_refused_credentials(server, team, tmp_path):
    name = f"shown-pkg{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    files = project(tmp_path, name, "1.0")
    env = client_env(tmp_path / "home")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/default/", "-u", team["email"],
         "-p", team["token"], *map(str, files)], env=env)
    bad = revoked_token(server, team["email"])
    host = server.url.split("://", 1)[1]
    # the reason, as curl shows it
    r = httpx.get(f"{server.url}/default/{name}/", auth=(team["email"], bad))
    assert r.status_code == 401 and "was revoked" in r.text and r.headers["www-authenticate"].startswith("Basic")
    # pip: "401 Error, Credentials not correct" (a 403 it passed over in silence)
    _, proc = pip_install(server, tmp_path, team["email"], bad, f"{name}==1.0")
    assert proc.returncode != 0 and f"401 Error, Credentials not correct for {server.url}/default/{name}/" in said(proc)
    # uv: "a lack of valid authentication credentials (401 Unauthorized)"
    proc = run([tool("uv"), "pip", "install", "--target", str(tmp_path / "uv-site"), "--index-url",
                f"http://{team['email'].replace('@', '%40')}:{bad}@{host}/default/", f"{name}==1.0"],
               env=env, check=False)
    assert proc.returncode != 0 and "lack of valid authentication credentials (401 Unauthorized)" in said(proc)
    # twine, without --verbose: the status only (the reason phrase is the server's standard one: see the README)
    proc = run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/default/",
                "-u", team["email"], "-p", bad, str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "HTTPError: 401 Unauthorized" in said(proc) and "--verbose" in said(proc)
    proc = run([sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", f"{server.url}/default/",
                "-u", team["email"], "-p", bad, str(files[0])], env=env, check=False)
    assert proc.returncode != 0 and "was revoked" in said(proc)
    # poetry shows the body
    src = make_project(tmp_path / "poetry-src", name, "1.1", poetry=True)
    run([tool("poetry"), "config", "repositories.registry", f"{server.url}/default/"], env=env, cwd=src)
    run([tool("poetry"), "config", "http-basic.registry", team["email"], bad], env=env, cwd=src)
    proc = run([tool("poetry"), "publish", "--build", "--repository", "registry"], env=env, cwd=src, check=False)
    assert proc.returncode != 0 and "HTTP Error 401: Unauthorized" in said(proc) and "was revoked" in said(proc)


def test_a_name_two_workspaces_hold_at_the_root_index_and_its_fix(server, team, tmp_path):
    """pip shows nothing of the root index's 409; curl shows which workspaces hold the name and what to do;
    the person's default workspace makes the root index answer it."""
    name, n = f"twice-pkg{team['n']}", team["n"]
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/default/", "-u", team["email"],
         "-p", team["token"], *map(str, project(tmp_path, name, "1.0"))], env=env)
    _, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0", index_path="")
    assert proc.returncode == 0, said(proc)
    # an unrelated grant makes the name visible in a second workspace
    other = f"other{n}"
    server.cli("workspace", "create", other)
    server.cli("project", "create", other, "O")
    server.cli("repo", "create", f"{other}/r", "--project", "O")
    server.cli("package", "create", other, name, "--repo", "r")
    server.cli("grant", f"{other}/r", team["email"], "read")
    _, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0", index_path="")
    assert proc.returncode != 0 and "(from versions: none)" in said(proc)  # (all pip says)
    r = httpx.get(f"{server.url}/{name}/", auth=(team["email"], team["read_token"]))
    assert r.status_code == 409, r.text
    assert f"default ({server.url}/default/), {other} ({server.url}/{other}/)" in r.text
    assert "registry user default-workspace" in r.text
    server.cli("user", "default-workspace", team["email"], "default")
    site, proc = pip_install(server, tmp_path, team["email"], team["read_token"], f"{name}==1.0", index_path="")
    assert proc.returncode == 0, said(proc)


def test_twine_skip_existing_is_twines_refusal_and_a_plain_rerun_succeeds(server, team, tmp_path):
    """twine 7 refuses --skip-existing itself, before any request, for every index but PyPI's (its
    settings.verify_feature_capability compares the URL's prefix): nothing a server answers changes
    that. A plain re-run is the way: the identical file again is a 200 that changes nothing."""
    name = f"skip-pkg{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    files = project(tmp_path, name, "1.0")
    env = client_env(tmp_path / "home")
    upload = [sys.executable, "-m", "twine", "upload", "--repository-url", f"{server.url}/default/",
              "-u", team["email"], "-p", team["token"]]
    run([*upload, *map(str, files)], env=env)
    head = server.cli("log", "default", name).stdout
    proc = run([*upload, "--skip-existing", *map(str, files)], env=env, check=False)
    assert proc.returncode != 0 and "does not have support for the following features: --skip-existing" in said(proc)
    run([*upload, *map(str, files)], env=env)
    assert server.cli("log", "default", name).stdout == head  # (nothing committed again)
