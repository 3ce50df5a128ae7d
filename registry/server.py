"""`registry serve`: bootstrap an empty data directory once, print client settings, run granian."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels

from . import allocator, datadir, identity, metrics, operations
from .blobs import BlobStore, open_store
from .blobs.s3 import S3BlobStore
from .blobs.s3codes import Unavailable
from .config import Settings, placement_note
from .datadir import create_ledger
from .errors import RegistryError
from .fsync import fsync_path, make_dirs, write_file
from .ledger import Ledger
from .links import signin_url
from .model import Channel
from .reads import Reader
from .trust.keys import current

BOOT_WORKSPACE = "default"
BOOT_PROJECT = "MAIN"
BOOT_REPOSITORY = "packages"
BOOT_ADMIN = "admin@localhost"
LINK_MINUTES = 60  # the first start's sign-in link: long enough to read the output and open it
CHANNEL: Channel = "system"  # (the registry bootstraps itself)


@dataclass(frozen=True)
class Bootstrapped:
    admin: str
    token: str
    workspace: str
    repository: str


def bootstrap(settings: Settings) -> Bootstrapped | None:
    """On an empty data directory: a ledger with an admin, a first workspace, project and repository.

    It is built beside the final path and renamed into place, so a crash leaves either nothing (the
    next start bootstraps again) or everything (the next start never does).
    """
    final = settings.ledger_path
    if Ledger.exists_at(final):
        return None
    staging = final.with_name(final.name + ".bootstrap")
    shutil.rmtree(staging, ignore_errors=True)
    registry = datadir.Registry.created(settings, create_ledger(settings, staging), None)
    who, channel = identity.operator(), CHANNEL
    operations.create_user(registry, who, channel, BOOT_ADMIN, f"Admin of {BOOT_WORKSPACE}")  # (of that workspace only)
    operations.create_workspace(registry, who, channel, BOOT_WORKSPACE, "Default workspace")
    operations.grant(registry, who, channel, BOOT_WORKSPACE, BOOT_ADMIN, "admin")
    operations.create_project(registry, who, channel, BOOT_WORKSPACE, BOOT_PROJECT, "Main")
    operations.create_repository(registry, who, channel, BOOT_WORKSPACE, BOOT_REPOSITORY, BOOT_PROJECT)
    token, _ = operations.create_token(registry, who, channel, BOOT_ADMIN, "write", label="bootstrap")
    os.replace(staging, final)
    fsync_path(final.parent)  # the admin token is printed next: what it opens must survive a power cut
    return Bootstrapped(admin=BOOT_ADMIN, token=token, workspace=BOOT_WORKSPACE, repository=BOOT_REPOSITORY)


def _no_one(settings: Settings) -> bool:
    """Whether the ledger holds no user and no workspace (made by `registry init`)."""
    snap = datadir.Registry.open(settings).snapshot()
    return not snap.names("users") and not snap.names("workspaces")


def check_keys(settings: Settings) -> None:
    """Refuse to serve a ledger whose signing keys are not in the data directory: every upload
    would be refused. (Opening it also adopts keys for a ledger from before signing.)"""
    reg = datadir.Registry.open(settings)
    try:
        record = Reader(reg).signing_keys()
        if record is not None:
            for purpose in ("commit", "checkpoint"):
                reg.keys.private(purpose, current(record, purpose).public_key)  # (KeyMissing says what to do)
    finally:
        reg.history.close()


def client_settings(url: str, email: str, token: str) -> str:
    """Ready-to-paste settings for each supported client, with the real URL."""
    scheme, hostless = url.split("://", 1)
    quoted = email.replace("@", "%40")
    return f"""\
Index and upload URL: {url}/

twine (~/.pypirc), then `twine upload --repository registry dist/*` (add --verbose to see why a
publish is refused: twine shows only the status, the reason is in the body):
    [distutils]
    index-servers = registry
    [registry]
    repository = {url}/
    username = {email}
    password = {token}

uv: `echo '{token}' | uv auth login {url}/ --username {email} --password -`, then
  publish: in pyproject.toml
    [[tool.uv.index]]
    name = "registry"
    url = "{url}/"
    publish-url = "{url}/"
    explicit = true
  and `uv publish --index registry`;
  install: `uv add --index registry={url}/ PACKAGE`

poetry: `poetry config repositories.registry {url}/` and
        `poetry config http-basic.registry {email} {token}`, then `poetry publish --repository registry`;
  install: in pyproject.toml
    [[tool.poetry.source]]
    name = "registry"
    url = "{url}/"
    priority = "explicit"
  and `poetry add --source registry PACKAGE`

pip (the email's @ is %40 in a URL): pip install --index-url {scheme}://{quoted}:{token}@{hostless}/ PACKAGE
"""


def _login_link(settings: Settings, email: str) -> str:
    registry = datadir.Registry.open(settings)
    secret, _ = operations.create_signin_link(registry, identity.operator(), CHANNEL, email,
                                              timedelta(minutes=LINK_MINUTES))
    return signin_url(settings.base_url, secret)


def check_port(host: str, port: int) -> None:
    """Refuse a port something already listens on, before anything else happens (a bootstrap would
    print a one-time token that then scrolls away). granian itself binds with SO_REUSEPORT, so a
    second registry on a busy port would share it with the first, each answering from its own
    ledger; this probe binds without it, and fails on any listener."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise RegistryError(f"{host}:{port} is already in use (another registry, or another program, listens "
                                "there): stop it, or choose another port with --port or REGISTRY_PORT.") from None
        raise RegistryError(f"Can't listen on {host}:{port}: {exc.strerror}. "
                            "Choose another --host or --port.") from None


def record_url(settings: Settings) -> None:
    """Where this registry is served, for `registry login-link` (replaced whole, so never half written)."""
    path = settings.served_at_path
    temp = path.with_name(f".{path.name}.tmp")
    write_file(temp, f"{settings.base_url}\n{os.getpid()}\n".encode(), exclusive=False, sync=True)
    os.replace(temp, path)
    fsync_path(path.parent)


def wait_for_store(settings: Settings, seconds: float) -> BlobStore:
    """The blob store, opened and checked; while it can't be reached or its bucket isn't there yet (a
    bucket being made beside us), asked again every 2 s for up to ``seconds``, then its refusal as at
    once. The first start on a bucket is included: it checks before recording the bucket."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            store = open_store(settings)
            store.check()
            return store
        except Unavailable as exc:
            if time.monotonic() + 2 > deadline:
                raise
            print(f"Waiting for the blob store (up to {seconds:.0f} s, REGISTRY_BLOBS_START_WAIT): {exc.message}",
                  file=sys.stderr, flush=True)
            time.sleep(2)


def serve(settings: Settings) -> int:
    # First: glibc fixes its arena limit for good once a process has more than eight arenas (one a
    # thread), and the workers granian forks inherit this process's (the threshold too); workers it
    # spawns read the same from the environment.
    allocator.limit_arenas()
    allocator.fix_mmap_threshold()
    allocator.for_children()
    check_port(settings.host, settings.port)
    created = not settings.data_path.exists()
    make_dirs(settings.data_path)
    if created and (note := placement_note(settings.data_path)):
        print(note, file=sys.stderr)
    following = None
    if settings.follow:  # a read replica: no bootstrap, no keys; its ledger is the primary's
        from .replica.start import prepare

        try:
            store = open_store(settings)
            store.check()
            settings, following = prepare(settings)
        except RegistryError:
            if created:  # (a refused start leaves nothing behind; a directory that was there stays)
                shutil.rmtree(settings.data_path, ignore_errors=True)
            raise
        booted = None
    else:
        store = wait_for_store(settings, settings.blobs_start_wait)  # (a bucket that can't be used: said now)
        booted = bootstrap(settings)
        check_keys(settings)
    record_url(settings)
    url = f"{settings.base_url}/{BOOT_WORKSPACE}"
    if following:
        print(f"Serving a read replica of {settings.primary} from {settings.data_path} at {settings.base_url}/ "
              "(reads from here, writes forwarded to the primary).")
        print(following)
    elif booted:
        print(f"Bootstrapped a new registry in {settings.data_path}:")
        print(f"  admin user {booted.admin}, workspace {booted.workspace}, "
              f"repository {booted.workspace}/{booted.repository}")
        print(f"  admin API token (shown only this once): {booted.token}\n")
        print(f"Create a package before publishing it:\n  registry --data {settings.data_path} package create "
              f"{booted.workspace} NAME --repo {booted.repository}\n")
        print(client_settings(url, booted.admin, booted.token))
        print(f"The web UI is at {settings.base_url}/ (a browser is shown it; installers get the index).")
        print(f"Sign in to the web UI as {booted.admin} with this one-time link (valid {LINK_MINUTES} minutes; "
              f"`registry login-link EMAIL` makes another):\n  {_login_link(settings, booted.admin)}\n")
    else:
        print(f"Serving the registry in {settings.data_path} at {settings.base_url}/<workspace>/ "
              f"(e.g. {url}/); create tokens with `registry token create EMAIL`.")
        if not following and _no_one(settings):
            print(f"This registry has no user and no workspace yet (its ledger was made by `registry init`, which "
                  f"bootstraps nothing). Add them:\n{datadir.NEXT_STEPS.format(data=settings.data_path)}")
    said, warns = settings.metrics_note()  # (who may read them, and why: a proxy here could make them public)
    print(said, file=sys.stderr if warns else sys.stdout)
    if isinstance(store, S3BlobStore):
        redirect = " (downloads redirect there)" if settings.blobs_redirect else ""
        print(f"Distribution files are in {store.location}{redirect}")
    sys.stdout.flush()
    os.environ.update(settings.to_env())  # the workers build their app from these
    counts = metrics.serving_directory()
    metrics.use_directory(counts, fresh=False)  # (the workers inherit it: their counts, summed)
    try:
        _serve(settings)
    finally:
        shutil.rmtree(counts, ignore_errors=True)
    return 0


def _serve(settings: Settings) -> None:
    Granian(
        "registry.web.app:app_from_env",
        factory=True,
        interface=Interfaces.ASGI,
        # uvloop, named rather than left to granian's `auto` (which takes whichever loop is installed):
        # granian hands each request to the loop from its own threads, and with uvloop a worker spends
        # 4 to 14% less CPU on an index page than with asyncio's loop (bench_limits.py; README, "Measured")
        loop=Loops.uvloop if sys.platform != "win32" else Loops.auto,  # (no uvloop there: pyproject.toml)
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        # a worker stops within seconds of SIGINT/SIGTERM by itself (web/stopping.py: long polls answered,
        # bodies still arriving refused, the rest given 4 s); one that still hasn't is killed after this
        workers_kill_timeout=10,
        # a worker that dies (killed, out of memory) is replaced, and the others go on serving; one that
        # dies again within 5.5 s of being replaced is a crash loop, and granian stops
        respawn_failed_workers=True,
        log_level=LogLevels(settings.log_level.lower()),
    ).serve()
