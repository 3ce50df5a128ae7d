"""`registry webhook`: a workspace's webhooks, what they delivered and what failed."""

from __future__ import annotations

import getpass
import sys

from ..model import Webhook
from ..operations import webhooks as verbs
from ..reads.webhooks import HookState
from ..webhooks import secrets
from .command import CHANNEL, Opened, opened, print_table


def _hook_line(s: HookState) -> list[str]:
    h = s.hook
    where = f"repository {h.repository}" if h.repository else "workspace"
    kind = "bitbucket-pipeline " + h.bitbucket.pipeline if h.bitbucket else h.signing
    health = "failing" if s.failing else "ok" if s.attempts else "-"
    return [h.name, _where(h), ",".join(h.events), where, kind, (s.delivered or "-")[:12], health]


def _where(hook: Webhook) -> str:
    """Its URL as the ledger knows it: scheme, host and port, and the whole URL's fingerprint."""
    return f"{secrets.shown(hook)} {secrets.endpoint_of(hook).fingerprint}"


@opened
def add(cx: Opened) -> int:
    a = cx.args
    secret = None
    if a.secret_stdin or a.token_stdin:
        secret = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Secret: ")
    added = verbs.add_webhook(cx.reg, cx.who, CHANNEL, a.workspace, a.name, a.url, a.event,
                              repository=a.repository, signing=a.signing, secret=secret, fmt=a.format,
                              bitbucket_repository=a.bitbucket_repo, branch=a.branch, pipeline=a.pipeline)
    hook = added.hook
    print(f"webhook {hook.name} of {a.workspace}: {', '.join(hook.events)} -> {_where(hook)}")
    if added.secret:
        print(f"its HMAC secret (shown once; kept in the data directory): {added.secret}")
    return 0


@opened
def show(cx: Opened) -> int:
    hooks = cx.read.webhooks(cx.args.workspace)
    if not hooks:
        print(f"workspace {cx.args.workspace} has no webhook: `registry webhook add {cx.args.workspace} NAME URL "
              "--event publish` adds one")
        return 0
    print_table([["NAME", "URL", "EVENTS", "FOR", "SIGNING", "DELIVERED", "STATE"], *map(_hook_line, hooks)])
    return 0


@opened
def remove(cx: Opened) -> int:
    hook = verbs.remove_webhook(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name)
    print(f"removed webhook {hook.name} of {cx.args.workspace} ({_where(hook)})")
    return 0


@opened
def replay(cx: Opened) -> int:
    start = cx.read.resolve(cx.args.start)
    hook = verbs.replay_webhook(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name, start)
    print(f"webhook {hook.name} of {cx.args.workspace} delivers again from {start} (by the running server)")
    return 0


@opened
def deliveries(cx: Opened) -> int:
    s = cx.read.webhook(cx.args.workspace, cx.args.name, attempts=cx.args.limit)
    print(f"webhook {s.hook.name}: last delivered {s.delivered or 'nothing yet'}")
    if s.attempts:
        print_table([["AT", "EVENT", "TYPE", "STATUS", "TRY", "MS", "ERROR"],
                     *([f"{t.at:%Y-%m-%d %H:%M:%S}", t.event[:12], t.type, str(t.status or "-"), str(t.attempt),
                        str(t.ms), t.error] for t in s.attempts)])
    return 1 if s.failing else 0
