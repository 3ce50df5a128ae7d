from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from registry import identity, layout, operations
from registry.config import Settings
from registry.datadir import Registry
from registry.model import Workspace
from registry.web.app import create_asgi
from tests.support import containers
from tests.support.helpers import build, make_project, new_team, start_server
from tests.support.pipelines import OTHER_REPO_UUID, REPO_UUID
from tests.support.seaweed import Seaweed
from tests.support.world import PEOPLE, WS, World


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """SeaweedFS's S3 server on 127.0.0.1, with a bucket, for the whole session."""
    server = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_image() -> str:
    """The local base that replaces a Dockerfile's public FROM (made once per machine; tests/support/containers.py)."""
    return containers.base_image()


@pytest.fixture
def backend(request) -> str:
    return getattr(request, "param", "file")


@pytest.fixture
def s3_env(seaweed, monkeypatch) -> dict[str, str]:
    """The AWS_* variables a registry on the test bucket reads (set in this process)."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed.env()


@pytest.fixture
def settings(tmp_path: Path, backend: str, request) -> Settings:
    blobs = ""
    if backend == "s3":
        request.getfixturevalue("s3_env")
        blobs = request.getfixturevalue("seaweed").location()
    return Settings(data=str(tmp_path / "data"), max_upload_bytes=2 * 2**20, blobs=blobs)


@pytest.fixture
def reg(settings: Settings) -> Registry:
    return Registry.open(settings, create=True)


@pytest.fixture
def world(reg: Registry) -> World:
    op, ch = identity.operator(), "cli"
    w = World(reg)
    operations.create_workspace(reg, op, ch, WS, "Acme")
    operations.create_project(reg, op, ch, WS, "CORE", "Core")
    operations.create_project(reg, op, ch, WS, "LABS", "Labs")
    operations.create_repository(reg, op, ch, WS, "utils", "CORE")
    operations.create_repository(reg, op, ch, WS, "public-lib", "LABS", public=True)
    operations.create_repository(reg, op, ch, WS, "secret", "LABS")
    for email, role in PEOPLE.items():
        operations.create_user(reg, op, ch, email)
        w.tokens[email], _ = operations.create_token(reg, op, ch, email, "write")
        if role:
            operations.grant(reg, op, ch, WS, email, role, repository="utils")
    operations.grant(reg, op, ch, WS, "wsadmin@acme.test", "admin")
    operations.grant(reg, op, ch, WS, "projreader@acme.test", "read", project="CORE")
    w.tokens["dev-readonly"], _ = operations.create_token(reg, op, ch, "dev@acme.test", "read")
    operations.create_package(reg, op, ch, WS, "Acme.Utils", "utils")
    operations.create_package(reg, op, ch, WS, "public-pkg", "public-lib")
    operations.create_package(reg, op, ch, WS, "secret-pkg", "secret")
    return w


@pytest.fixture
async def client(world: World):
    app = create_asgi(world.reg.settings, world.reg)  # as served: through the front door
    app.app.debug = True
    async with AsyncTestClient(app=app) as c:
        c.served = app  # the app as served: the access log answers repeats first (repeats.py), then the front door
        yield c


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, Path]]:
    """Real sdists and wheels, built once per session: {(name, version): (sdist, wheel)}."""
    root = tmp_path_factory.mktemp("dists")
    built = {}
    for name, version, requires in [
        ("Acme.Utils", "1.0.0", ">=3.8"),
        ("Acme.Utils", "1.1.0", ">=3.8"),
        ("Acme.Utils", "2.0.0rc1", ">=3.8"),
        ("public-pkg", "0.1", ">=3.8"),
        ("Acme.Utils", "3.0", ">=3.99"),
    ]:
        project = make_project(root / f"src-{name}-{version}", name, version, requires)
        built[(name, version)] = build(project, root / "out" / f"{name}-{version}")
    return built


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    """`registry serve` under granian with two workers, bootstrapped on an empty data directory (and,
    parametrised "s3", its files in a bucket of the session's SeaweedFS)."""
    backend = getattr(request, "param", "file")
    extra: dict = {}
    if backend == "s3":
        seaweed = request.getfixturevalue("seaweed")
        extra = dict(env=seaweed.env(), blobs=seaweed.location())
    live = start_server(tmp_path_factory.mktemp(f"live-{backend}") / "data", workers=2, **extra)
    yield live
    live.stop()


@pytest.fixture
def team(server):
    """A fresh user with a write token, a repository they can write to, and a name to publish."""
    return new_team(server)


@pytest.fixture(scope="session")
def issuer():
    """A local Bitbucket Pipelines OIDC issuer on loopback."""
    from pipelines.issuer import LocalIssuer

    with LocalIssuer() as local:
        yield local


@pytest.fixture
def trusted(world, issuer):
    """acme trusts the local issuer; acme/utils is the Bitbucket repository REPO_UUID."""
    reg, op = world.reg, identity.operator()
    ws = reg.snapshot().get(layout.workspace(WS), Workspace)
    # the workspace's uuid is Bitbucket's: recreate the repository records with known UUIDs
    operations.create_repository(reg, op, "cli", WS, "pipeline-repo", "CORE", uuid=REPO_UUID)
    operations.create_repository(reg, op, "cli", WS, "elsewhere", "CORE", uuid=OTHER_REPO_UUID)
    operations.create_package(reg, op, "cli", WS, "Acme.Piped", "pipeline-repo")
    operations.create_package(reg, op, "cli", WS, "not-ours", "elsewhere")
    operations.set_trust(reg, op, "cli", WS, issuer.issuer_url(WS))
    return dict(ws_uuid=ws.uuid)


# --- markers: what a test needs beyond this process (registered in pyproject.toml) ------------------
# By directory: everything under tests/e2e/ is `e2e`, and its ui/, s3/ and powerloss/ are also
# `browser`, `s3` and `powerloss`. By fixture, wherever the test lives: one that asks for a live server,
# SeaweedFS or a browser, or is parametrised onto the S3 backend (`@BOTH`'s "s3"), is `e2e` too. A test
# outside tests/e2e/ that starts servers itself says so with `@pytest.mark.e2e` (tests/adversarial/).
TESTS = Path(__file__).parent
BY_DIRECTORY = {"e2e": ("e2e",), "e2e/ui": ("browser",), "e2e/s3": ("s3",), "e2e/powerloss": ("powerloss",),
                "e2e/containers": ("container",)}
BY_FIXTURE = {"server": ("e2e",), "team": ("e2e",), "seaweed": ("e2e", "s3"), "s3_env": ("e2e", "s3"),
              "driver": ("e2e", "browser"),
              "base_image": ("e2e", "container")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names: set[str] = set()
        try:
            where = Path(item.path).resolve().relative_to(TESTS.resolve()).parent.as_posix()
        except ValueError:
            where = ""
        for directory, marks in BY_DIRECTORY.items():
            if where == directory or where.startswith(directory + "/"):
                names.update(marks)
        for fixture in item.fixturenames:
            names.update(BY_FIXTURE.get(fixture, ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "s3" in (params.get("backend"), params.get("server")):
            names.update(("e2e", "s3"))
        if "e2e" in {mark.name for mark in item.iter_markers()}:
            names.add("e2e")
        for name in sorted(names):
            item.add_marker(name)
