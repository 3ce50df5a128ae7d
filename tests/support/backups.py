"""What the e2e tests of `registry backup` and `registry restore` share: publishing to a live
server, running the command line, and every page a restored registry must serve byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.world import upload_form

SIMPLE_JSON = {"accept": "application/vnd.pypi.simple.v1+json"}


def publish(url: str, team: dict, path: Path) -> None:
    fields, files = upload_form(path)
    answer = httpx.post(f"{url}/default/", data=fields, files=files, auth=(team["email"], team["token"]), timeout=30)
    assert answer.status_code == 200, answer.text


def cli(data: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`registry --data DATA ARGS...` (with ``env`` added to this process's environment)."""
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(data), *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})
    assert not check or proc.returncode == 0, proc.stderr
    return proc


def pages(url: str, team: dict, projects: list[str], commits: list[str]) -> dict[str, bytes]:
    """Every project's Simple JSON and JSON API page now, and its Simple JSON and the index at each commit."""
    auth = (team["email"], team["read_token"])
    wanted = {}
    for p in projects:
        wanted[f"/default/{p}/ json"] = (f"/default/{p}/", SIMPLE_JSON)
        wanted[f"/default/pypi/{p}/json"] = (f"/default/pypi/{p}/json", {})
        for c in commits:
            wanted[f"/default/@{c}/{p}/ json"] = (f"/default/@{c}/{p}/", SIMPLE_JSON)
    for c in commits:
        wanted[f"/default/@{c}/"] = (f"/default/@{c}/", SIMPLE_JSON)
    out = {}
    for key, (path, headers) in wanted.items():
        answer = httpx.get(url + path, headers=headers, auth=auth, timeout=30)
        out[key] = f"{answer.status_code} {answer.headers.get('etag')}\n".encode() + answer.content
    return out


def publish_commits(data: Path) -> list[str]:
    """The ledger's publish commits, newest first."""
    return subprocess.run(["git", "-C", str(data / "ledger.git"), "rev-list", "main", "--grep=^publish "],
                          capture_output=True, text=True, check=True).stdout.split()
