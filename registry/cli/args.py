"""The `registry` command's arguments (argparse): what each command takes, its help, and the
function that runs it (``set_defaults(run=...)``: main calls ``args.run``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import (
    backups,
    importing,
    maintenance,
    packages,
    people,
    preferences,
    retention,
    serve,
    tenancy,
    trust,
    upstream,
    webhooks,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="registry",
                                description="A self-hosted PyPI registry whose whole state lives in git.")
    _global_options(p, None)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("init", help="create an empty ledger in the data directory").set_defaults(run=serve.init)

    s = sub.add_parser("serve", help="run the registry (bootstraps an empty data directory)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--public-url", help="the URL clients use to reach this server, for printed settings")
    s.add_argument("--max-upload-bytes", type=int)
    s.add_argument("--metrics", choices=("loopback", "token", "off"),
                   help="who may read GET /_/metrics: this host or a witness/replica token (loopback, the default), "
                        "only such a token (token: the default with a public URL, behind a proxy), nobody (off)")
    s.add_argument("--access-log", choices=("on", "off", "json"),
                   help="the access log: text lines, none, or JSON lines")
    s.add_argument("--event-log", choices=("off", "on", "json"),
                   help="a line per commit and per refused upload, with the request id: none (the default), "
                        "text lines, or JSON lines")
    s.add_argument("--ready-max-lag-seconds", type=float,
                   help="a replica further behind its primary than this is not ready (GET /_/ready: 503)")
    s.add_argument("--follow", metavar="PRIMARY_URL",
                   help="run as a read replica of the registry at PRIMARY_URL (env REGISTRY_FOLLOW)")
    s.add_argument("--token", help="the replica token, from `registry token create EMAIL --replica` on the primary "
                                   "(default: env REGISTRY_FOLLOW_TOKEN); '-' reads it from stdin")
    s.set_defaults(run=serve.serve)

    ws = sub.add_parser("workspace", help="workspaces").add_subparsers(dest="action", required=True)
    c = ws.add_parser("create")
    c.add_argument("slug")
    c.add_argument("--name")
    c.add_argument("--uuid")
    c.add_argument("--admin", action="append", default=[], metavar="EMAIL",
                   help="a user who administers it (default: --actor, if that is a user)")
    c.set_defaults(run=tenancy.workspace_create)
    ws.add_parser("list").set_defaults(run=tenancy.workspace_list)
    c = ws.add_parser("uuid", help="bind the workspace to its Bitbucket workspace UUID (its pipelines' tokens name it)")
    c.add_argument("slug")
    c.add_argument("uuid")
    c.set_defaults(run=tenancy.workspace_uuid)
    c = ws.add_parser("rename", help="change its display name (its slug is in every client's URL: it stays)")
    c.add_argument("slug")
    c.add_argument("new_slug", nargs="?", help=argparse.SUPPRESS)  # (refused, saying why)
    c.add_argument("--name", required=True)
    c.set_defaults(run=tenancy.workspace_rename)
    c = ws.add_parser("delete", help="delete an empty workspace (its deleted packages' names stay reserved)")
    c.add_argument("slug")
    c.set_defaults(run=tenancy.workspace_delete)
    c = ws.add_parser("remove-member", help="take every grant EMAIL holds in the workspace away, in one commit")
    c.add_argument("slug")
    c.add_argument("email")
    c.set_defaults(run=people.remove_member)
    c = ws.add_parser("quota", help="the bytes its published files take and its quota; BYTES (or none) sets it")
    c.add_argument("slug")
    c.add_argument("bytes", nargs="?", metavar="BYTES|none")
    c.set_defaults(run=retention.workspace_quota)

    pr = sub.add_parser("project", help="projects").add_subparsers(dest="action", required=True)
    c = pr.add_parser("create")
    c.add_argument("workspace")
    c.add_argument("key")
    c.add_argument("--name")
    c.set_defaults(run=tenancy.project_create)
    c = pr.add_parser("list", help="the workspace's projects")
    c.add_argument("workspace")
    c.set_defaults(run=tenancy.project_list)
    c = pr.add_parser("rename", help="change its display name (its key stays)")
    c.add_argument("workspace")
    c.add_argument("key")
    c.add_argument("--name", required=True)
    c.set_defaults(run=tenancy.project_rename)
    c = pr.add_parser("delete", help="delete a project that has no repositories left")
    c.add_argument("workspace")
    c.add_argument("key")
    c.set_defaults(run=tenancy.project_delete)

    rp = sub.add_parser("repo", help="repositories").add_subparsers(dest="action", required=True)
    c = rp.add_parser("create")
    c.add_argument("target", metavar="WS/REPO")
    c.add_argument("--project", required=True, metavar="KEY")
    c.add_argument("--public", action="store_true")
    c.add_argument("--uuid")
    c.add_argument("--create-on-publish", action="store_true",
                   help="a writer (or a pipeline of it) publishing a new name creates the package, linked here")
    c.set_defaults(run=tenancy.repo_create)
    c = rp.add_parser("set", help="a repository's options (workspace or repository admin)")
    c.add_argument("target", metavar="WS/REPO")
    c.add_argument("--create-on-publish", action=argparse.BooleanOptionalAction, required=True,
                   help="whether publishing a name the workspace has no package of creates it, linked here")
    c.set_defaults(run=packages.repo_set)
    c = rp.add_parser("uuid", help="bind the repository to its Bitbucket UUID (its pipelines' tokens name it)")
    c.add_argument("target", metavar="WS/REPO")
    c.add_argument("uuid")
    c.set_defaults(run=tenancy.repo_uuid)
    c = rp.add_parser("list", help="the workspace's repositories")
    c.add_argument("workspace")
    c.set_defaults(run=tenancy.repo_list)
    c = rp.add_parser("rename", help="give it a new slug; the packages linked to it follow, in one commit")
    c.add_argument("target", metavar="WS/REPO")
    c.add_argument("new_slug", metavar="NEWSLUG")
    c.set_defaults(run=tenancy.repo_rename)
    c = rp.add_parser("delete", help="delete a repository that no package is linked to")
    c.add_argument("target", metavar="WS/REPO")
    c.set_defaults(run=tenancy.repo_delete)

    us = sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    c = us.add_parser("create")
    c.add_argument("email")
    c.add_argument("--name")
    c.set_defaults(run=people.user_create)
    us.add_parser("list", help="every user: email, name, state, created").set_defaults(run=people.user_list)
    c = us.add_parser("show", help="a user's grants everywhere, and how many API tokens they hold")
    c.add_argument("email")
    c.set_defaults(run=people.user_show)
    c = us.add_parser("rename", help="change a user's display name")
    c.add_argument("email")
    c.add_argument("--name", required=True)
    c.set_defaults(run=people.user_rename)
    c = us.add_parser("disable", help="refuse all of EMAIL's credentials at once (grants and history stay)")
    c.add_argument("email")
    c.add_argument("--reason", required=True, help="recorded, and shown to whoever uses the account's credentials")
    c.set_defaults(run=people.user_disable)
    c = us.add_parser("enable", help="accept EMAIL's credentials again")
    c.add_argument("email")
    c.set_defaults(run=people.user_enable)
    c = us.add_parser("default-workspace", help="the workspace the root index takes a name several hold from")
    c.add_argument("email")
    c.add_argument("workspace", nargs="?", metavar="WS")
    c.add_argument("--clear", action="store_true", help="no default: such a name is a 409 again")
    c.set_defaults(run=preferences.user_default_workspace)

    tk = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    c = tk.add_parser("create", help="prints only the token on stdout (its id on stderr)")
    c.add_argument("email")
    c.add_argument("--scope", choices=["read", "write"], help="default write")
    c.add_argument("--witness", action="store_true",
                   help="a token that may only fetch the ledger and its checkpoints (for `registry witness`)")
    c.add_argument("--replica", action="store_true",
                   help="a token for a read replica (`registry serve --follow`): the ledger and files, nothing else")
    c.add_argument("--expires-days", type=int)
    c.add_argument("--label", default="")
    c.set_defaults(run=people.token_create)
    c = tk.add_parser("revoke")
    c.add_argument("email")
    c.add_argument("token_id")
    c.set_defaults(run=people.token_revoke)
    c = tk.add_parser("list")
    c.add_argument("email")
    c.set_defaults(run=people.token_list)

    se = sub.add_parser("session", help="web UI sessions").add_subparsers(dest="action", required=True)
    c = se.add_parser("list", help="the sessions of EMAIL that are on")
    c.add_argument("email")
    c.set_defaults(run=people.session_list)
    c = se.add_parser("end", help="sign EMAIL's browser out (one session, or --all)")
    c.add_argument("email")
    c.add_argument("session_id", nargs="?")
    c.add_argument("--all", action="store_true", help="every session of EMAIL")
    c.set_defaults(run=people.session_end)

    c = sub.add_parser("login-link", help="a one-time link that signs EMAIL into the web UI (valid minutes)")
    c.add_argument("email")
    c.add_argument("--minutes", type=int, default=15,
                   help="how long it stays valid (default 15: it is often sent on; the first start's lasts 60, "
                        "to be read in its output)")
    c.add_argument("--url", help="the registry's URL in the link (default: REGISTRY_PUBLIC_URL, else where "
                                 "`registry serve` last served this data directory)")
    c.set_defaults(run=people.login_link)

    for verb in ("grant", "revoke"):
        g = sub.add_parser(verb, help=f"{verb} a role on WS/REPO, on a project (WS --project KEY), "
                                      "or workspace admin (WS)")
        g.add_argument("target", metavar="WS/REPO|WS")
        g.add_argument("email")
        if verb == "grant":
            g.add_argument("role", metavar="read|write|admin")
        g.add_argument("--project", metavar="KEY")
        g.set_defaults(run=people.grant)
    pl = sub.add_parser("pipelines", help="which other repositories' pipelines may read a repository").add_subparsers(
        dest="action", required=True)
    for verb, says in (("grant", "let the pipelines of repository FROM of the same workspace (or --all: every "
                                 "pipeline of the workspace) read WS/REPO"),
                       ("revoke", "stop the pipelines of FROM (or --all: every pipeline's grant) reading WS/REPO")):
        c = pl.add_parser(verb, help=says)
        c.add_argument("target", metavar="WS/REPO")
        c.add_argument("source", nargs="?", metavar="FROM", help="a repository slug of the same workspace (revoke: or "
                                                                 "the {UUID} a list names a hidden one by)")
        c.add_argument("--all", action="store_true", help="every pipeline of the workspace")
        c.set_defaults(run=people.pipelines_grant)
    c = pl.add_parser("list", help="the repositories whose pipelines may read WS/REPO")
    c.add_argument("target", metavar="WS/REPO")
    c.set_defaults(run=people.pipelines_list)
    g = sub.add_parser("grants", help="who holds which role in a workspace (WS), or on one repository (WS/REPO)")
    g.add_argument("target", metavar="WS|WS/REPO")
    g.add_argument("--project", metavar="KEY", help="only the project's grants and its repositories'")
    g.add_argument("--user", metavar="EMAIL", help="only this person's")
    g.set_defaults(run=people.grant_list)

    pk = sub.add_parser("package", help="packages").add_subparsers(dest="action", required=True)
    c = pk.add_parser("create", help="create a package linked to a repository (before anyone publishes it)")
    c.add_argument("workspace")
    c.add_argument("name")
    c.add_argument("--repo", required=True)
    c.set_defaults(run=packages.package_create)
    c = pk.add_parser("delete", help="delete a package and all its versions")
    c.add_argument("workspace")
    c.add_argument("name")
    c.set_defaults(run=packages.package_delete)
    c = pk.add_parser("list")
    c.add_argument("workspace")
    c.set_defaults(run=packages.package_list)
    c = pk.add_parser("policy", help="which pipeline runs may publish it: branch globs and/or deployment environments")
    c.add_argument("workspace")
    c.add_argument("name")
    c.add_argument("--branch", action="append", default=[], metavar="GLOB")
    c.add_argument("--environment", action="append", default=[], metavar="UUID")
    c.add_argument("--clear", action="store_true", help="let any pipeline of the linked repository publish")
    c.set_defaults(run=packages.package_policy)

    rt = sub.add_parser("retention", help="retention policies: which versions maintenance deletes").add_subparsers(
        dest="action", required=True)
    c = rt.add_parser("set", help="add or replace a policy (repository admins; a pattern alone: workspace admins)")
    c.add_argument("workspace")
    c.add_argument("name", help="the policy's name (a slug): deletions name it")
    c.add_argument("--repo", help="the packages linked to this repository")
    c.add_argument("--pattern", metavar="GLOB", help="the packages whose normalised names match (e.g. 'acme-*')")
    c.add_argument("--keep-newest", type=int, metavar="N", help="keep the N newest versions, delete older ones")
    c.add_argument("--prerelease-days", type=int, metavar="D", help="delete pre-releases and dev releases older "
                   "than D days")
    c.add_argument("--protect", action="append", default=[], metavar="ENV",
                   help="never delete a version a pipeline published deploying to ENV (a name or a UUID)")
    c.set_defaults(run=retention.retention_set)
    c = rt.add_parser("show", help="a workspace's policies")
    c.add_argument("workspace")
    c.set_defaults(run=retention.retention_show)
    c = rt.add_parser("remove", help="remove a policy")
    c.add_argument("workspace")
    c.add_argument("name")
    c.set_defaults(run=retention.retention_remove)
    c = rt.add_parser("apply", help="delete what the policies select, one commit per version (--dry-run: list it)")
    c.add_argument("workspace", nargs="?", help="only this workspace's policies (default: every workspace's)")
    c.add_argument("--dry-run", action="store_true", help="list what would go and why; change nothing")
    c.set_defaults(run=retention.retention_apply)

    tr = sub.add_parser("trust", help="add or update an issuer a workspace trusts for pipeline tokens "
                        "(no --issuer: list them; no WS: every workspace's)")
    tr.add_argument("workspace", nargs="?")
    tr.add_argument("--issuer", help="e.g. https://api.bitbucket.org/2.0/workspaces/WS/pipelines-config/identity/oidc")
    tr.add_argument("--audience", action="append", default=[], help="accepted audience (default: the workspace's)")
    tr.add_argument("--jwks-file", type=Path, help="the issuer's public keys (JWKS), for sites that can't reach it")
    tr.add_argument("--remove", action="store_true", help="the same as `registry untrust WS [--issuer URL]`")
    tr.set_defaults(run=trust.trust)
    ut = sub.add_parser("untrust", help="stop trusting one issuer of a workspace (the others stay)")
    ut.add_argument("workspace")
    ut.add_argument("--issuer", help="the issuer to stop trusting (needed when the workspace trusts several)")
    ut.set_defaults(run=trust.untrust)

    _upstream(sub)
    _webhooks(sub)

    vs = sub.add_parser("version", help="versions").add_subparsers(dest="action", required=True)
    c = vs.add_parser("delete")
    c.add_argument("workspace")
    c.add_argument("name")
    c.add_argument("version")
    c.set_defaults(run=packages.version_delete)
    for verb in ("yank", "unyank"):
        c = vs.add_parser(verb)
        c.add_argument("workspace")
        c.add_argument("name")
        c.add_argument("version")
        if verb == "yank":
            c.add_argument("--reason", default="")
        c.set_defaults(run=packages.version_yank)

    im = sub.add_parser("import", help="import distribution files from another index (--index-url) or a directory",
                        description="Each file is checked and committed as an upload would be, one commit per file; "
                                    "files already here are skipped, so re-running resumes.")
    im.add_argument("workspace")
    im.add_argument("directory", nargs="?", type=Path, help="a directory of files (searched recursively)")
    im.add_argument("--repo", required=True, help="repository the packages it creates are linked to")
    im.add_argument("--index-url", metavar="URL", help="another index's Simple API URL (user:password@ allowed)")
    im.add_argument("--project", action="append", default=[], metavar="NAME",
                    help="import only this project (repeatable; default: every project the index lists)")
    im.add_argument("--username", help="for the index (HTTP Basic)")
    im.add_argument("--password", help="for the index; '-' reads it from stdin")
    im.add_argument("--token", help="an API token for the index (sent as __token__); '-' reads it from stdin")
    im.add_argument("--concurrency", type=int, default=4, metavar="N", help="downloads at a time (default 4)")
    im.add_argument("--mtime-is-upload-time", action="store_true",
                    help="keep each file's modification time as its upload time (only where it is: a "
                         "pypiserver package directory, copied with its times)")
    im.set_defaults(run=importing.import_files)

    g = sub.add_parser("gc", help="free the bytes of files no version references any more, and repack the ledger")
    g.add_argument("--grace", type=float, default=0, metavar="SECONDS",
                   help="keep blobs unreferenced for less than this long (default 0: free them now)")
    g.set_defaults(run=maintenance.gc)
    v = sub.add_parser("verify", help="check every record, every referenced blob and the git repository")
    v.add_argument("--quick", action="store_true", help="check blob sizes but don't re-hash their content")
    v.set_defaults(run=maintenance.verify)
    r = sub.add_parser("repair",
                       help="remove what the ledger can't read back (what verify names), in one signed commit",
                       description="Lists every tree entry git can't read back or a checkout can't create, and every "
                                   "record that doesn't decode, sits in the wrong place or breaks today's rules on "
                                   "names (an older release may have written one). Nothing changes without --apply.")
    r.add_argument("paths", nargs="*", metavar="PATH",
                   help="only what is at or under these paths (as repair lists them)")
    r.add_argument("--apply", action="store_true", help="remove them, in one commit signed like every other")
    r.set_defaults(run=maintenance.repair_ledger)

    b = sub.add_parser("backup", help="the commits and files new since the last backup into DEST, with a signed "
                                      "manifest (safe while the server runs)",
                       description="DEST holds a chain of backups: each a git bundle of the commits since the one "
                                   "before, the files they name that DEST lacks, and a manifest listing everything, "
                                   "signed by the ledger's commit key. Signing keys are not included: keep a copy "
                                   "of the data directory's keys/ apart.")
    b.add_argument("dest", metavar="DEST", help="a directory (made if missing), or s3://BUCKET/PREFIX (the AWS_* "
                                                "environment, as for the blob store)")
    b.set_defaults(run=backups.backup)
    r = sub.add_parser("restore", help="a new data directory (--data) from a backup (a directory or s3://)",
                       description="Refused, leaving nothing, unless every bundle and file is whole, the manifest's "
                                   "signature verifies, every file the restored history references is there and "
                                   "`registry verify` finds nothing.")
    r.add_argument("src", metavar="SRC", help="the directory or s3://BUCKET/PREFIX `registry backup` wrote")
    r.add_argument("--at", metavar="COMMIT", help="restore the registry as it stood at this commit (default: the "
                                                  "latest backup's head)")
    r.add_argument("--keys", type=Path, metavar="DIR", help="the copy of the original data directory's keys/")
    r.add_argument("--no-keys", action="store_true", help="restore without signing keys (nothing can be committed "
                                                          "until they are put in its keys/)")
    r.add_argument("--expect-key", metavar="FINGERPRINT",
                   help="the original's commit key (SHA256:..., as `registry key list` prints it): the backup must "
                        "be signed by it, not merely by the key it names itself")
    r.set_defaults(run=backups.restore)

    ky = sub.add_parser("key", help="the ledger's signing keys").add_subparsers(dest="action", required=True)
    c = ky.add_parser("list", help="every key the ledger was signed with, and when each was valid")
    c.add_argument("--allowed-signers", action="store_true", help="print the OpenSSH allowed signers file instead")
    c.set_defaults(run=trust.key_list)
    c = ky.add_parser("rotate", help="new commit and checkpoint keys; the change is signed by the old ones")
    c.set_defaults(run=trust.key_rotate)

    wt = sub.add_parser("witness",
                        help="check that a registry's ledger only ever grew (run it from cron or a pipeline)",
                        description="Fetches the registry's signed checkpoint and its ledger, and checks that the new "
                                    "head descends from the last one seen, that every new commit is signed by the key "
                                    "of its time, and that the checkpoint is signed by a key it knows. Exits 1 on any "
                                    "of those, naming both heads; 2 when it could not check.")
    wt.add_argument("url", help="the registry's base URL, e.g. https://pypi.example.com")
    wt.add_argument("--state", type=Path, default=Path("witness-state.json"), metavar="FILE",
                    help="what it saw last (default ./witness-state.json); its ledger copy is kept in FILE.git")
    wt.add_argument("--key", action="append", default=[], metavar="VERIFIER_KEY",
                    help="the checkpoint key to trust (`registry key list` prints it); default: the ledger's, "
                         "on first run")
    wt.add_argument("--token", help="a witness token (default: env REGISTRY_WITNESS_TOKEN); '-' reads it from stdin")
    wt.add_argument("--username", default="__token__", help="for HTTP Basic (default __token__)")
    wt.set_defaults(run=trust.witness)

    bl = sub.add_parser("blobs", help="where distribution files are kept")
    bls = bl.add_subparsers(dest="action", required=True)
    mg = bls.add_parser("migrate", help="move the data directory's files to a bucket (resumable), then use it",
                        description="Every file is hashed as it is sent and stored only if it is what its name says; "
                                    "files already in the bucket are skipped, so re-running resumes. Endpoint, region "
                                    "and credentials come from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and "
                                    "AWS_SECRET_ACCESS_KEY.")
    mg.add_argument("--to", required=True, metavar="s3://BUCKET[/PREFIX]")
    mg.add_argument("--jobs", type=int, default=4, metavar="N", help="files sent at a time (default 4)")
    mg.add_argument("--delete-local", action="store_true", help="remove each local copy once it is in the bucket")
    mg.set_defaults(run=maintenance.blobs_migrate)

    lg = sub.add_parser("log", help="the audit history, readable by a person")
    lg.add_argument("workspace", nargs="?")
    lg.add_argument("package", nargs="?")
    lg.add_argument("--limit", type=int, default=100, help="at most this many entries (0: all)")
    lg.set_defaults(run=maintenance.log)
    _everywhere(p)
    return p


def _global_options(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--data", default=default, help="data directory (env REGISTRY_DATA; default ./registry-data, "
                   "or $XDG_DATA_HOME/pypi-registry in a git work tree that has no ./registry-data)")
    p.add_argument("--actor", default=default,
                   help="email recorded as the author of changes (default: operator@localhost)")


def _everywhere(p: argparse.ArgumentParser) -> None:
    """The global options after the subcommand too (`registry serve --data DIR`); SUPPRESS keeps a
    subcommand from overwriting one given before it."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _global_options(child, argparse.SUPPRESS)
                _everywhere(child)


def _upstream(sub) -> None:
    up = sub.add_parser("upstream", help="the upstream indexes a workspace serves, and their rules").add_subparsers(
        dest="action", required=True)
    c = up.add_parser("list", help="the indexes in priority order, rules, block list, cooldown, exemptions")
    c.add_argument("workspace")
    c.set_defaults(run=upstream.show)
    c = up.add_parser("add", help="add an index (last in priority, or --before another); replaces one of its name")
    c.add_argument("workspace")
    c.add_argument("name", help="how rules and records name it, e.g. 'public'")
    c.add_argument("url", help="its Simple API root, the URL pip's --index-url takes")
    c.add_argument("--username")
    c.add_argument("--password", help="(visible to other users of this machine: prefer --password-stdin)")
    c.add_argument("--password-stdin", action="store_true", help="read the password (or token) from stdin")
    c.add_argument("--before", metavar="NAME", help="put it before this index in priority")
    c.set_defaults(run=upstream.add)
    c = up.add_parser("remove", help="remove an index (and its credentials)")
    c.add_argument("workspace")
    c.add_argument("name")
    c.set_defaults(run=upstream.remove)
    for kind, says in (("allow", "if any allow rule exists, only names matching one come from upstream"),
                       ("deny", "names matching it never come from upstream")):
        c = up.add_parser(kind, help=says)
        c.add_argument("workspace")
        c.add_argument("pattern", help="a pattern of names, e.g. 'acme-*'")
        c.add_argument("--reason", required=True)
        c.set_defaults(run=upstream.rule, kind=kind)
    c = up.add_parser("unrule", help="remove an allow or deny rule")
    c.add_argument("workspace")
    c.add_argument("pattern")
    c.set_defaults(run=upstream.unrule)
    for name, undo, says in (("block", False, "never offer this upstream release"),
                             ("unblock", True, "offer a blocked release again")):
        c = up.add_parser(name, help=says)
        c.add_argument("workspace")
        c.add_argument("name")
        c.add_argument("version")
        if not undo:
            c.add_argument("--reason")
        c.set_defaults(run=upstream.block, undo=undo, reason=None)
    c = up.add_parser("cooldown", help="offer upstream releases only once this old (0: no cooldown)")
    c.add_argument("workspace")
    c.add_argument("days", type=float)
    c.set_defaults(run=upstream.cooldown)
    for name, kind, undo, says in (
            ("exempt", "exempt", False, "offer a project's young releases too (no cooldown for it)"),
            ("unexempt", "exempt", True, "apply the cooldown to the project again"),
            ("track", "tracks", False, "serve an owned name's upstream releases too (PEP 708), audited"),
            ("untrack", "tracks", True, "serve an owned name from here alone again")):
        c = up.add_parser(name, help=says)
        c.add_argument("workspace")
        c.add_argument("name")
        if not undo:
            c.add_argument("--reason")
        c.set_defaults(run=upstream.exempt, kind=kind, undo=undo, reason=None)
    c = up.add_parser("check", help="the workspace's own names that an upstream index also lists (exit 1 if any)")
    c.add_argument("workspace")
    c.set_defaults(run=upstream.check)


def _webhooks(sub) -> None:
    from ..model import WEBHOOK_EVENTS

    wh = sub.add_parser("webhook", help="endpoints told of a workspace's changes, in commit order").add_subparsers(
        dest="action", required=True)
    c = wh.add_parser("add", help="add a webhook (or replace the one of its name, which keeps its cursor)")
    c.add_argument("workspace")
    c.add_argument("name", help="how it is named, e.g. 'ci'")
    c.add_argument("url", nargs="?", help="https:// (http:// only to this machine); a Bitbucket hook may leave it out")
    c.add_argument("--event", action="append", default=[],
                   help=f"an event to deliver, repeatable: {', '.join(WEBHOOK_EVENTS)}, or '*' for all")
    c.add_argument("--repository", help="only this repository's packages and grants (default: the workspace's)")
    c.add_argument("--signing", default="ed25519", choices=["ed25519", "hmac-sha256"],
                   help="ed25519: the ledger's commit key (default); hmac-sha256: a secret of the hook's own")
    c.add_argument("--secret-stdin", action="store_true", help="read the HMAC secret from stdin (default: made)")
    c.add_argument("--format", default="event", choices=["event", "bitbucket-pipeline"],
                   help="bitbucket-pipeline: run a custom pipeline of a Bitbucket repository on each publish")
    c.add_argument("--bitbucket-repo", metavar="WS/REPO", help="(bitbucket-pipeline) the repository to run it in")
    c.add_argument("--pipeline", help="(bitbucket-pipeline) its name under `custom:` in bitbucket-pipelines.yml")
    c.add_argument("--branch", default="main", help="(bitbucket-pipeline) the branch it runs on (default main)")
    c.add_argument("--token-stdin", action="store_true",
                   help="(bitbucket-pipeline) read the repository access token from stdin")
    c.set_defaults(run=webhooks.add)
    c = wh.add_parser("list", help="the workspace's webhooks, how far each delivered, and whether it is failing")
    c.add_argument("workspace")
    c.set_defaults(run=webhooks.show)
    c = wh.add_parser("remove", help="remove a webhook (and its secret)")
    c.add_argument("workspace")
    c.add_argument("name")
    c.set_defaults(run=webhooks.remove)
    c = wh.add_parser("replay", help="deliver again from a commit (included) on, in order")
    c.add_argument("workspace")
    c.add_argument("name")
    c.add_argument("start", help="a commit id (or an ISO 8601 time: the last commit by then)")
    c.set_defaults(run=webhooks.replay)
    c = wh.add_parser("deliveries", help="a webhook's recent attempts, newest first (exit 1 if the last failed)")
    c.add_argument("workspace")
    c.add_argument("name")
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(run=webhooks.deliveries)
