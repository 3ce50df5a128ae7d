"""Helpers the benchmarks share: synthetic but valid distributions, servers, measurements."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.helpers import LiveServer, free_port, make_sdist, make_wheel, start_server  # noqa: E402,F401


def publish_in_process(data: Path, admin: str, ws: str, paths: list[Path]) -> None:
    """Publish files straight through the registry's operations (faster than any client, to fill)."""
    from registry import dists, identity, operations
    from registry.config import Settings

    reg = operations.Registry.open(Settings(data=str(data)))
    who = identity.operator(admin)
    for path in paths:
        with reg.blobs.stage() as staged:
            staged.write(path.read_bytes())
            staged.finish()
            with staged.open() as content:
                dist = dists.inspect(content, path.name)
            operations.publish_file(reg, who, "upload", ws, dist, staged)


def registry_cli(data: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run([sys.executable, "-m", "registry", "--data", str(data), *args], env=env,
                          check=True, capture_output=True, text=True).stdout.strip()


def pypiserver_bin() -> str:
    """pypiserver: the test venv's own (it is a test extra), else installed into its own venv."""
    here = Path(sys.executable).parent
    if (here / "pypi-server").exists():
        return str(here)
    venv = Path(os.environ.get("PYPISERVER_VENV", "/tmp/pypiserver-venv"))
    if not (venv / "bin" / "pypi-server").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", "pypiserver[passlib]"], check=True)
    return str(venv / "bin")


def start_pypiserver(packages: Path, user: str, password: str, authenticate: str) -> tuple[subprocess.Popen, str]:
    bindir = pypiserver_bin()
    htpasswd = packages.parent / "htpasswd"
    subprocess.run([f"{bindir}/python", "-c",
                    "import sys; from passlib.apache import HtpasswdFile as H; h=H(sys.argv[1], new=True); "
                    "h.set_password(sys.argv[2], sys.argv[3]); h.save()", str(htpasswd), user, password], check=True)
    port = free_port()
    proc = subprocess.Popen([f"{bindir}/pypi-server", "run", "-i", "127.0.0.1", "-p", str(port), "-P", str(htpasswd),
                             "-a", authenticate, "--disable-fallback", str(packages)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wrk(url: str, headers: dict[str, str], seconds: int = 10) -> tuple[float, str]:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    non2xx = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    return rps, non2xx
