"""Keeping a registry: `registry gc`, `verify`, `repair`, `blobs migrate` and `log`."""

from __future__ import annotations

import argparse
import shlex
import sys

from .. import maintenance, repair
from ..audit import PUBLISHER_TRAILERS, T, creates_package
from ..config import Settings
from .command import Opened, known_workspace, opened, primary_only


@primary_only
@opened
def gc(cx: Opened) -> int:
    done = maintenance.collect(cx.reg, grace_seconds=cx.args.grace)
    print(f"freed {done.freed} blobs ({done.bytes} bytes); {done.kept_in_grace} kept for their grace period; "
          f"ledger repacked")
    return 0


@opened
def verify(cx: Opened) -> int:
    report = maintenance.verify(cx.reg, hash_blobs=not cx.args.quick)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"checked {report.checked_records} records, {report.checked_blobs} blobs and the signatures of "
          f"{report.checked_commits} commits: "
          f"{'OK' if report.ok else f'{len(report.problems)} problems'}")
    return 0 if report.ok else 1


@opened
def repair_ledger(cx: Opened) -> int:
    args = cx.args
    done = repair.repair(cx.reg, cx.who, only=args.paths, apply=args.apply)
    if not done.found:
        print("nothing to repair: every entry and record of the ledger reads back")
        return 0
    for d in done.found:
        print(f"{'removed' if args.apply else 'would remove'} {d.shown}: {d.reason}")
    if done.commit is not None:
        print(f"removed {len(done.found)} in commit {done.commit.id} (signed; `registry log` shows it)")
    else:
        again = shlex.join(["registry", "repair", "--apply", *args.paths])
        print(f"{len(done.found)} to remove: run `{again}` to remove them in one signed commit")
    return 0


@primary_only
def blobs_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """(Before the registry is opened: its store is what moves.)"""
    done = maintenance.migrate_blobs(settings, args.to, jobs=args.jobs, delete_local=args.delete_local,
                                     progress=sys.stderr.isatty())
    for problem in done.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print(f"sent {done.sent} files ({done.bytes} bytes), {done.skipped} already there, {done.cached} cached core "
          f"metadata kept locally" + (f", {done.deleted} local copies removed" if args.delete_local else ""))
    if done.problems:
        print(f"{len(done.problems)} files were not sent: the registry still uses {settings.blobs_path}",
              file=sys.stderr)
        return 1
    print(f"the registry now uses {args.to} (recorded in {settings.data_path}); restart the server if it runs, "
          "after running this once more with it stopped")
    return 0


SHOWN_TRAILERS = (*PUBLISHER_TRAILERS, T.PIPELINE_RUN_URL, T.SHA256, T.UPLOAD_TIME, T.IMPORT_SOURCE)


@opened
def log(cx: Opened) -> int:
    ws, package = cx.args.workspace, cx.args.package
    if ws is not None:
        known_workspace(cx.read, ws)
    entries = cx.read.log(ws, package, limit=cx.args.limit)
    for at, e in enumerate(entries):
        facts = ", ".join(f"{k.lower()} {v}" for k, v in e.trailers if k in SHOWN_TRAILERS)
        print(f"{e.id[:12]}  {e.time:%Y-%m-%d %H:%M:%S}Z  {e.author_email}")
        print(f"    {e.summary}")
        if facts:
            print(f"    {facts}")
        if package and creates_package(e) and at + 1 < len(entries):
            # (a name deleted and made again: what follows is another package's, as readers are shown)
            print(f"---- above: the package created by {e.id[:12]}; below: an earlier package of the same name, "
                  "deleted since ----")
    return 0
