"""The registry's image (the repository's Dockerfile), run by a real engine: read-only, as its own
user, on a data volume; bootstrapped on its first start (the admin token in the container's log),
administered with `registry` inside it, published to with twine and installed from with pip on the
host; and stopped (SIGTERM) in the middle of 200 uploads without losing one it acknowledged."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest

from tests.support import containers, server_image
from tests.support.helpers import build, client_env, installed_version, make_project, make_wheel, run
from tests.support.world import upload_form

UPLOADS = 200
STOP_AFTER = 20  # acknowledged uploads before the SIGTERM
STOPS_WITHIN = 15.0  # seconds from `podman stop` to the container's end, uploads in flight


@pytest.fixture(scope="module")
def image(base_image) -> str:
    took = server_image.build()
    print(f"built {server_image.TAG} in {took:.1f} s ({server_image.image_size_mb():.0f} MB)")
    return server_image.TAG


@pytest.fixture
def volume():
    name = server_image.new_volume()
    yield name
    server_image.remove_volume(name)


@pytest.fixture
def started(image, volume):
    """Start containers of ``image`` on ``volume``; every one is removed at the end."""
    made: list[server_image.Running] = []

    def start(**options) -> server_image.Running:
        made.append(server_image.start(volume, image, **options))
        return made[-1]
    yield start
    for running in made:
        running.remove()


def test_the_image_bootstraps_read_only_as_its_own_user_and_serves_twine_and_pip(started, tmp_path):
    registry = started()
    took = registry.wait_healthy()
    print(f"container start to the first 200 of /_/health: {took:.2f} s")
    log = registry.logs()
    assert "Bootstrapped a new registry in /data" in log, log
    admin_token = registry.admin_token()
    # the image's HEALTHCHECK, as the engine runs it
    containers.podman("healthcheck", "run", registry.name)
    health = containers.podman("inspect", "--format", "{{.State.Health.Status}}", registry.name)
    assert health.stdout.decode().strip() == "healthy"
    assert registry.exec("id", "-u").strip() == str(server_image.UID)
    assert registry.exec("id", "-u", "registry").strip() == str(server_image.UID)  # (the named user)

    # administered with the CLI inside the container (its data directory is the volume's, by REGISTRY_DATA)
    registry.exec("registry", "user", "create", "dev@example.com", "--name", "Developer")
    registry.exec("registry", "repo", "create", "default/apps", "--project", "MAIN")
    registry.exec("registry", "grant", "default/apps", "dev@example.com", "write")
    token = registry.exec("registry", "token", "create", "dev@example.com").strip()
    registry.exec("registry", "package", "create", "default", "boxed-utils", "--repo", "apps")
    # ... and the bootstrap token is the admin's
    answer = httpx.get(f"{registry.url}/default/boxed-utils/", auth=("admin@localhost", admin_token))
    assert answer.status_code == 200, answer.text

    project = make_project(tmp_path / "boxed-utils", "boxed-utils", "1.0.0")
    sdist, wheel = build(project, tmp_path / "dist")
    env = client_env(tmp_path / "home")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{registry.url}/default/",
         "-u", "dev@example.com", "-p", token, "--non-interactive", str(sdist), str(wheel)], env=env)
    target = tmp_path / "site"
    index = f"http://dev%40example.com:{token}@127.0.0.1:{registry.port}/default/"
    run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target), "--index-url", index,
         "boxed-utils==1.0.0"], env=env)
    assert installed_version(target, "boxed_utils") == "1.0.0"
    # a bad token changes nothing and says so (the image serves what the registry serves)
    refused = httpx.post(f"{registry.url}/default/", auth=("dev@example.com", "rgy_not-a-token"),
                         data=upload_form(wheel)[0], files=upload_form(wheel)[1])
    assert refused.status_code in (401, 403), refused.text

    # all of it with nothing writable but the volume: not the root filesystem, not even /tmp
    for place in ("/tmp", "/usr/local", "/data/../etc"):
        write = containers.podman("exec", registry.name, "touch", f"{place}/probe", check=False)
        assert write.returncode != 0 and b"Read-only file system" in write.stdout, (place, write.stdout)

def test_a_sigterm_during_200_uploads_loses_none_it_acknowledged(started, tmp_path):
    registry = started(env={"REGISTRY_WORKERS": "2"})
    registry.wait_healthy()
    auth = ("admin@localhost", registry.admin_token())
    registry.exec("registry", "package", "create", "default", "burst", "--repo", "packages")
    wheels = [make_wheel(tmp_path, "burst", f"1.0.{n}", payload=64 * 1024) for n in range(UPLOADS)]
    acknowledged: dict[str, str] = {}
    refused: dict[str, str] = {}
    enough = threading.Event()
    lock = threading.Lock()

    def upload(wheel) -> None:
        data, files = upload_form(wheel)
        try:
            answer = httpx.post(f"{registry.url}/default/", auth=auth, data=data, files=files, timeout=60)
            outcome = str(answer.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        with lock:
            if outcome == "200":
                acknowledged[wheel.name] = hashlib.sha256(wheel.read_bytes()).hexdigest()
                if len(acknowledged) >= STOP_AFTER:
                    enough.set()
            else:
                refused[wheel.name] = outcome

    stopped: list[float] = []

    def stop() -> None:
        enough.wait(120)
        began = time.monotonic()
        containers.podman("stop", "-t", "30", registry.name)
        stopped.append(time.monotonic() - began)

    stopper = threading.Thread(target=stop)
    stopper.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(upload, wheels))
    stopper.join()
    print(f"{len(acknowledged)} acknowledged, {len(refused)} not ({sorted(set(refused.values()))}); "
          f"stopped in {stopped[0]:.2f} s")
    assert len(acknowledged) >= STOP_AFTER and refused, "the stop did not land during the uploads"
    assert stopped[0] < STOPS_WITHIN, f"the stop took {stopped[0]:.1f} s:\n{registry.logs()[-3000:]}"
    code = containers.podman("inspect", "--format", "{{.State.ExitCode}}", registry.name).stdout.decode().strip()
    assert code == "0", f"the server exited {code} on SIGTERM:\n{registry.logs()[-3000:]}"

    again = started()  # the same volume, a new container
    again.wait_healthy()
    assert "Bootstrapped" not in again.logs()
    page = httpx.get(f"{again.url}/default/burst/", auth=auth,
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    files = {f["filename"]: f for f in page["files"]}
    missing = sorted(set(acknowledged) - set(files))
    assert not missing, f"{len(missing)} acknowledged upload(s) lost: {missing[:5]}"
    for name, sha256 in acknowledged.items():
        assert files[name]["hashes"]["sha256"] == sha256, name
        body = httpx.get(urljoin(f"{again.url}/default/burst/", files[name]["url"]), auth=auth).content
        assert hashlib.sha256(body).hexdigest() == sha256, name
    # and the ledger and its files are whole (exits non-zero on anything it can't read back)
    print(again.exec("registry", "verify"))
