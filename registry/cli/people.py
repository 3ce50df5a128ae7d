"""People and what they may do: `registry user`, `token`, `session`, `login-link`, `grant` and
`revoke`; and which other repositories' pipelines may read a repository (`registry pipelines`)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from .. import model, names, operations
from ..config import url_problem
from ..errors import RegistryError
from ..links import signin_url
from .command import CHANNEL, Opened, opened, print_table, split_repo


@opened
def user_create(cx: Opened) -> int:
    u = operations.create_user(cx.reg, cx.who, CHANNEL, cx.args.email, cx.args.name)
    print(f"created user {u.email}")
    return 0


@opened
def token_create(cx: Opened) -> int:
    args = cx.args
    if args.witness + args.replica + (args.scope is not None) > 1:
        raise RegistryError("Give one of --scope, --witness and --replica: a token has one scope.")
    scope: model.Scope = "witness" if args.witness else "replica" if args.replica else args.scope or "write"
    secret, record = operations.create_token(cx.reg, cx.who, CHANNEL, args.email, scope, args.expires_days, args.label)
    expiry = f", expires {record.expires:%Y-%m-%d}" if record.expires else ""
    print(f"token {record.id} ({record.scope}{expiry}) for {record.user}; it is shown only once:", file=sys.stderr)
    print(secret)
    return 0


@opened
def token_revoke(cx: Opened) -> int:
    record = operations.revoke_token(cx.reg, cx.who, CHANNEL, cx.args.email, cx.args.token_id)
    print(f"revoked token {record.id} of {record.user} ({record.scope}, created {record.created.at:%Y-%m-%d}"
          f"{', ' + repr(record.label) if record.label else ''})")
    return 0


@opened
def token_list(cx: Opened) -> int:
    rows = [("ID", "SCOPE", "CREATED", "STATE", "LABEL")]
    for t in cx.read.tokens(cx.args.email):
        rows.append((t.id, t.scope, f"{t.created.at:%Y-%m-%d}", _token_state(t), t.label))
    print_table(rows)
    return 0


def _token_state(t: model.ApiToken) -> str:
    if t.revoked:
        return f"revoked {t.revoked.at:%Y-%m-%d}"
    if t.expires and t.expires <= datetime.now(UTC):
        return f"expired {t.expires:%Y-%m-%d}"
    return f"expires {t.expires:%Y-%m-%d}" if t.expires else "active"


@opened
def session_list(cx: Opened) -> int:
    rows = [("ID", "SCOPE", "SIGNED IN WITH", "STARTED", "EXPIRES")]
    for s, t in cx.read.sessions(cx.args.email):
        rows.append((s.id, s.scope, f"token {t.id}" if t else f"link {s.link}", f"{s.created.at:%Y-%m-%d %H:%M}",
                     f"{s.expires:%Y-%m-%d %H:%M}"))
    print_table(rows)
    return 0


@opened
def session_end(cx: Opened) -> int:
    args = cx.args
    if bool(args.session_id) == args.all:
        raise RegistryError("Give a session id (`registry session list EMAIL` shows them), or --all.")
    if args.all:
        ended = operations.end_sessions(cx.reg, cx.who, CHANNEL, args.email)
    else:
        ended = [operations.end_session(cx.reg, cx.who, CHANNEL, args.email, args.session_id)]
    print(f"ended {len(ended)} {'session' if len(ended) == 1 else 'sessions'} of {names.email(args.email)}")
    return 0


@opened
def login_link(cx: Opened) -> int:
    args = cx.args
    if not 1 <= args.minutes <= 24 * 60:
        raise RegistryError("--minutes must be between 1 and 1440.")
    if args.url and (problem := url_problem(args.url)):
        raise RegistryError(f"--url {args.url}: {problem}.")
    secret, record = operations.create_signin_link(cx.reg, cx.who, CHANNEL, args.email, timedelta(minutes=args.minutes))
    print(f"sign-in link {record.id} for {record.user}, valid once until {record.expires:%H:%M} UTC:", file=sys.stderr)
    recorded, running = cx.settings.served_at()
    if not args.url and not cx.settings.public_url and not running:
        where = f"the last one, at {recorded}, has stopped" if recorded else "none has been started here"
        print(f"note: no registry is serving {cx.settings.data_path} now ({where}); the link works once one does "
              "(give --url URL, or set REGISTRY_PUBLIC_URL, for where it will be reached).", file=sys.stderr)
    print(signin_url(args.url or cx.settings.link_url(), secret))
    return 0


@opened
def grant(cx: Opened) -> int:
    """`registry grant` and `registry revoke` (a grant of no role)."""
    args = cx.args
    ws, repo = split_repo(args.target) if "/" in args.target else (args.target, None)
    role = names.role(args.role) if args.command == "grant" else None
    operations.grant(cx.reg, cx.who, CHANNEL, ws, args.email, role, repository=repo, project=args.project)
    where = f"{ws}/{repo}" if repo else (f"project {ws}/{args.project.upper()}" if args.project else f"workspace {ws}")
    print(f"granted {role} on {where} to {args.email}" if role else f"revoked {args.email} on {where}")
    return 0


@opened
def user_list(cx: Opened) -> int:
    rows = [("EMAIL", "NAME", "STATE", "CREATED", "GRANTS", "TOKENS")]
    for p in cx.read.people():
        rows.append((p.user.email, p.user.name, _user_state(p.user), f"{p.user.created.at:%Y-%m-%d}",
                     str(len(p.grants)), "" if p.tokens is None else str(p.tokens)))
    print_table(rows)
    return 0


@opened
def user_show(cx: Opened) -> int:
    p = cx.read.person(cx.args.email)
    u = p.user
    print(f"{u.email}  {u.name}")
    print(f"state:    {_user_state(u)}" + (f" by {u.disabled.by}: {u.disabled_reason}" if u.disabled else ""))
    print(f"created:  {u.created.at:%Y-%m-%d %H:%M} UTC by {u.created.by}")
    if p.tokens is not None:
        print(f"tokens:   {p.tokens} that hold (`registry token list {u.email}` lists them)")
    if not p.grants:
        print("grants:   none")
        return 0
    print("grants:")
    print_table([("  WHERE", "ROLE")] + [(f"  {g.shown}", g.role) for g in p.grants])
    return 0


def _user_state(u: model.User) -> str:
    return f"disabled {u.disabled.at:%Y-%m-%d}" if u.disabled else "active"


@opened
def user_rename(cx: Opened) -> int:
    u = operations.rename_user(cx.reg, cx.who, CHANNEL, cx.args.email, cx.args.name)
    print(f"renamed user {u.email}: {u.name}")
    return 0


@opened
def user_disable(cx: Opened) -> int:
    u = operations.disable_user(cx.reg, cx.who, CHANNEL, cx.args.email, cx.args.reason)
    print(f"disabled {u.email}: none of their API tokens, web sessions or sign-in links is accepted now; their grants "
          f"and history stay (`registry user enable {u.email}` undoes it)")
    return 0


@opened
def user_enable(cx: Opened) -> int:
    u = operations.enable_user(cx.reg, cx.who, CHANNEL, cx.args.email)
    print(f"enabled {u.email}")
    return 0


@opened
def grant_list(cx: Opened) -> int:
    args = cx.args
    ws, repo = split_repo(args.target) if "/" in args.target else (args.target, None)
    found = cx.read.grants(ws, project=args.project, repository=repo, user=args.user)
    rows: list[tuple[str, str, str]] = [(g.shown, g.user, g.role) for g in found]
    if args.user is None:  # (and the pipelines that may read: `registry pipelines list`)
        slugs = [repo] if repo else [r.slug for r in cx.read.repositories(ws) if args.project is None
                                     or r.project == names.project_key(args.project)]
        rows += [(f"{ws}/{slug}", _pipelines_of(ws, source), "read")
                 for slug in slugs for source in cx.read.pipeline_readers(ws, slug).sources]
    if not rows:
        print("no grants", file=sys.stderr)
        return 0
    print_table([("WHERE", "WHO", "ROLE")] + rows)
    return 0


def _pipelines_of(ws: str, source: str) -> str:
    if source.startswith("{"):  # (a repository the actor can't read, named by its UUID: revoke it by that)
        return f"pipelines of a repository of {ws} you can't read, {source}"
    return f"every pipeline of {ws}" if source == model.ALL_PIPELINES else f"pipelines of {ws}/{source}"


@opened
def pipelines_grant(cx: Opened) -> int:
    """`registry pipelines grant` and `registry pipelines revoke`."""
    args = cx.args
    ws, repo = split_repo(args.target)
    if bool(args.source) == args.all:
        may = "may" if args.action == "grant" else "may no longer"
        raise RegistryError(f"Name the repository of {ws} whose pipelines {may} read {ws}/{repo} (FROM, a slug: "
                            f"`registry repo list {ws}` lists them), or --all for every pipeline of the workspace.")
    source = model.ALL_PIPELINES if args.all else args.source
    if args.action == "grant":
        operations.grant_pipelines(cx.reg, cx.who, CHANNEL, ws, repo, source)
        print(f"{_pipelines_of(ws, source)} may now read {ws}/{repo}")
    else:
        operations.revoke_pipelines(cx.reg, cx.who, CHANNEL, ws, repo, source)
        print(f"{_pipelines_of(ws, source)} may no longer read {ws}/{repo} (unless through another grant)")
    return 0


@opened
def pipelines_list(cx: Opened) -> int:
    ws, repo = split_repo(cx.args.target)
    found = cx.read.pipeline_readers(ws, repo).sources
    if not found:
        print(f"only the pipelines of {ws}/{repo} itself read it", file=sys.stderr)
        return 0
    for source in found:
        print(_pipelines_of(ws, source))
    return 0


@opened
def remove_member(cx: Opened) -> int:
    removed = operations.remove_member(cx.reg, cx.who, CHANNEL, cx.args.slug, cx.args.email)
    print(f"removed {names.email(cx.args.email)} from workspace {cx.args.slug}: {', '.join(g.shown for g in removed)}")
    return 0
