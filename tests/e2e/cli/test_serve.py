"""`registry serve` for real (granian on 127.0.0.1): a busy port is refused, and login links point where it
listens (the other commands are tested in-process in tests/unit/test_cli.py)."""

import subprocess
import sys


def test_a_second_registry_on_a_busy_port_is_refused_not_sharing_it(tmp_path):
    """granian binds with SO_REUSEPORT: without the check, two registries would answer on one port."""
    from tests.support.helpers import start_server

    live = start_server(tmp_path / "first", workers=1)
    try:
        port = live.url.rsplit(":", 1)[1]
        proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(tmp_path / "second"), "serve",
                               "--port", port], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "is already in use" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "second").exists()
    finally:
        live.stop()


def test_login_link_points_where_the_registry_is_served(tmp_path):
    """Not at the default port: `serve` records where it listens, and login-link uses that unless told."""
    import os

    from tests.support.helpers import free_port, run, start_server

    port = free_port()
    while port == 8080:
        port = free_port()
    live = start_server(tmp_path / "data", workers=1, port=port)
    try:
        link = live.cli("login-link", "admin@localhost").stdout.strip()
        assert link.startswith(f"http://127.0.0.1:{port}/"), link
        assert (tmp_path / "data" / "served-at").read_text() == f"http://127.0.0.1:{port}\n{live.process.pid}\n"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        cli = [sys.executable, "-m", "registry", "login-link", "admin@localhost", "--data", str(live.data)]
        public = run(cli, env | {"REGISTRY_PUBLIC_URL": "https://registry.example.com/"}).stdout
        assert public.startswith("https://registry.example.com/-/"), public
        given = run([*cli, "--url", "http://10.0.0.1:9000"], env | {"REGISTRY_PUBLIC_URL": "https://x.example.com"})
        assert given.stdout.startswith("http://10.0.0.1:9000/-/")
    finally:
        live.stop()


def test_the_quick_start_in_a_git_checkout_bootstraps_outside_it(tmp_path):
    """`registry serve` with no --data, in a checkout (as the README's quick start runs it): the data
    directory, signing keys included, is made where `git clean -fdx` can't delete it, and it says so."""
    import os
    import time

    import httpx

    from tests.support.helpers import free_port

    checkout, xdg = tmp_path / "checkout", tmp_path / "xdg"
    (checkout / ".git").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")} | {"XDG_DATA_HOME": str(xdg)}
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "registry", "serve", "--port", str(port), "--workers", "1"],
                                cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
        assert "admin API token (shown only this once)" in text
        assert f"Bootstrapped a new registry in {xdg / 'pypi-registry'}" in text
        assert "not ./registry-data: this is a git work tree" in text
        assert (xdg / "pypi-registry" / "keys").is_dir() and not (checkout / "registry-data").exists()
    finally:
        proc.terminate()
        proc.wait(15)
