"""Where each record lives in the ledger tree, and which record a path holds: the ledger's path
grammar, declared once (``PLACES``, as devpi's keyfs declares its keys) and read both ways. The
builders, ``record_type``, ``expected_path`` and the tables in the ledger's README and ours are all
derived from it. Sharding lives here and nowhere else.

Every commit rewrites each tree on the path of what it changes, so a directory that can grow into
thousands of entries is split into 256 shards named by the first two hex digits of the SHA-256 of
the entry's name: a publish then rewrites a handful of small trees whatever the registry's size.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from packaging.utils import canonicalize_version

from . import bounds, model

R = TypeVar("R", bound=model.Record)


def shard(name: str) -> str:
    """The shard of a name: the first two hex digits of its SHA-256."""
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def _head(digest: str) -> str:
    """The shard of what already is a SHA-256 (a token's, a sign-in link's): its first two digits."""
    return digest[:2]


def _sha256(text: str) -> str:
    """A whole SHA-256, naming a record by what can't be a path segment (an issuer's URL)."""
    return hashlib.sha256(text.encode()).hexdigest()


# How a pattern names a segment: `{field}`, or `{shard(field)}` (a function of SHARDINGS).
_SLOT = re.compile(r"\{(?:(?P<fn>\w+)\((?P<arg>\w+)\)|(?P<field>\w+))\}")
SHARDINGS: dict[str, Callable[[str], str]] = {"shard": shard, "head": _head, "sha256": _sha256}
# Fields a record doesn't give take these (the package type: pypi is the only one). The one other
# field a record may leave out is its workspace: a workspace's records are where they are.
DEFAULTS: dict[str, str] = {"type": "pypi"}


class _Template:
    """A pattern (or the directory part of one) compiled to a format string and its shards."""

    __slots__ = ("text", "shards")

    def __init__(self, pattern: str):
        shards: list[tuple[str, Callable[[str], str], str]] = []

        def slot(m: re.Match[str]) -> str:
            if m["field"]:
                return "{" + m["field"] + "}"
            shards.append((f"shard_{len(shards)}", SHARDINGS[m["fn"]], m["arg"]))
            return "{" + shards[-1][0] + "}"

        self.text = _SLOT.sub(slot, pattern)
        self.shards = tuple(shards)

    def fill(self, values: dict[str, str]) -> str:
        """The path with these values (a fresh dict: the shards are added to it)."""
        for name, sharding, field in self.shards:
            values[name] = sharding(values[field])
        return self.text.format_map(values)


class Place(Generic[R]):
    """One kind of path in the ledger: its pattern, the record it holds, what that is (one line of
    the tables), and the fields a record of it names itself by (``key``)."""

    __slots__ = ("pattern", "record", "says", "key", "shape", "_levels", "_context")

    def __init__(self, pattern: str, record: type[R], says: str, key: Callable[[R], dict[str, str]]):
        self.pattern, self.record, self.says, self.key = pattern, record, says, key
        segments = pattern.split("/")
        # Recognised by its shape: its depth and its literal segments. What fills a slot is checked
        # by expected_path, which builds the path again from the record.
        self.shape = tuple(None if "{" in s else s for s in segments)
        self._levels = [_Template("/".join(segments[:n])) for n in range(1, len(segments) + 1)]
        self._context = [(i, m["field"]) for i, s in enumerate(segments)
                         if (m := _SLOT.fullmatch(s)) and m["field"] and m["field"] not in DEFAULTS]

    def path(self, **fields: str) -> str:
        return self._levels[-1].fill(fields)

    def dir(self, up: int, **fields: str) -> str:
        """The directory ``up`` levels above the path (only the fields it names are needed)."""
        return self._levels[-1 - up].fill(fields)

    def holds(self, parts: Sequence[str]) -> bool:
        return len(parts) == len(self.shape) and all(
            s is None or s == p for s, p in zip(self.shape, parts, strict=True))

    def context(self, parts: Sequence[str]) -> dict[str, str]:
        """The fields the path itself says (whole segments, e.g. its workspace)."""
        return {field: parts[i] for i, field in self._context} if self.holds(parts) else {}

    def shown(self) -> str:
        """The pattern as the tables show it: `<field>`, `<xx>` (then `<yy>`) for a shard."""
        shards = iter("xyz")

        def slot(m: re.Match[str]) -> str:
            if m["fn"] == "sha256":
                return f"<sha256({m['arg']})>"
            if m["fn"]:
                return f"<{next(shards) * 2}>"
            return DEFAULTS.get(m["field"]) or f"<{m['field']}>"

        return _SLOT.sub(slot, self.pattern)


# --- the grammar ---------------------------------------------------------------------------------

_LEDGER_INFO = Place("ledger.json", model.LedgerInfo, "format version of this ledger", lambda r: {})
_SIGNING_KEYS = Place("signing-keys.json", model.SigningKeys,
                      "the public keys commits and checkpoints are signed with", lambda r: {})
_USER = Place("users/{shard(email)}/{email}.json", model.User, "a user", lambda r: {"email": r.email})
_TOKEN = Place("tokens/{head(sha256)}/{sha256}.json", model.ApiToken,
               "an API token: only the SHA-256 of its secret", lambda r: {"sha256": r.sha256})
_SIGNIN_LINK = Place("sign-in-links/{head(sha256)}/{sha256}.json", model.SignInLink,
                     "a one-time web sign-in link: only its SHA-256", lambda r: {"sha256": r.sha256})
_SESSION = Place("sessions/{shard(email)}/{email}/{id}.json", model.WebSession,
                 "a web session (no secret): marked when it ends, pruned later",
                 lambda r: {"email": r.user, "id": r.id})
_WORKSPACE = Place("workspaces/{ws}/workspace.json", model.Workspace, "a workspace and its admins",
                   lambda r: {"ws": r.slug})
# (one trust per workspace, as older releases wrote it: still read, never written again)
_TRUST = Place("workspaces/{ws}/pipelines-trust.json", model.PipelinesTrust,
               "the one issuer a workspace trusted, as older releases kept it", lambda r: {})
_TRUSTED_ISSUER = Place("workspaces/{ws}/trusts/{sha256(issuer)}.json", model.TrustedIssuer,
                        "a Bitbucket Pipelines OIDC issuer it trusts, and for which audiences",
                        lambda r: {"issuer": r.issuer.rstrip("/")})
_PROJECT = Place("workspaces/{ws}/projects/{KEY}.json", model.Project, "a project and its grants",
                 lambda r: {"KEY": r.key})
_REPOSITORY = Place("workspaces/{ws}/repositories/{slug}.json", model.Repository,
                    "a repository, public or private, and its grants", lambda r: {"slug": r.slug})
_RETIRED_REPOSITORY = Place("workspaces/{ws}/retired-repositories/{slug}.json", model.RetiredRepository,
                            "a repository slug once used (renamed or deleted): never another's",
                            lambda r: {"slug": r.slug})
_PACKAGE = Place("workspaces/{ws}/packages/{type}/{shard(name)}/{name}/package.json", model.Package,
                 "a package and the repository it is linked to",
                 lambda r: {"ws": r.workspace, "type": r.type, "name": r.name})
_VERSION = Place("workspaces/{ws}/packages/{type}/{shard(name)}/{name}/versions/{shard(v)}/{v}.json", model.Version,
                 "a version and its files (sizes, hashes, publisher)",
                 lambda r: {"name": r.package, "v": canonicalize_version(r.version)})
# Outside the package directory: deleting a package must not forget its spent filenames.
_DELETED_FILES = Place("workspaces/{ws}/deleted-files/{type}/{shard(name)}/{name}.json", model.DeletedFiles,
                       "filenames once published, since deleted: never reused",
                       lambda r: {"name": r.package})

_UPSTREAM = Place("workspaces/{ws}/upstream.json", model.UpstreamPolicy,
                  "the upstream indexes it serves, their rules, block list and cooldown", lambda r: {})
_UPSTREAM_FILE = Place("workspaces/{ws}/upstream-files/{type}/{shard(name)}/{name}/{filename}.json",
                       model.UpstreamFile, "a file fetched from an upstream index: where from, its hash",
                       lambda r: {"name": r.project, "filename": r.filename})
_USAGE = Place("workspaces/{ws}/usage.json", model.StorageUsage,
                "the bytes its published files take, kept by every publish and deletion", lambda r: {})
_RETENTION = Place("workspaces/{ws}/retention/{name}.json", model.RetentionPolicy,
                   "a retention policy: which versions maintenance deletes, which it never does",
                   lambda r: {"name": r.name})

_WEBHOOK = Place("workspaces/{ws}/webhooks/{name}.json", model.Webhook,
                  "a webhook: its URL, events, signing (its secret and cursor are in the data directory)",
                  lambda r: {"name": r.name})

PLACES: tuple[Place[Any], ...] = (
    _LEDGER_INFO, _SIGNING_KEYS, _USER, _TOKEN, _SIGNIN_LINK, _SESSION, _WORKSPACE, _TRUST, _TRUSTED_ISSUER,
    _PROJECT, _REPOSITORY, _RETIRED_REPOSITORY, _PACKAGE, _VERSION, _DELETED_FILES, _UPSTREAM, _UPSTREAM_FILE,
    _USAGE, _RETENTION, _WEBHOOK,
)
_BY_RECORD: dict[type[model.Record], Place[Any]] = {p.record: p for p in PLACES}
_BY_DEPTH: dict[int, list[Place[Any]]] = {}
for _place in PLACES:
    _BY_DEPTH.setdefault(len(_place.shape), []).append(_place)

LEDGER_INFO = _LEDGER_INFO.path()
SIGNING_KEYS = _SIGNING_KEYS.path()
README = "README.md"  # not a record: what the ledger is, written at its creation (LEDGER_README)


def place(record: type[model.Record]) -> Place[Any]:
    """Where records of this type live."""
    return _BY_RECORD[record]


# --- paths, by what they hold --------------------------------------------------------------------


def user(email: str) -> str:
    return _USER.path(email=email)


def token(sha256: str) -> str:
    return _TOKEN.path(sha256=sha256)


def token_shard(token_id: str) -> str:
    """The directory of the tokens whose id (a prefix of their SHA-256) starts like this one."""
    return _TOKEN.dir(1, sha256=token_id)


def signin_link(sha256: str) -> str:
    return _SIGNIN_LINK.path(sha256=sha256)


def sessions_dir(email: str) -> str:
    """A user's web sessions, in one directory: listed and pruned without looking at anyone else's."""
    return _SESSION.dir(1, email=email)


def session(email: str, session_id: str) -> str:
    return _SESSION.path(email=email, id=session_id)


def workspace(ws: str) -> str:
    return _WORKSPACE.path(ws=ws)


def trust(ws: str) -> str:
    """The one trust of a ledger written before a workspace could trust several issuers."""
    return _TRUST.path(ws=ws)


def trusted_issuer(ws: str, issuer: str) -> str:
    """A trusted issuer's record, found by its URL (as the token names it, without a trailing slash)."""
    return _TRUSTED_ISSUER.path(ws=ws, issuer=issuer.rstrip("/"))


def trusts_dir(ws: str) -> str:
    return _TRUSTED_ISSUER.dir(1, ws=ws)


def project(ws: str, key: str) -> str:
    return _PROJECT.path(ws=ws, KEY=key)


def projects_dir(ws: str) -> str:
    return _PROJECT.dir(1, ws=ws, KEY="")


def repository(ws: str, slug: str) -> str:
    return _REPOSITORY.path(ws=ws, slug=slug)


def repositories_dir(ws: str) -> str:
    return _REPOSITORY.dir(1, ws=ws)


def retired_repository(ws: str, slug: str) -> str:
    return _RETIRED_REPOSITORY.path(ws=ws, slug=slug)


def retired_repositories_dir(ws: str) -> str:
    return _RETIRED_REPOSITORY.dir(1, ws=ws)


def packages_dir(ws: str, type_: str = "pypi") -> str:
    return _PACKAGE.dir(3, ws=ws, type=type_)


def package_dir(ws: str, name: str, type_: str = "pypi") -> str:
    return _PACKAGE.dir(1, ws=ws, type=type_, name=name)


def package(ws: str, name: str, type_: str = "pypi") -> str:
    return _PACKAGE.path(ws=ws, type=type_, name=name)


def versions_dir(ws: str, name: str, type_: str = "pypi") -> str:
    return _VERSION.dir(2, ws=ws, type=type_, name=name)


def version(ws: str, name: str, version_: str, type_: str = "pypi") -> str:
    return _VERSION.path(ws=ws, type=type_, name=name, v=version_)


def deleted_files(ws: str, name: str, type_: str = "pypi") -> str:
    return _DELETED_FILES.path(ws=ws, type=type_, name=name)


def deleted_files_dir(ws: str, type_: str = "pypi") -> str:
    """Every deleted-files record of a workspace, in their shards."""
    return _DELETED_FILES.dir(2, ws=ws, type=type_)


def upstream(ws: str) -> str:
    return _UPSTREAM.path(ws=ws)


def upstream_projects_dir(ws: str, type_: str = "pypi") -> str:
    """The projects with files fetched from upstream, in their shards."""
    return _UPSTREAM_FILE.dir(3, ws=ws, type=type_)


def upstream_files_dir(ws: str, name: str, type_: str = "pypi") -> str:
    return _UPSTREAM_FILE.dir(1, ws=ws, type=type_, name=name)


def upstream_file(ws: str, name: str, filename: str, type_: str = "pypi") -> str:
    return _UPSTREAM_FILE.path(ws=ws, type=type_, name=name, filename=filename)


def usage(ws: str) -> str:
    return _USAGE.path(ws=ws)


def retention_policy(ws: str, name: str) -> str:
    return _RETENTION.path(ws=ws, name=name)


def retention_dir(ws: str) -> str:
    return _RETENTION.dir(1, ws=ws)


def webhook(ws: str, name: str) -> str:
    return _WEBHOOK.path(ws=ws, name=name)


def webhooks_dir(ws: str) -> str:
    return _WEBHOOK.dir(1, ws=ws)


# --- the other direction: which record lives at a path ---------------------------------------------


def record_type(path: str) -> type[model.Record] | None:
    """Which record type lives at a ledger path (None: not a record, e.g. the README)."""
    parts = path.split("/")
    return next((p.record for p in _BY_DEPTH.get(len(parts), ()) if p.holds(parts)), None)


def expected_path(path: str, record: model.Record) -> str | None:
    """Where the record says it belongs, from its own key fields and, for the records of a workspace
    that don't name it, the workspace it is in: catches a record moved or hand-edited into the
    wrong place. None: it can't say (such a record at a path of another kind). Raises ValueError
    for a version packaging can't canonicalise."""
    at = _BY_RECORD[type(record)]
    try:
        return at.path(**{**DEFAULTS, **at.context(path.split("/")), **at.key(record)})
    except KeyError:  # (the workspace, which neither the record nor the path says)
        return None


# --- the tables ----------------------------------------------------------------------------------


def table(indent: str = "") -> str:
    """Every place, as the ledger's README and ours show them."""
    shown = [(p.shown(), p.says) for p in PLACES]
    width = max(len(s) for s, _ in shown)
    return "".join(f"{indent}{s:<{width}}  {says}\n" for s, says in shown)


LEDGER_README = """\
# Registry ledger

This git repository *is* the registry's state. Every change is one commit: its author is who acted
(a person, or a Bitbucket Pipelines step), its committer is the registry, its first line says what
happened, and its trailers carry the facts (`Actor`, `Channel`, `Token-Id`, `Workspace`, `Package`,
`Version`, `File`, `Sha256`, `Pipeline-Uuid`, `Import-Source`, ...). `git log` is the audit trail.

Every record is one JSON file with sorted keys:

<table>
`<xx>` is the first two hex digits of the SHA-256 of the name in the next segment (the email, the
package name or the version): it keeps directories small so that a commit's cost doesn't grow with
the registry. To read one package's history:

    git log -p -- 'workspaces/<ws>/packages/pypi/*/<name>'

Every commit carries an SSH signature (its `gpgsig` header) by the commit key that
`signing-keys.json` names as current in its parent. To check them all with git itself, get the
registry's allowed signers file (`GET /_/ledger/allowed-signers`, or `registry key list
--allowed-signers`) and run:

    git -c gpg.format=ssh -c gpg.ssh.allowedSignersFile=allowed-signers log --show-signature

Distribution files are not in this repository; they live in the blob store, addressed by the
`sha256` recorded here.
""".replace("<table>\n", table("    ") + "\n")


def version_key(version: str) -> str:
    """Releases are identified like on the public index: 1.0 and 1.0.0 are the same release. Bounded
    before it is parsed (packaging turns digit runs into ints, and Python refuses huge ones)."""
    return canonicalize_version(bounds.one_line(version, bounds.VERSION, "Versions", empty=True))
