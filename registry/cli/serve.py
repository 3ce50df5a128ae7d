"""Starting a registry: `registry init` (an empty ledger) and `registry serve`."""

from __future__ import annotations

import argparse
import sys

from ..config import Settings, placement_note
from ..datadir import NEXT_STEPS, create_ledger


def init(args: argparse.Namespace, settings: Settings) -> int:
    """An empty ledger, for a registry built by hand (or before `registry import`): unlike `registry
    serve` on an empty data directory, it bootstraps no admin, workspace or token."""
    created = not settings.data_path.exists()
    create_ledger(settings)
    if created and (note := placement_note(settings.data_path)):
        print(note, file=sys.stderr)
    print(f"created an empty ledger at {settings.ledger_path}, signed with keys in {settings.keys_path}.\n"
          "It has no user, workspace or token (`registry serve` on an empty data directory bootstraps those "
          f"itself; `init` is for building a registry by hand). Next:\n{NEXT_STEPS.format(data=settings.data_path)}")
    return 0


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from ..server import serve  # (granian: only when serving)

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    overrides = dict(host=args.host, port=args.port, workers=args.workers, public_url=args.public_url,
                     max_upload_bytes=args.max_upload_bytes, follow=args.follow, follow_token=token,
                     metrics=args.metrics, access_log=args.access_log, event_log=args.event_log,
                     ready_max_lag_seconds=args.ready_max_lag_seconds)
    return serve(Settings.load(data=args.data, **overrides))
