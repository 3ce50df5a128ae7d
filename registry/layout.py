"""Where each record lives in the ledger tree, and which record a path holds: the ledger's path
grammar, both ways. Sharding lives here and nowhere else.

Every commit rewrites each tree on the path of what it changes, so a directory that can grow into
thousands of entries is split into 256 shards named by the first two hex digits of the SHA-256 of
the entry's name: a publish then rewrites a handful of small trees whatever the registry's size.
"""

from __future__ import annotations

import hashlib

from packaging.utils import canonicalize_version

from . import bounds, model

LEDGER_INFO = "ledger.json"
SIGNING_KEYS = "signing-keys.json"
README = "README.md"


def shard(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def user(email: str) -> str:
    return f"users/{shard(email)}/{email}.json"


def token(sha256: str) -> str:
    return f"tokens/{sha256[:2]}/{sha256}.json"


def token_shard(token_id: str) -> str:
    return f"tokens/{token_id[:2]}"


def signin_link(sha256: str) -> str:
    return f"sign-in-links/{sha256[:2]}/{sha256}.json"


def sessions_dir(email: str) -> str:
    """A user's web sessions, in one directory: listed and pruned without looking at anyone else's."""
    return f"sessions/{shard(email)}/{email}"


def session(email: str, session_id: str) -> str:
    return f"{sessions_dir(email)}/{session_id}.json"


def workspace(ws: str) -> str:
    return f"workspaces/{ws}/workspace.json"


def trust(ws: str) -> str:
    return f"workspaces/{ws}/pipelines-trust.json"


def project(ws: str, key: str) -> str:
    return f"workspaces/{ws}/projects/{key}.json"


def repository(ws: str, slug: str) -> str:
    return f"workspaces/{ws}/repositories/{slug}.json"


def repositories_dir(ws: str) -> str:
    return f"workspaces/{ws}/repositories"


def packages_dir(ws: str, type_: str = "pypi") -> str:
    return f"workspaces/{ws}/packages/{type_}"


def package_dir(ws: str, name: str, type_: str = "pypi") -> str:
    return f"workspaces/{ws}/packages/{type_}/{shard(name)}/{name}"


def package(ws: str, name: str, type_: str = "pypi") -> str:
    return f"{package_dir(ws, name, type_)}/package.json"


def versions_dir(ws: str, name: str, type_: str = "pypi") -> str:
    return f"{package_dir(ws, name, type_)}/versions"


def version(ws: str, name: str, version_: str, type_: str = "pypi") -> str:
    return f"{versions_dir(ws, name, type_)}/{shard(version_)}/{version_}.json"


def deleted_files(ws: str, name: str, type_: str = "pypi") -> str:
    # Outside the package directory: deleting a package must not forget its spent filenames.
    return f"workspaces/{ws}/deleted-files/{type_}/{shard(name)}/{name}.json"


# --- the other direction: which record lives at a path ---------------------------------------------


def record_type(path: str) -> type[model.Record] | None:
    """Which record type lives at a ledger path (None: not a record, e.g. the README)."""
    parts = path.split("/")
    if path == LEDGER_INFO:
        return model.LedgerInfo
    if path == SIGNING_KEYS:
        return model.SigningKeys
    if parts[0] == "users" and len(parts) == 3:
        return model.User
    if parts[0] == "tokens" and len(parts) == 3:
        return model.ApiToken
    if parts[0] == "sign-in-links" and len(parts) == 3:
        return model.SignInLink
    if parts[0] == "sessions" and len(parts) == 4:
        return model.WebSession
    if parts[0] != "workspaces" or len(parts) < 3:
        return None
    rest = parts[2:]
    if rest == ["workspace.json"]:
        return model.Workspace
    if rest == ["pipelines-trust.json"]:
        return model.PipelinesTrust
    if rest[0] == "projects" and len(rest) == 2:
        return model.Project
    if rest[0] == "repositories" and len(rest) == 2:
        return model.Repository
    if rest[0] == "deleted-files" and len(rest) == 4:
        return model.DeletedFiles
    if rest[0] == "packages" and len(rest) == 5 and rest[4] == "package.json":
        return model.Package
    if rest[0] == "packages" and len(rest) == 7 and rest[4] == "versions":
        return model.Version
    return None


def expected_path(path: str, record: model.Record) -> str | None:
    """Where the record says it should be: catches a record moved or hand-edited into the wrong place."""
    ws = path.split("/")[1] if path.startswith("workspaces/") else None
    match record:
        case model.User():
            return user(record.email)
        case model.ApiToken():
            return token(record.sha256)
        case model.SignInLink():
            return signin_link(record.sha256)
        case model.WebSession():
            return session(record.user, record.id)
        case model.Workspace():
            return workspace(record.slug)
        case model.Project():
            return project(ws, record.key)
        case model.Repository():
            return repository(ws, record.slug)
        case model.Package():
            return package(record.workspace, record.name)
        case model.Version():
            return version(ws, record.package, canonicalize_version(record.version))
        case model.DeletedFiles():
            return deleted_files(ws, record.package)
    return path


LEDGER_README = """\
# Registry ledger

This git repository *is* the registry's state. Every change is one commit: its author is who acted
(a person, or a Bitbucket Pipelines step), its committer is the registry, its first line says what
happened, and its trailers carry the facts (`Actor`, `Channel`, `Token-Id`, `Workspace`, `Package`,
`Version`, `File`, `Sha256`, `Pipeline-Uuid`, `Import-Source`, ...). `git log` is the audit trail.

Every record is one JSON file with sorted keys:

    ledger.json                                            format version of this ledger
    signing-keys.json                                      the public keys commits and checkpoints are signed with
    users/<xx>/<email>.json                                a user
    tokens/<xx>/<sha256>.json                              an API token: only the SHA-256 of its secret
    sign-in-links/<xx>/<sha256>.json                       a one-time web sign-in link: only its SHA-256
    sessions/<xx>/<email>/<id>.json                        a web session (deleted when it ends): no secret
    workspaces/<ws>/workspace.json                         a workspace and its admins
    workspaces/<ws>/pipelines-trust.json                   the Bitbucket Pipelines OIDC issuer it trusts
    workspaces/<ws>/projects/<KEY>.json                    a project and its grants
    workspaces/<ws>/repositories/<slug>.json               a repository, public or private, and its grants
    workspaces/<ws>/packages/pypi/<xx>/<name>/package.json             a package and the repository it is linked to
    workspaces/<ws>/packages/pypi/<xx>/<name>/versions/<yy>/<v>.json   a version and its files (sizes, hashes, publisher)
    workspaces/<ws>/deleted-files/pypi/<xx>/<name>.json    filenames once published and since deleted

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
"""


def version_key(version: str) -> str:
    """Releases are identified like on the public index: 1.0 and 1.0.0 are the same release. Bounded
    before it is parsed (packaging turns digit runs into ints, and Python refuses huge ones)."""
    return canonicalize_version(bounds.one_line(version, bounds.VERSION, "Versions", empty=True))
