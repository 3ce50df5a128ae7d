"""The `registry` command: parse, call an operation, print. No logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.claims import default_audience

from .. import identity, maintenance, model, operations, repair
from ..audit import PUBLISHER_TRAILERS, Action, T, action
from ..config import Settings, url_problem
from ..datadir import create_ledger
from ..errors import NotFound, RegistryError
from ..ledger import Ledger
from ..links import signin_url
from ..reads import Reader
from ..trust import checkpoints as checkpoint
from ..trust import keys as signing
from ..trust import sshsig
from .args import parser as _parser

CHANNEL = "cli"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # (argparse gives an optional positional its empty match before the options that follow it:
    # `import WS --repo REPO DIR` leaves DIR over)
    if args.command == "import" and args.directory is None and len(extra) == 1 and not extra[0].startswith("-"):
        args.directory, extra = Path(extra[0]), []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    settings = Settings.load(data=args.data)
    try:
        return _run(args, settings)
    except RegistryError as exc:
        print(f"registry: {exc.message}", file=sys.stderr)
        return 1
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "init":
        create_ledger(settings)
        print(f"created an empty ledger at {settings.ledger_path}, signed with keys in {settings.keys_path}")
        return 0
    if args.command == "witness":
        from ..trust.witness import main as witness

        return witness(args)
    if args.command == "serve":
        from ..server import serve

        token = sys.stdin.readline().strip() if args.token == "-" else args.token
        overrides = dict(host=args.host, port=args.port, workers=args.workers, public_url=args.public_url,
                         max_upload_bytes=args.max_upload_bytes, follow=args.follow, follow_token=token)
        return serve(Settings.load(data=args.data, **overrides))

    if not Ledger.exists_at(settings.ledger_path):
        where = "REGISTRY_DATA" if args.data is None and os.environ.get("REGISTRY_DATA") else (
            "--data" if args.data else "the default, ./registry-data")
        raise RegistryError(
            f"No registry at {settings.data_path} ({where}; looked for {settings.ledger_path}). Run this where you "
            "started `registry serve`, or point at its data directory with --data DIR or REGISTRY_DATA=DIR.")
    followed = settings.replica_of_path
    if args.command in ("gc", "blobs") and followed.exists():
        raise RegistryError(f"This data directory is a read replica of {followed.read_text().strip()}: run `registry "
                            f"{args.command}` on the primary; a replica deletes and moves nothing itself.")
    if args.command == "blobs":  # (before the registry is opened: its store is what moves)
        return _migrate(settings, args)
    reg = operations.Registry.open(settings)
    who = _actor(reg, args.actor)
    read = Reader(reg, who)
    cmd, action = args.command, getattr(args, "action", None)

    if (cmd, action) == ("workspace", "create"):
        ws = operations.create_workspace(reg, who, CHANNEL, args.slug, args.name, args.uuid)
        print(f"created workspace {ws.slug} {ws.uuid}")
    elif (cmd, action) == ("workspace", "list"):
        for ws in read.workspaces():
            print(f"{ws.slug}\t{ws.uuid}\t{ws.name}")
    elif (cmd, action) == ("project", "create"):
        pr = operations.create_project(reg, who, CHANNEL, args.workspace, args.key, args.name)
        print(f"created project {args.workspace}/{pr.key}")
    elif (cmd, action) == ("repo", "create"):
        ws, repo = _split_repo(args.target)
        r = operations.create_repository(reg, who, CHANNEL, ws, repo, args.project, args.public, args.uuid)
        print(f"created repository {ws}/{r.slug} {r.uuid} ({'public' if r.public else 'private'})")
    elif (cmd, action) == ("user", "create"):
        u = operations.create_user(reg, who, CHANNEL, args.email, args.name)
        print(f"created user {u.email}")
    elif (cmd, action) == ("token", "create"):
        if args.witness + args.replica + (args.scope is not None) > 1:
            raise RegistryError("Give one of --scope, --witness and --replica: a token has one scope.")
        scope = "witness" if args.witness else "replica" if args.replica else args.scope or "write"
        secret, record = operations.create_token(reg, who, CHANNEL, args.email, scope, args.expires_days, args.label)
        expiry = f", expires {record.expires:%Y-%m-%d}" if record.expires else ""
        print(f"token {record.id} ({record.scope}{expiry}) for {record.user}; it is shown only once:", file=sys.stderr)
        print(secret)
    elif cmd == "login-link":
        if not 1 <= args.minutes <= 24 * 60:
            raise RegistryError("--minutes must be between 1 and 1440.")
        if args.url and (problem := url_problem(args.url)):
            raise RegistryError(f"--url {args.url}: {problem}.")
        secret, record = operations.create_signin_link(reg, who, CHANNEL, args.email, timedelta(minutes=args.minutes))
        print(f"sign-in link {record.id} for {record.user}, valid once until {record.expires:%H:%M} UTC:", file=sys.stderr)
        print(signin_url(args.url or settings.link_url(), secret))
    elif (cmd, action) == ("token", "revoke"):
        record = operations.revoke_token(reg, who, CHANNEL, args.email, args.token_id)
        print(f"revoked token {record.id} of {record.user} ({record.scope}, created {record.created.at:%Y-%m-%d}"
              f"{', ' + repr(record.label) if record.label else ''})")
    elif (cmd, action) == ("token", "list"):
        rows = [("ID", "SCOPE", "CREATED", "STATE", "LABEL")]
        for t in read.tokens(args.email):
            rows.append((t.id, t.scope, f"{t.created.at:%Y-%m-%d}", _token_state(t), t.label))
        _print_table(rows)
    elif (cmd, action) == ("session", "list"):
        rows = [("ID", "SCOPE", "SIGNED IN WITH", "STARTED", "EXPIRES")]
        for s, t in read.sessions(args.email):
            rows.append((s.id, s.scope, f"token {t.id}" if t else f"link {s.link}", f"{s.created.at:%Y-%m-%d %H:%M}",
                         f"{s.expires:%Y-%m-%d %H:%M}"))
        _print_table(rows)
    elif (cmd, action) == ("session", "end"):
        if bool(args.session_id) == args.all:
            raise RegistryError("Give a session id (`registry session list EMAIL` shows them), or --all.")
        if args.all:
            ended = operations.end_sessions(reg, who, CHANNEL, args.email)
        else:
            ended = [operations.end_session(reg, who, CHANNEL, args.email, args.session_id)]
        print(f"ended {len(ended)} {'session' if len(ended) == 1 else 'sessions'} of {model.email(args.email)}")
    elif cmd in ("grant", "revoke"):
        ws, repo = _split_repo(args.target) if "/" in args.target else (args.target, None)
        role = model.role(args.role) if cmd == "grant" else None
        operations.grant(reg, who, CHANNEL, ws, args.email, role, repository=repo, project=args.project)
        where = f"{ws}/{repo}" if repo else (f"project {ws}/{args.project.upper()}" if args.project else f"workspace {ws}")
        print(f"granted {role} on {where} to {args.email}" if role else f"revoked {args.email} on {where}")
    elif (cmd, action) == ("package", "create"):
        pkg = operations.create_package(reg, who, CHANNEL, args.workspace, args.name, args.repo)
        print(f"created package {pkg.display_name} ({pkg.name}) in {pkg.workspace}, linked to {pkg.workspace}/{pkg.repository}")
    elif (cmd, action) == ("package", "delete"):
        pkg, _ = operations.delete_package(reg, who, CHANNEL, args.workspace, args.name)
        print(f"deleted package {pkg.name} from {pkg.workspace}; the running server frees its files once the grace "
              "period has passed (REGISTRY_GC_GRACE_SECONDS, default an hour), `registry gc` frees them now")
    elif (cmd, action) == ("package", "list"):
        _workspace(read, args.workspace)
        for pkg in read.all_packages(args.workspace):
            print(f"{pkg.name}\t{pkg.display_name}\t{pkg.workspace}/{pkg.repository}")
    elif (cmd, action) == ("package", "policy"):
        if args.clear and (args.branch or args.environment):
            raise RegistryError("Use --clear alone, or give --branch / --environment.")
        if not (args.clear or args.branch or args.environment):
            pkg = read.package(args.workspace, args.name).package
            print(f"publish policy of {pkg.name}: {_policy_text(pkg.publish_policy)}")
            return 0
        pkg = operations.set_publish_policy(reg, who, CHANNEL, args.workspace, args.name, args.branch, args.environment)
        print(f"publish policy of {pkg.name}: {_policy_text(pkg.publish_policy)}")
    elif cmd == "trust":
        _trust(reg, who, args)
    elif (cmd, action) == ("version", "delete"):
        v, _ = operations.delete_version(reg, who, CHANNEL, args.workspace, args.name, args.version)
        print(f"deleted {v.package} {v.version} ({len(v.files)} files)")
    elif (cmd, action) in (("version", "yank"), ("version", "unyank")):
        v = operations.yank(reg, who, CHANNEL, args.workspace, args.name, args.version,
                            getattr(args, "reason", ""), undo=action == "unyank")
        print(f"{'yanked' if v.yanked else 'un-yanked'} {v.package} {v.version}")
    elif (cmd, action) == ("key", "list"):
        _print_keys(read, args.allowed_signers)
    elif (cmd, action) == ("key", "rotate"):
        operations.rotate_keys(reg, who, CHANNEL)
        print("rotated the signing keys; the old ones signed the change and are deleted. Now current:")
        _print_keys(Reader(reg, who), False, current_only=True)
    elif cmd == "gc":
        done = maintenance.collect(reg, grace_seconds=args.grace)
        print(f"freed {done.freed} blobs ({done.bytes} bytes); {done.kept_in_grace} kept for their grace period; "
              f"ledger repacked")
    elif cmd == "verify":
        report = maintenance.verify(reg, hash_blobs=not args.quick)
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        for note in report.notes:
            print(f"note: {note}")
        print(f"checked {report.checked_records} records, {report.checked_blobs} blobs and the signatures of "
              f"{report.checked_commits} commits: "
              f"{'OK' if report.ok else f'{len(report.problems)} problems'}")
        return 0 if report.ok else 1
    elif cmd == "repair":
        return _repair(reg, who, args)
    elif cmd == "log":
        _print_log(read, args.workspace, args.package, args.limit)
    elif cmd == "import":
        return _import(reg, who, args)
    return 0


def _import(reg: operations.Registry, who: identity.Principal, args: argparse.Namespace) -> int:
    from .. import importer

    if (args.directory is None) == (args.index_url is None):
        raise RegistryError("Give a directory or --index-url URL to import from (one of them).")
    if args.concurrency < 1:
        raise RegistryError("--concurrency must be at least 1.")
    if args.directory is not None:
        if args.project or args.username or args.password or args.token:
            raise RegistryError("--project, --username, --password and --token are for --index-url only.")
        source = importer.DirectorySource(args.directory, mtime_is_upload_time=args.mtime_is_upload_time)
    else:
        if args.token and (args.username or args.password):
            raise RegistryError("Give --token, or --username and --password, not both.")
        if bool(args.username) != bool(args.password):
            raise RegistryError(f"{'--username needs --password' if args.username else '--password needs --username'}"
                                " ('-' reads the password from stdin).")
        secret = {k: sys.stdin.readline().strip() if v == "-" else v
                  for k, v in (("password", args.password), ("token", args.token))}
        source = importer.IndexSource(args.index_url, args.project, username=args.username, concurrency=args.concurrency,
                             **secret)
    display = _ImportDisplay(sys.stdout.isatty())
    try:
        with display:
            summary = asyncio.run(importer.run(reg, who, args.workspace, model.repository_slug(args.repo), source,
                                               concurrency=args.concurrency, on_start=display.start,
                                               on_file=display.file))
    except KeyboardInterrupt:
        print("registry: interrupted; what was imported stays: run the same command again to resume", file=sys.stderr)
        return 130
    rate = summary.total / summary.elapsed if summary.elapsed else 0
    c = summary.counts
    print(f"imported {c['imported']}, skipped {c['skipped']}, refused {c['refused']}, conflicts {c['conflict']} "
          f"({summary.total} files from {summary.source} in {summary.elapsed:.1f} s: {rate:.0f} files/s, "
          f"{summary.bytes / 2**20 / max(summary.elapsed, 1e-9):.1f} MiB/s)")
    if summary.ignored:
        print(f"ignored {summary.ignored} files that are not distributions")
    for o in summary.problems:
        print(f"{'refused' if o.status == 'refused' else 'conflict':<9} {o.filename}: {o.reason}")
    return 0 if summary.ok else 1


class _ImportDisplay:
    """A progress bar on a terminal; one line per file otherwise (a log, a pipe)."""

    def __init__(self, tty: bool) -> None:
        self.progress = None
        if tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )

            self.progress = Progress(  # (fits 80 columns)
                BarColumn(bar_width=12), MofNCompleteColumn(), TextColumn("{task.fields[rate]} files/s"),
                TextColumn("[green]{task.fields[imported]} new[/], {task.fields[skipped]} skipped, "
                           "[red]{task.fields[refused]} refused, {task.fields[conflict]} conflicts[/]"))
            self.task = None
            self.counts = dict(imported=0, skipped=0, refused=0, conflict=0)

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task("import", total=total, rate="-", **self.counts)
        else:
            print(f"{total} files to import", flush=True)

    def file(self, outcome) -> None:
        if self.progress is None:
            detail = f" ({outcome.reason})" if outcome.status in ("imported", "skipped") else f": {outcome.reason}"
            print(f"{outcome.status:<9} {outcome.filename}{detail}", flush=True)
            return
        self.counts[outcome.status] += 1
        elapsed = self.progress.tasks[self.task].elapsed or 0
        done = sum(self.counts.values())
        rate = f"{done / elapsed:.0f}" if elapsed > 0.5 else "-"
        self.progress.update(self.task, advance=1, rate=rate, **self.counts)


def _repair(reg: operations.Registry, who: identity.Principal, args: argparse.Namespace) -> int:
    done = repair.repair(reg, who, only=args.paths, apply=args.apply)
    if not done.found:
        print("nothing to repair: every entry and record of the ledger reads back")
        return 0
    for d in done.found:
        print(f"{'removed' if args.apply else 'would remove'} {d.shown}: {d.reason}")
    if args.apply:
        print(f"removed {len(done.found)} in commit {done.commit.id} (signed; `registry log` shows it)")
    else:
        again = shlex.join(["registry", "repair", "--apply", *args.paths])
        print(f"{len(done.found)} to remove: run `{again}` to remove them in one signed commit")
    return 0


def _workspace(read: Reader, ws: str) -> model.Workspace:
    try:
        return read.workspace(ws)
    except NotFound:
        known = ", ".join(w.slug for w in read.workspaces()) or "none yet"
        raise RegistryError(f"Workspace {ws!r} does not exist (workspaces: {known}).") from None


def _token_state(t: model.ApiToken) -> str:
    if t.revoked:
        return f"revoked {t.revoked.at:%Y-%m-%d}"
    if t.expires and t.expires <= datetime.now(UTC):
        return f"expired {t.expires:%Y-%m-%d}"
    return f"expires {t.expires:%Y-%m-%d}" if t.expires else "active"


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _policy_text(policy: model.PublishPolicy | None) -> str:
    if policy is None:
        return "any pipeline of the linked repository may publish"
    parts = []
    if policy.branches:
        parts.append(f"branches {', '.join(policy.branches)}")
    if policy.environments:
        parts.append(f"deployment environments {', '.join(policy.environments)}")
    return "pipelines may publish from " + " and ".join(parts)


def _trust(reg: operations.Registry, who: identity.Principal, args: argparse.Namespace) -> None:
    if args.remove and (args.issuer or args.audience or args.jwks_file):
        raise RegistryError("Use --remove alone: registry trust WS --remove.")
    if (args.audience or args.jwks_file) and not args.issuer:
        raise RegistryError("--audience and --jwks-file need --issuer (a trust is set whole): "
                            "registry trust WS --issuer URL [--audience AUD]... [--jwks-file PATH].")
    if args.workspace is None:
        if args.issuer or args.remove:
            raise RegistryError("Name the workspace: registry trust WS --issuer URL.")
        found = [(ws, record) for ws, record in Reader(reg, who).trusts() if record]
        for ws, record in found:
            print(f"{ws}\t{record.issuer}\t{', '.join(record.audiences) or '(default audience)'}"
                  f"{chr(9) + 'inline JWKS' if record.jwks else ''}")
        if not found:
            print("no workspace trusts a pipeline issuer yet: registry trust WS --issuer URL adds one")
        return
    if args.remove:
        operations.remove_trust(reg, who, CHANNEL, args.workspace)
        print(f"workspace {args.workspace} no longer trusts any pipeline issuer")
        return
    if not args.issuer:
        read = Reader(reg, who)
        found = read.trusts(args.workspace)
        if not found:
            print(f"workspace {args.workspace} trusts no pipeline issuer")
        else:
            record, ws = found[0][1], read.workspace(args.workspace)
            print(f"issuer:    {record.issuer}\nworkspace: {ws.uuid}\n"
                  f"audiences: {', '.join(record.audiences) or default_audience(ws.uuid) + ' (default)'}\n"
                  f"keys:      {'inline JWKS (' + str(len(record.jwks['keys'])) + ' keys)' if record.jwks else 'fetched from the issuer'}")
        return
    jwks = None
    if args.jwks_file:
        try:
            jwks = json.loads(args.jwks_file.read_text())
        except (OSError, ValueError) as exc:
            raise RegistryError(f"Can't read a JWKS from {args.jwks_file}: {exc}") from None
    record = operations.set_trust(reg, who, CHANNEL, args.workspace, args.issuer, args.audience, jwks)
    print(f"workspace {args.workspace} now trusts pipeline tokens from {record.issuer}")


def _print_keys(read: Reader, allowed_signers: bool, current_only: bool = False) -> None:
    record = read.signing_keys()
    if record is None:
        raise RegistryError("This ledger has no signing keys yet (it is read-only here, or from an older release).")
    if allowed_signers:
        print(signing.allowed_signers(record), end="")
        return
    for k in record.keys:
        if current_only and k.valid_until is not None:
            continue
        until = f"{k.valid_until:%Y-%m-%d %H:%M:%S}Z" if k.valid_until else "now (current)"
        print(f"{k.purpose:<10} {k.fingerprint}  {k.valid_from:%Y-%m-%d %H:%M:%S}Z .. {until}")
        if k.purpose == "checkpoint":
            print(f"           verifier key: {checkpoint.verifier_key(k.note_name, sshsig.parse_public_line(k.public_key))}")


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    done = maintenance.migrate_blobs(settings, args.to, jobs=args.jobs, delete_local=args.delete_local,
                                     progress=sys.stderr.isatty())
    for problem in done.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print(f"sent {done.sent} files ({done.bytes} bytes), {done.skipped} already there, {done.cached} cached core "
          f"metadata kept locally" + (f", {done.deleted} local copies removed" if args.delete_local else ""))
    if done.problems:
        print(f"{len(done.problems)} files were not sent: the registry still uses {settings.blobs_path}", file=sys.stderr)
        return 1
    print(f"the registry now uses {args.to} (recorded in {settings.data_path}); restart the server if it runs, "
          "after running this once more with it stopped")
    return 0


def _actor(reg: operations.Registry, email: str | None) -> identity.Principal:
    if not email:
        return identity.operator()
    user = Reader(reg, identity.operator()).user(email)
    return identity.operator(model.email(email), user.name if user else None)


def _split_repo(target: str) -> tuple[str, str]:
    ws, sep, repo = target.partition("/")
    if not sep or not ws or not repo or "/" in repo:
        raise RegistryError(f"Expected WS/REPO, got {target!r}.")
    return ws, repo


SHOWN_TRAILERS = (*PUBLISHER_TRAILERS, T.PIPELINE_RUN_URL, T.SHA256, T.UPLOAD_TIME, T.IMPORT_SOURCE)


def _print_log(read: Reader, ws: str | None, package: str | None, limit: int) -> None:
    if ws is not None:
        _workspace(read, ws)
    entries = read.log(ws, package, limit=limit)
    for at, e in enumerate(entries):
        facts = ", ".join(f"{k.lower()} {v}" for k, v in e.trailers if k in SHOWN_TRAILERS)
        print(f"{e.id[:12]}  {e.time:%Y-%m-%d %H:%M:%S}Z  {e.author_email}")
        print(f"    {e.summary}")
        if facts:
            print(f"    {facts}")
        if package and action(e) is Action.CREATE_PACKAGE and at + 1 < len(entries):
            # (a name deleted and made again: what follows is another package's, as readers are shown)
            print(f"---- above: the package created by {e.id[:12]}; below: an earlier package of the same name, "
                  "deleted since ----")


if __name__ == "__main__":
    raise SystemExit(main())
