"""The `registry` command: parse, call an operation, print. No logic of its own.

    args.py         every command's arguments and help, each parser naming its command function
    command.py      what a command is given: the registry opened, who acts (and the refusals before)
    serve.py        init, serve
    tenancy.py      workspace, project, repo
    people.py       user, token, session, login-link, grant, revoke, grants, workspace remove-member
    preferences.py  user default-workspace
    packages.py     package, version
    trust.py        trust, key, witness
    importing.py    import
    maintenance.py  gc, verify, repair, blobs migrate, log
    backups.py      backup, restore
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import Settings
from ..errors import RegistryError
from .args import parser as _parser
from .command import Command


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
    run: Command = args.run  # (args.py: each parser names its command)
    try:
        return run(args, settings)
    except RegistryError as exc:
        print(f"registry: {exc.message}", file=sys.stderr)
        return 1
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 1
