"""The registry's own image (the repository's Dockerfile), built and run by podman as the tests and
the benchmarks do (tests/support/containers.py): started on a data volume, read-only as the README
recommends, on the host's network at a free port, and waited for until /_/health answers."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import containers
from tests.support.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
TAG = "localhost/pypi-registry:test"
UID = 10001  # the Dockerfile's user
# Docker's --read-only: podman's also mounts tmpfs on /tmp, /var/tmp and /run unless told not to
READ_ONLY = ("--read-only", "--read-only-tmpfs=false")


def build(tag: str = TAG) -> float:
    """Build the repository's Dockerfile as ``tag``; the seconds it took."""
    return containers.build(ROOT, tag)


@dataclass
class Running:
    name: str
    port: int
    started: float  # time.monotonic() just before `podman run`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return containers.podman("logs", self.name, check=False).stdout.decode(errors="replace")

    def exec(self, *args: str, check: bool = True) -> str:
        """A command run in the container (as its user), e.g. ``exec("registry", "user", "list")``: what it
        printed on stdout (its stderr, notes and errors, only in the failure's message)."""
        proc = subprocess.run([*containers.ENGINE, "exec", self.name, *args], capture_output=True, text=True,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} in {self.name} exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc.stdout

    def wait_healthy(self, timeout: float = 90) -> float:
        """Seconds from the container's start to the first 200 of /_/health."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/_/health", timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            state = containers.podman("inspect", "--format", "{{.State.Status}}", self.name, check=False)
            if state.stdout.decode().strip() not in ("created", "running", "configured") or time.monotonic() > deadline:
                raise RuntimeError(f"the registry's container never answered /_/health:\n{self.logs()[-4000:]}")
            time.sleep(0.05)

    def admin_token(self) -> str:
        found = re.search(r"admin API token \(shown only this once\): (\S+)", self.logs())
        assert found, f"no admin token in the container's log:\n{self.logs()[-3000:]}"
        return found[1]

    def remove(self) -> None:
        containers.remove_container(self.name)


def start(volume: str, image: str = TAG, *, env: dict[str, str] | None = None, port: int | None = None,
          name: str | None = None, read_only: bool = True) -> Running:
    """The image's default command (`registry serve`) on ``volume`` at /data, detached."""
    port = port or free_port()
    name = name or f"registry-{uuid.uuid4().hex[:10]}"
    args = containers.run_args(image, env={"REGISTRY_PORT": str(port), **(env or {})}, volumes=[(volume, "/data")],
                               name=name, detach=True, remove=False, extra=READ_ONLY if read_only else ())
    started = time.monotonic()
    containers.podman(*args)
    return Running(name=name, port=port, started=started)


def new_volume() -> str:
    name = f"registry-data-{uuid.uuid4().hex[:10]}"
    containers.podman("volume", "create", name)
    return name


def remove_volume(name: str) -> None:
    containers.podman("volume", "rm", "-f", name, check=False)


def image_size_mb(tag: str = TAG) -> float:
    return containers.image_size(tag) / 1e6
