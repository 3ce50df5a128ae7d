"""What `registry serve --follow PRIMARY_URL` does before it serves: check the token with the primary,
take the public key the primary's web session cookies are checked with (a session made there is good
here; a replica can make none), and fetch the ledger (all of it the first time; a replica then has
something to serve)."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlsplit, urlunsplit

import httpx
import msgspec
import pygit2

from ..config import Settings
from ..errors import RegistryError
from ..fsync import make_dirs, write_file
from ..ledger import Ledger
from ..outbound import describe, timeouts
from ..trust import witness
from .follow import Follower, Stopped


def prepare(settings: Settings) -> tuple[Settings, str]:
    """Make the data directory a replica of the primary, up to date if it can be: the settings to serve
    with (the primary's URL corrected to its root, if a path below it was given), and what to print."""
    primary = settings.primary
    if primary is None or not primary.startswith(("http://", "https://")):
        raise RegistryError(f"--follow {settings.follow}: give the primary's URL, e.g. https://pypi.example.com.")
    root = registry_root(primary, settings.follow_timeout_seconds)
    if root != primary:
        settings = msgspec.structs.replace(settings, follow=root)
        said = (f"--follow {primary}: that is a page of the registry at {root} (a "
                f"workspace's URL?), not its root; following {root}. Give --follow {root} to say so.\n")
        return settings, said + _prepare(settings)
    return settings, _prepare(settings)


def registry_root(url: str, seconds: float) -> str:
    """The registry's root URL: ``url`` itself if a registry answers there, else the first URL above it
    where one does (a workspace's URL, `https://host/ws/`, is a page of the registry at `https://host`);
    ``url`` as given if none does (unreachable: said by the first fetch)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    for n in range(len(segments), -1, -1):
        candidate = urlunsplit((parts.scheme, parts.netloc, "/".join(["", *segments[:n]]), "", "")).rstrip("/")
        try:
            answer = httpx.get(f"{candidate}/_/health", timeout=timeouts(seconds))
            if answer.status_code == 200 and isinstance(found := answer.json(), dict) and "role" in found:
                return candidate
        except (httpx.HTTPError, ValueError):
            pass
    return url


def _prepare(settings: Settings) -> str:
    primary = settings.primary
    assert primary is not None
    token = settings.follow_token
    if not token:
        raise RegistryError("A replica needs a replica token: create one on the primary with `registry token create "
                            "EMAIL --replica`, and give it in REGISTRY_FOLLOW_TOKEN (or --token).")
    make_dirs(settings.data_path)
    marker = settings.replica_of_path
    had = Ledger.exists_at(settings.ledger_path)
    if had and not marker.exists():
        raise RegistryError(f"{settings.data_path} holds a registry of its own, not a replica's copy: give the "
                            "replica an empty data directory (--data).")
    if marker.exists() and marker.read_text().strip() != primary:
        raise RegistryError(f"{settings.data_path} is a replica of {marker.read_text().strip()}, not of {primary}: "
                            "give a replica of another primary its own data directory.")
    reachable = _session_key(settings, primary, token)
    if not had:
        if not reachable:
            raise RegistryError(f"The primary at {primary} is unreachable: a new replica needs it for its first "
                                "fetch. Start the replica again once the primary answers.")
        write_file(marker, f"{primary}\n".encode(), exclusive=False, sync=True)
        pygit2.init_repository(str(settings.ledger_path), bare=True, initial_head="main")
    follower = Follower(settings, Ledger(settings.ledger_path))
    try:
        head = follower.sync() if reachable else None
    except Stopped as exc:
        return f"WARNING: this replica {exc}; it serves what it had (see /_/health)."
    except witness.CannotCheck as exc:
        if not had:
            shutil.rmtree(settings.ledger_path, ignore_errors=True)
            shutil.rmtree(follower.dir, ignore_errors=True)
            marker.unlink(missing_ok=True)
            raise RegistryError(f"The first fetch of the ledger from {primary} failed: {exc}") from None
        return (f"The primary at {primary} could not be checked ({exc}); serving what is here, catching up when it "
                "answers.")
    if head is None:
        return f"The primary at {primary} is unreachable; serving what is here, catching up when it answers."
    return f"Following {primary}: the ledger here is at {head}, checked commit by commit."


def _session_key(settings: Settings, primary: str, token: str) -> bool:
    """Whether the primary answered; a refused token is an error that says what to do."""
    try:
        response = httpx.get(f"{primary}/_/replica/session-key", auth=("__token__", token),
                             timeout=timeouts(settings.follow_timeout_seconds))
    except httpx.HTTPError as exc:
        if not Ledger.exists_at(settings.ledger_path):
            why = describe(exc, settings.follow_timeout_seconds)
            raise RegistryError(f"The primary at {primary} is unreachable ({why}): a new replica needs it for its "
                                "first fetch. Start it again once the primary answers.") from None
        return False
    if response.status_code in (401, 403):
        raise RegistryError(f"The primary at {primary} refused the replica token ({response.status_code}: "
                            f"{response.text.strip()[:300]}). Create one there with `registry token create EMAIL "
                            "--replica` and give it in REGISTRY_FOLLOW_TOKEN (or --token).")
    if response.status_code != 200:
        raise RegistryError(f"{primary}/_/replica/session-key answered {response.status_code}: is {primary} a "
                            f"registry (of this version or later)? {response.text.strip()[:200]}")
    key = bytes.fromhex(response.text.strip())
    path = settings.session_public_key_path
    if not path.exists() or path.read_bytes() != key:
        temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        write_file(temp, key, 0o644, exclusive=False, sync=True)
        os.replace(temp, path)
    # (a replica of an earlier release kept the primary's secret cookie key: it has no business here)
    settings.session_key_path.unlink(missing_ok=True)
    return True
