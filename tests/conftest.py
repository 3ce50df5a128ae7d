from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from registry import identity, operations
from registry.config import Settings
from registry.datadir import Registry
from registry.web.app import create_asgi

from .helpers import build, make_project, new_team, start_server
from .seaweed import Seaweed

WS = "acme"


# The same assertions over both blob stores: `@BOTH` on a test (or `pytestmark = BOTH`) runs it with
# the data directory's blobs/ and with a bucket on a real S3 server (SeaweedFS, started once).
BOTH = pytest.mark.parametrize("backend", ["file", "s3"], indirect=True)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """SeaweedFS's S3 server on 127.0.0.1, with a bucket, for the whole session."""
    server = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


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


@dataclass
class World:
    """A workspace with every kind of role holder, and a write token for each of them."""

    reg: Registry
    ws: str = WS
    tokens: dict[str, str] = field(default_factory=dict)  # label (usually the email) -> secret

    @staticmethod
    def email(who: str) -> str:
        return "dev@acme.test" if who == "dev-readonly" else who

    def basic(self, who: str) -> dict[str, str]:
        value = base64.b64encode(f"{self.email(who)}:{self.tokens[who]}".encode()).decode()
        return {"authorization": f"Basic {value}"}

    def principal(self, who: str) -> identity.Principal:
        return identity.check_token(self.reg.snapshot(), self.email(who), self.tokens[who])


PEOPLE = {
    "wsadmin@acme.test": None,       # workspace admin
    "owner@acme.test": "admin",      # admin of acme/utils
    "dev@acme.test": "write",        # write on acme/utils
    "reader@acme.test": "read",      # read on acme/utils
    "projreader@acme.test": None,    # read on project CORE (so on every CORE repository)
    "outsider@acme.test": None,      # nothing at all
}


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
        c.served = app
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


def publish(reg: Registry, who: identity.Principal, path: Path, ws: str = WS) -> operations.Published:
    """What the upload endpoint does with a file, minus HTTP."""
    from registry import dists as distmod

    with reg.blobs.stage() as staged:
        staged.write(path.read_bytes())
        staged.finish()
        with staged.open() as content:
            dist = distmod.inspect(content, path.name)
        return operations.publish_file(reg, who, "upload", ws, dist, staged)


def overwrite_blob(reg: Registry, sha256: str, data: bytes) -> None:
    """Damage a stored blob behind the registry's back (a disk's bit rot, an operator's mistake)."""
    if reg.blobs.remote:
        reg.blobs.bucket.client().put_object(Bucket=reg.blobs.location.bucket, Key=reg.blobs.bucket.key(sha256), Body=data)
    else:
        reg.blobs.local_path(sha256).write_bytes(data)


def upload_form(path: Path, **overrides) -> tuple[dict, dict]:
    """The legacy upload form, field for field as twine sends it."""
    import hashlib

    from registry import dists as distmod

    data = path.read_bytes()
    info = distmod.inspect(path, path.name)
    fields = {
        ":action": "file_upload", "protocol_version": "1", "metadata_version": info.metadata_version,
        "name": info.name, "version": info.version, "filetype": info.packagetype,
        "pyversion": info.python_version, "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "summary": info.summary, "classifiers": ["A :: B", "C :: D"],
    }
    filename = overrides.pop("filename", path.name)
    content = overrides.pop("content", data)
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    return fields, {"content": (filename, content, "application/octet-stream")}


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
