"""A workspace over its quota, as twine, uv and poetry show it: a 413 whose message (twine with
--verbose, uv and poetry always) says the usage, the limit and what to do; nothing is published."""

from __future__ import annotations

import sys

from tests.support.helpers import client_env, make_project, make_wheel, run, said, tool


def test_twine_uv_and_poetry_show_the_quota_refusal(server, tmp_path):
    n = len(list(server.data.parent.glob("quota-*")))
    (server.data.parent / f"quota-{n}").mkdir()
    ws, email = f"quota{n}", f"quota{n}@example.com"
    server.cli("user", "create", email)
    server.cli("workspace", "create", ws)
    server.cli("project", "create", ws, "Q")
    server.cli("repo", "create", f"{ws}/r", "--project", "Q", "--create-on-publish")
    server.cli("grant", f"{ws}/r", email, "write")
    token = server.cli("token", "create", email).stdout.strip()
    first = make_wheel(tmp_path, "quota-pkg", "1.0", payload=3000)
    second = make_wheel(tmp_path, "quota-pkg", "1.1", payload=3000)
    limit = first.stat().st_size + 100
    server.cli("workspace", "quota", ws, str(limit))
    env = client_env(tmp_path / "home")
    url = f"{server.url}/{ws}/"
    run([sys.executable, "-m", "twine", "upload", "--repository-url", url, "-u", email, "-p", token, str(first)],
        env=env)
    proc = run([sys.executable, "-m", "twine", "upload", "--verbose", "--repository-url", url, "-u", email, "-p",
                token, str(second)], env=env, check=False)
    shown = said(proc)
    assert proc.returncode != 0 and "413" in shown, shown
    assert f"take {first.stat().st_size} bytes" in shown and f"{limit} bytes" in shown, shown
    assert f"registry workspace quota {ws}" in shown, shown
    proc = run([tool("uv"), "publish", "--publish-url", url, "--username", email, "--password", token, str(second)],
               env=env, check=False)
    shown = said(proc)
    assert proc.returncode != 0 and "413" in shown and "over its storage quota" in shown, shown
    src = make_project(tmp_path / "poetry-src", "quota-pkg", "1.2", poetry=True)
    run([tool("poetry"), "config", "repositories.quota", url], env=env, cwd=src)
    run([tool("poetry"), "config", "http-basic.quota", email, token], env=env, cwd=src)
    proc = run([tool("poetry"), "publish", "--build", "--repository", "quota"], env=env, cwd=src, check=False)
    shown = said(proc)
    assert proc.returncode != 0 and "413" in shown and "over its storage quota" in shown, shown
    assert f"registry workspace quota {ws}" in shown, shown
    listed = server.cli("workspace", "quota", ws).stdout
    assert f"{first.stat().st_size} bytes" in listed and "in 1 files" in listed, listed
    # raised: the same upload goes through
    server.cli("workspace", "quota", ws, "none")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", url, "-u", email, "-p", token, str(second)],
        env=env)
