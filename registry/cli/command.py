"""What a command is: a function of its parsed arguments and the settings, returning the exit code,
registered with its parser (`args.py`: ``set_defaults(run=...)``). Most work on a registry that is
there already: `opened` finds it (or says where it looked), opens it and names who acts."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import identity, model, names
from ..config import Settings, default_data
from ..datadir import Registry
from ..errors import NotFound, RegistryError
from ..ledger import Ledger
from ..reads import Reader

CHANNEL: model.Channel = "cli"  # how the changes a command makes reached the registry (their trailers say)

Command = Callable[[argparse.Namespace, Settings], int]


@dataclass(frozen=True)
class Opened:
    """A command's view of an existing registry: its arguments, the data directory opened, who
    acts (the operator, or ``--actor``) and what they may read."""

    args: argparse.Namespace
    settings: Settings
    reg: Registry
    who: identity.Principal
    read: Reader


def opened(run: Callable[[Opened], int]) -> Command:
    """A command on the registry in the data directory, which must hold one already."""

    @functools.wraps(run)
    def command(args: argparse.Namespace, settings: Settings) -> int:
        require_ledger(args, settings)
        reg = Registry.open(settings)
        who = _actor(reg, args.actor)
        return run(Opened(args, settings, reg, who, Reader(reg, who)))

    return command


def primary_only(run: Command) -> Command:
    """A command that deletes or moves what a read replica only mirrors: refused on one, before
    anything is opened."""

    @functools.wraps(run)
    def command(args: argparse.Namespace, settings: Settings) -> int:
        require_ledger(args, settings)
        followed = settings.replica_of_path
        if followed.exists():
            raise RegistryError(f"This data directory is a read replica of {followed.read_text().strip()}: run "
                                f"`registry {args.command}` on the primary; a replica deletes and moves nothing "
                                "itself.")
        return run(args, settings)

    return command


def require_ledger(args: argparse.Namespace, settings: Settings) -> None:
    if not Ledger.exists_at(settings.ledger_path):
        where = "REGISTRY_DATA" if args.data is None and os.environ.get("REGISTRY_DATA") else (
            "--data" if args.data else default_data()[1])
        raise RegistryError(
            f"No registry at {settings.data_path} ({where}; looked for {settings.ledger_path}). Run this where you "
            "started `registry serve`, or point at its data directory with --data DIR or REGISTRY_DATA=DIR.")


def _actor(reg: Registry, email: str | None) -> identity.Principal:
    if not email:
        return identity.operator()
    user = Reader(reg, identity.operator()).user(email)
    return identity.operator(names.email(email), user.name if user else None)


# --- shared by the commands ----------------------------------------------------------------------


def known_workspace(read: Reader, ws: str) -> model.Workspace:
    """The workspace, or a refusal that lists the ones there are."""
    try:
        return read.workspace(ws)
    except NotFound:
        known = ", ".join(w.slug for w in read.workspaces()) or "none yet"
        raise RegistryError(f"Workspace {ws!r} does not exist (workspaces: {known}).") from None


def split_repo(target: str) -> tuple[str, str]:
    ws, sep, repo = target.partition("/")
    if not sep or not ws or not repo or "/" in repo:
        raise RegistryError(f"Expected WS/REPO, got {target!r}.")
    return ws, repo


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
