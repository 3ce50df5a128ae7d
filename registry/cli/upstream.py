"""`registry upstream`: the upstream indexes a workspace serves through its own index, their name
rules, block list, cooldown and exemptions, and which of the workspace's own names upstream also
lists (a squatter, or a fork to look at)."""

from __future__ import annotations

import asyncio
import getpass
import sys

from ..errors import RegistryError
from ..model import UpstreamPolicy
from ..operations import upstream as verbs
from ..reads.records import list_packages
from ..upstream.fetching import Upstreams, also_upstream
from .command import CHANNEL, Opened, opened


def _show(ws: str, p: UpstreamPolicy | None) -> None:
    if p is None or not (p.upstreams or p.allow or p.deny or p.blocked or p.exempt or p.tracks or p.cooldown_seconds):
        print(f"workspace {ws} has no upstream index: `registry upstream add {ws} NAME URL` adds one")
        return
    print(f"upstream indexes of {ws}, in priority order:")
    for i, u in enumerate(p.upstreams, 1):
        print(f"  {i}. {u.name}\t{u.url}{chr(9) + '(credentials set)' if u.credentials else ''}")
    days = p.cooldown_seconds / 86400
    print(f"cooldown: {f'{days:g} days' if p.cooldown_seconds else 'none'}")
    for kind in ("allow", "deny"):
        for rule in getattr(p, kind):
            print(f"{kind}\t{rule.pattern}\t{rule.reason}\t({rule.added.by}, {rule.added.at:%Y-%m-%d})")
    for b in p.blocked:
        print(f"blocked\t{b.name} {b.version}\t{b.reason}\t({b.added.by}, {b.added.at:%Y-%m-%d})")
    for kind in ("exempt", "tracks"):
        for e in getattr(p, kind):
            print(f"{kind}\t{e.name}\t{e.reason}\t({e.granted.by}, {e.granted.at:%Y-%m-%d})")


@opened
def show(cx: Opened) -> int:
    cx.read.workspace(cx.args.workspace)
    _show(cx.args.workspace, cx.read.upstream_policy(cx.args.workspace))
    return 0


@opened
def add(cx: Opened) -> int:
    a = cx.args
    password = a.password
    if a.password_stdin:
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("Password: ")
    if password and not a.username:
        a.username = "__token__"  # (a token alone: as twine and the public index take one)
    policy = verbs.add_upstream(cx.reg, cx.who, CHANNEL, a.workspace, a.name, a.url, username=a.username,
                                password=password, before=a.before)
    _show(a.workspace, policy)
    return 0


@opened
def remove(cx: Opened) -> int:
    _show(cx.args.workspace, verbs.remove_upstream(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.name))
    return 0


@opened
def rule(cx: Opened) -> int:
    a = cx.args
    _show(a.workspace, verbs.add_rule(cx.reg, cx.who, CHANNEL, a.workspace, a.kind, a.pattern, a.reason))
    return 0


@opened
def unrule(cx: Opened) -> int:
    _show(cx.args.workspace, verbs.remove_rule(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.pattern))
    return 0


@opened
def block(cx: Opened) -> int:
    a = cx.args
    if a.undo:
        policy = verbs.unblock(cx.reg, cx.who, CHANNEL, a.workspace, a.name, a.version)
    else:
        if a.reason is None:
            raise RegistryError("Give a reason: registry upstream block WS NAME VERSION --reason TEXT.")
        policy = verbs.block(cx.reg, cx.who, CHANNEL, a.workspace, a.name, a.version, a.reason)
    _show(a.workspace, policy)
    return 0


@opened
def cooldown(cx: Opened) -> int:
    _show(cx.args.workspace, verbs.set_cooldown(cx.reg, cx.who, CHANNEL, cx.args.workspace, cx.args.days))
    return 0


@opened
def exempt(cx: Opened) -> int:
    a = cx.args
    if not a.undo and a.reason is None:
        raise RegistryError(f"Give a reason: registry upstream {a.kind} WS NAME --reason TEXT.")
    _show(a.workspace, verbs.exempt(cx.reg, cx.who, CHANNEL, a.workspace, a.kind, a.name, a.reason or "",
                                    undo=a.undo))
    return 0


@opened
def check(cx: Opened) -> int:
    """The workspace's own names that an upstream index also lists; exit 1 if there is any."""
    ws = cx.args.workspace
    cx.read.workspace(ws)
    policy = cx.read.upstream_policy(ws)
    if policy is None or not policy.upstreams:
        raise RegistryError(f"Workspace {ws} has no upstream index to check against.")
    names = [p.name for p in list_packages(cx.read.snapshot, ws)]

    async def run() -> dict[str, str | None]:
        ups = Upstreams(cx.settings)
        try:
            return await also_upstream(ups, ws, policy.upstreams, names)
        finally:
            await ups.aclose()

    found = {n: u for n, u in asyncio.run(run()).items() if u}
    for name, where in sorted(found.items()):
        print(f"{name}\t{'an upstream failed to answer' if where == '?' else f'also published upstream ({where})'}")
    if not found:
        print(f"none of the {len(names)} packages of {ws} is listed by its upstream indexes")
    return 1 if found else 0
