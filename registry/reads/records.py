"""Records by what names them, on one snapshot: the lookups every read and every verb makes (a
package, its versions, a token, a sign-in link, a web session). Plain functions of a `Snapshot`;
each a few lookups by path, whatever the registry's size, but a workspace's list of packages."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import BinaryIO

from .. import dists, layout, model, names
from ..datadir import Registry
from ..errors import Forbidden, Invalid, NotFound, RegistryError
from ..identity import TOKEN_PREFIX, token_hash
from ..layout import version_key
from ..ledger import Snapshot
from ..model import ApiToken, DistFile, Package, SignInLink, User, Version, WebSession

log = logging.getLogger("registry.reads")


def get_package(snap: Snapshot, ws: str, name: str) -> Package | None:
    """A package by its normalized name, or None. Sees everything: callers decide who may see it."""
    return snap.get(layout.package(ws, name), Package)


def list_packages(snap: Snapshot, ws: str) -> list[Package]:
    """Every package of a workspace, by name."""
    root = layout.packages_dir(ws)
    found = []
    for shard in snap.names(root):
        for name in snap.names(f"{root}/{shard}"):
            package = snap.get(f"{root}/{shard}/{name}/package.json", Package)
            if package is not None:
                found.append(package)
    return sorted(found, key=lambda p: p.name)


def versions(snap: Snapshot, ws: str, name: str) -> list[Version]:
    """Every version of a package, oldest release first (PEP 440 order). A lookup per version."""
    return sorted(snap.records(layout.versions_dir(ws, name), Version), key=lambda v: model.release_key(v.version))


def get_version(snap: Snapshot, ws: str, name: str, version: str) -> Version | None:
    """A version of a package (any spelling PEP 440 normalizes to the same key), or None."""
    return snap.get(layout.version(ws, name, version_key(version)), Version)


def kept_core_metadata(reg: Registry, f: DistFile | model.UpstreamFile, limit: int | None = None) -> bytes | None:
    """The copy of a file's core metadata this machine keeps, if it is whole (and at most ``limit``
    bytes: one small read is cheaper on the caller's thread than a hop to another); None otherwise,
    for `core_metadata` to find or make it."""
    cached = reg.blobs.local_path(f.metadata_sha256) if f.metadata_sha256 is not None else None
    if cached is None:
        return None
    try:
        with open(cached, "rb") as kept:
            data = kept.read() if limit is None else kept.read(limit + 1)
    except FileNotFoundError:  # (collected meanwhile)
        return None
    if (limit is not None and len(data) > limit) or hashlib.sha256(data).hexdigest() != f.metadata_sha256:
        return None
    return data


def core_metadata(reg: Registry, f: DistFile | model.UpstreamFile) -> bytes:
    """A file's core metadata (PEP 658), as recorded (by hash) at upload, or as the upstream index
    declared it. The blob store keeps it as a cache, filled on first use and never fsynced, since it
    can always be extracted again from the file: a copy that is missing or doesn't hash as recorded
    (a crash tore it) is rebuilt."""
    if f.metadata_sha256 is None:
        raise NotFound(f"{f.filename} has no core metadata file: its index declared none (PEP 658).")
    kept = kept_core_metadata(reg, f)
    if kept is not None:
        return kept
    if reg.blobs.local_path(f.metadata_sha256) is not None:  # (a copy a crash tore: made again below)
        reg.blobs.delete(f.metadata_sha256)
    source: Path | BinaryIO | None = reg.blobs.local_path(f.sha256)
    if source is None and reg.blobs.remote:  # (read by ranged GETs: the archive's index, then METADATA)
        try:
            source = reg.blobs.open(f.sha256)
        except FileNotFoundError:
            pass
    if source is None:  # (damage: recorded for /_/health, and a 503 that says what to do)
        reg.missing.add(f.sha256, f.filename)
        raise reg.blobs.missing(f.sha256, repr(f.filename))
    try:
        data = dists.inspect(source, f.filename, recorded=True).metadata
    finally:
        if not isinstance(source, Path):
            source.close()
    if hashlib.sha256(data).hexdigest() != f.metadata_sha256:
        raise RegistryError(f"The core metadata of {f.filename!r} no longer matches what was recorded at upload; "
                            "the operator should run `registry verify`.", status=500)
    try:
        reg.blobs.put_cache(data)
    except OSError as exc:  # (a full disk: the answer doesn't need the cache)
        log.warning("core metadata of %s not cached: %s", f.filename, exc)
    return data


_SESSION_ID = re.compile(r"^[0-9a-f]{32}\Z")


def link_hash(secret: str) -> str:
    """What the ledger keeps of a sign-in link's secret: its SHA-256, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def find_signin_link(snap: Snapshot, secret: str) -> SignInLink | None:
    """The sign-in link whose secret this is, used or not (check_signin_link says if it may be)."""
    return snap.get(layout.signin_link(link_hash(secret.strip())), SignInLink)


def check_signin_link(record: SignInLink | None) -> SignInLink:
    """The link, if it may still be used; otherwise a refusal that says what to do."""
    again = "ask the registry's operator for a new one (`registry login-link EMAIL`)"
    if record is None:
        raise NotFound(f"This sign-in link does not exist: check that it was copied whole, or {again}.")
    if record.used is not None:
        raise Forbidden(f"This sign-in link was used at {record.used.at:%Y-%m-%d %H:%M} UTC; a link works once: "
                        f"{again}.")
    if record.expires <= model.now():
        raise Forbidden(f"This sign-in link expired at {record.expires:%Y-%m-%d %H:%M} UTC: {again}.")
    return record


def sessions_of(snap: Snapshot, email: str, *, ended: bool = False) -> list[WebSession]:
    """``email``'s session records not ended (``ended``: those too), oldest first: one directory,
    theirs. (An expired one, or one whose token went, is over too: `live_session` says.)"""
    found = snap.records(layout.sessions_dir(email), WebSession)
    return sorted((s for s in found if ended or s.ended is None), key=lambda s: s.created.at)


def live_session(snap: Snapshot, email: str, session_id: str) -> tuple[WebSession, ApiToken | None] | None:
    """The session and the API token it was signed in with (None for a link's), if it is still on: not
    ended, not expired, and that token still holds (not revoked, not expired, its person's). A few
    lookups by path, whatever the registry's size."""
    if not _SESSION_ID.match(session_id):
        return None
    record = snap.get(layout.session(email, session_id), WebSession)
    now = model.now()
    if record is None or record.user != email or record.expires <= now or record.ended is not None:
        return None
    if record.token is None:
        return record, None
    token = snap.get(layout.token(record.token), ApiToken)
    return (record, token) if token is not None and holds(token, email, now) else None


def holds(token: ApiToken, email: str, now) -> bool:
    """Whether a person may be signed in with this token: theirs, not revoked, not expired, not
    a pipeline's, a witness's or a replica's."""
    return (token.user == email and token.revoked is None and (token.expires is None or token.expires > now)
            and token.repository is None and token.scope in ("read", "write"))


def find_token(snap: Snapshot, token_id: str) -> tuple[str, ApiToken] | None:
    """A token by its id (or a prefix of it), or by the secret itself (a leaked token is revoked
    with what leaked). Never echoes what it was given: it may be a secret."""
    given = token_id.strip()
    if given.startswith(TOKEN_PREFIX):
        path = layout.token(token_hash(given))
        record = snap.get(path, ApiToken)
        return (path, record) if record is not None else None
    token_id = given.lower()
    if len(token_id) < 8 or len(token_id) > 64 or not all(c in "0123456789abcdef" for c in token_id):
        raise Invalid("Invalid token id: use the id printed when the token was created (`registry token list "
                      "EMAIL` shows them), or the token itself.")
    shard = layout.token_shard(token_id)
    for name in snap.names(shard):
        if name.startswith(token_id):
            path = f"{shard}/{name}"
            found = snap.get(path, ApiToken)
            return (path, found) if found is not None else None
    return None


def list_tokens(snap: Snapshot, email: str) -> list[ApiToken]:
    """A user's API tokens, oldest first, revoked ones included; NotFound for no such user."""
    email = names.email(email)
    if snap.get(layout.user(email), User) is None:
        raise NotFound(f"There is no user {email}.")
    return sorted((t for t in snap.records("tokens", ApiToken) if t.user == email), key=lambda t: t.created.at)


def owns(snap: Snapshot, ws: str, name: str) -> bool:
    """Whether the workspace owns the name: it holds the package, or held it once (its deleted-files
    record stays). Such a name never comes from upstream (unless tracked). Sees everything."""
    return snap.exists(layout.package(ws, name)) or snap.exists(layout.deleted_files(ws, name))


def upstream_policy(snap: Snapshot, ws: str) -> model.UpstreamPolicy | None:
    return snap.get(layout.upstream(ws), model.UpstreamPolicy)


def upstream_files(snap: Snapshot, ws: str, name: str) -> dict[str, model.UpstreamFile]:
    """The files of a project fetched from upstream, by filename."""
    return {f.filename: f for f in snap.records(layout.upstream_files_dir(ws, name), model.UpstreamFile)}
