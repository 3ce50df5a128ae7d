"""pip and uv against the index as it stood at a past commit, on a live server (the past index itself is
tested in-process in tests/unit/web/test_past.py)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from tests.support.helpers import (
    build,
    client_env,
    installed_version,
    make_project,
    pip_install,
    run,
    tool,
)


def test_pip_and_uv_install_what_they_would_have_then(server, team, tmp_path):
    name, module = f"then-pkg{team['n']}", f"then_pkg{team['n']}"
    server.cli("package", "create", "default", name, "--repo", team["repo"])
    env = client_env(tmp_path / "home")

    def release(version: str) -> str:
        files = build(make_project(tmp_path / f"src-{version}", name, version), tmp_path / f"dist-{version}")
        run([sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", team["email"],
             "-p", team["token"], *map(str, files)], env=env)
        return httpx.get(f"{server.url}/_/health").json()["ledger"]

    first = release("1.0")
    second = release("1.1")
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    release("2.0")
    api = f"{server.url}/api/workspaces/default/packages/pypi/{name}/versions"
    auth = (team["email"], team["token"])
    assert httpx.post(f"{api}/1.1/yank", json={"reason": "no"}, auth=auth).status_code == 200
    assert httpx.delete(f"{api}/1.0", auth=auth).status_code == 200
    read = (team["email"], team["read_token"])
    for index, expected in ((f"default/@{first}/", "1.0"), (f"default/@{second[:12]}/", "1.1"),
                            (f"default/@{when}/", "1.1"), ("default/", "2.0")):
        site, proc = pip_install(server, tmp_path, *read, name, index_path=index)
        assert proc.returncode == 0 and installed_version(site, module) == expected, (index, proc.stderr)
        host = server.url.split("://", 1)[1]
        target = tmp_path / f"uv-{len(list(tmp_path.glob('uv-*')))}"
        run([tool("uv"), "pip", "install", "--no-cache", "--target", str(target), "--index-url",
             f"http://{quote(read[0], safe='')}:{read[1]}@{host}/{index}", name], env=env)
        assert installed_version(target, module) == expected, index
