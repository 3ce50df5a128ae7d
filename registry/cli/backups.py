"""`registry backup` and `registry restore`."""

from __future__ import annotations

import argparse

from ..backups.restore import expected_key
from ..backups.restore import restore as restore_into
from ..backups.take import backup as take
from ..config import Settings
from ..errors import RegistryError
from .command import Opened, opened


@opened
def backup(cx: Opened) -> int:
    dest = cx.args.dest  # (a directory, or s3://BUCKET/PREFIX)
    try:
        done = take(cx.reg, dest)
    except OSError as exc:  # (a DEST that can't be made or written: its name, what the system said)
        raise RegistryError(f"Can't back up into {dest}: {exc.strerror or exc}. Give a directory you can "
                            "write.") from None
    if done.number is None:
        print(f"nothing new since the last backup in {dest} (commit {done.head})")
        return 0
    since = f"since {done.previous[:12]}" if done.previous else "the whole history"
    print(f"backup {done.number:06d} in {dest}: {done.commits} commits ({since}) up to {done.head}, "
          f"{done.blobs} new files ({done.bytes} bytes), bundle {done.bundle_bytes} bytes; manifest signed")
    print(f"signing keys are not in a backup: keep a copy of {cx.settings.keys_path} apart from it "
          "(`registry restore --keys` takes it)")
    return 0


def restore(args: argparse.Namespace, settings: Settings) -> int:
    """(No registry to open: it makes one.)"""
    if args.keys is None and not args.no_keys:
        raise RegistryError("Give --keys DIR, the copy of the original data directory's keys/ (without them the "
                            "restored registry can't sign a commit), or --no-keys to restore one that only serves "
                            "until they are put in its keys/.")
    expect = expected_key(args.expect_key) if args.expect_key is not None else None  # (refused before anything)
    done = restore_into(args.src, settings, at=args.at, keys=args.keys, expect_key=expect)
    print(f"restored {settings.data_path} from backup {done.number:06d}: head {done.head}, {done.blobs} files "
          f"({done.bytes} bytes), every one whole; `registry verify` finds nothing")
    if expect is not None:
        print(f"signed by commit key {done.key}, the key expected")
    else:
        print(f"signed by commit key {done.key}, the one the backup's own ledger names: compare it with `registry "
              "key list` on the original (or give --expect-key next time)")
    if not done.keys:
        print(f"no signing keys: copy the original's keys/ into {settings.keys_path} before anything is committed",
              flush=True)
    return 0
