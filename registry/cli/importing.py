"""`registry import`: distribution files from another index or a directory (registry/importer/),
with a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

from .. import names
from ..errors import RegistryError
from .command import Opened, opened

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..importer import Outcome
    from ..importer.core import Source


@opened
def import_files(cx: Opened) -> int:
    from .. import importer  # (httpx: only when importing)

    args = cx.args
    if (args.directory is None) == (args.index_url is None):
        raise RegistryError("Give a directory or --index-url URL to import from (one of them).")
    if args.concurrency < 1:
        raise RegistryError("--concurrency must be at least 1.")
    source: Source
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
        password, token = (sys.stdin.readline().strip() if v == "-" else v for v in (args.password, args.token))
        source = importer.IndexSource(args.index_url, args.project, username=args.username, password=password,
                                      token=token, concurrency=args.concurrency)
    display = _ImportDisplay(sys.stdout.isatty())
    try:
        with display:
            summary = asyncio.run(importer.run(cx.reg, cx.who, args.workspace, names.repository_slug(args.repo), source,
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
    for note in getattr(source, "notes", ()):  # (an index's front page given for its Simple API, say)
        print(f"note: {note}")
    if summary.ignored:
        print(f"ignored {summary.ignored} files that are not distributions")
    for o in summary.problems:
        print(f"{'refused' if o.status == 'refused' else 'conflict':<9} {o.filename}: {o.reason}")
    return 0 if summary.ok else 1


class _ImportDisplay:
    """A progress bar on a terminal; one line per file otherwise (a log, a pipe)."""

    def __init__(self, tty: bool) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.started = 0.0
        self.counts = dict(imported=0, skipped=0, refused=0, conflict=0)
        if tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(  # (fits 80 columns)
                BarColumn(bar_width=12), MofNCompleteColumn(), TextColumn("{task.fields[rate]} files/s"),
                TextColumn("[green]{task.fields[counts][imported]} new[/], {task.fields[counts][skipped]} skipped, "
                           "[red]{task.fields[counts][refused]} refused, {task.fields[counts][conflict]} conflicts[/]"))

    def __enter__(self) -> _ImportDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start(self, total: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task("import", total=total, rate="-", counts=dict(self.counts))
            self.started = time.monotonic()
        else:
            print(f"{total} files to import", flush=True)

    def file(self, outcome: Outcome) -> None:
        if self.progress is None or self.task is None:
            detail = f" ({outcome.reason})" if outcome.status in ("imported", "skipped") else f": {outcome.reason}"
            print(f"{outcome.status:<9} {outcome.filename}{detail}", flush=True)
            return
        self.counts[outcome.status] += 1
        elapsed = time.monotonic() - self.started
        done = sum(self.counts.values())
        rate = f"{done / elapsed:.0f}" if elapsed > 0.5 else "-"
        self.progress.update(self.task, advance=1, rate=rate, counts=dict(self.counts))
