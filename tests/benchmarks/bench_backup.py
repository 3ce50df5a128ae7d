"""Backup and restore benchmark (run by hand): python tests/benchmarks/bench_backup.py [--versions 100000]
[--more 1000]

Measures, on this machine: `registry backup` of a registry of --versions versions (one file each,
1000 bytes, real blobs in the data directory; one publish-like commit per version), its size (the
bundle and the files), `registry restore` of it into a new data directory (every file hashed, verify
run), and the incremental backup after --more versions are published on top (its time, its bundle,
its files). The ledger is filled as bench_ledger.py fills it (fsync off while filling, then a repack).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pygit2  # noqa: E402
from bench_ledger import PACKAGES, WS, setup  # noqa: E402

from registry.backups import manifest as mf  # noqa: E402
from registry.backups.restore import restore  # noqa: E402
from registry.backups.take import backup  # noqa: E402
from registry.config import Settings  # noqa: E402


def fill(reg, start: int, count: int) -> None:
    """``count`` more versions, each with a real 1000-byte file in the store (fsync off: setup)."""
    from registry import identity, layout, model, operations
    from registry.audit import Action, T, provenance_trailers
    from registry.ledger import Change

    pygit2.settings.enable_fsync_gitdir(False)
    op = identity.operator()
    prov = op.provenance("cli")
    for p in range(min(PACKAGES, count) if start == 0 else 0):
        operations.create_package(reg, op, "cli", WS, f"pkg-{p}", "repo")
    root = reg.blobs.root
    started = time.perf_counter()
    for i in range(start, start + count):
        name, version = f"pkg-{i % PACKAGES}", f"{i // PACKAGES}.{i % 7}.0"
        content = f"version {i}\n".encode().ljust(1000, b".")
        sha = hashlib.sha256(content).hexdigest()
        (root / "sha256" / sha[:2] / sha).write_bytes(content)
        record = model.Version(package=name, version=version, created=prov, files=[model.DistFile(
            filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl", size=len(content), sha256=sha,
            blake2b_256=sha, md5=sha[:32], packagetype="bdist_wheel", python_version="py3",
            metadata_version="2.1", metadata_sha256=sha, uploaded=prov)])
        reg.ledger.transact(lambda snap, record=record, name=name, sha=sha: Change(
            summary=f"publish {name} {record.version}", author=op.author, time=prov.at,
            writes={layout.version(WS, name, layout.version_key(record.version)): record},
            trailers=(*provenance_trailers(prov), (T.ACTION, Action.PUBLISH), (T.WORKSPACE, WS),
                      (T.PACKAGE, name), (T.VERSION, record.version), (T.SHA256, sha))))
        if i % 5000 == 4999:
            reg.ledger.maybe_repack()
            print(f"  filled {i + 1} versions ({(i + 1 - start) / (time.perf_counter() - started):.0f}/s)", flush=True)
    reg.ledger.repack(full=True)
    reg.catch_up_history()
    pygit2.settings.enable_fsync_gitdir(True)


def size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--more", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        data, dest = Path(tmp) / "data", Path(tmp) / "backup"
        reg = setup(data)
        t = time.perf_counter()
        fill(reg, 0, args.versions)
        print(f"filled {args.versions} versions in {time.perf_counter() - t:.0f} s")

        t = time.perf_counter()
        full = backup(reg, dest)
        took = time.perf_counter() - t
        print(f"full backup: {took:.1f} s, {full.commits} commits, bundle {full.bundle_bytes / 2**20:.1f} MiB, "
              f"{full.blobs} files ({full.bytes / 2**20:.1f} MiB), backup directory {size(dest) / 2**20:.1f} MiB")

        fill(reg, args.versions, args.more)
        t = time.perf_counter()
        inc = backup(reg, dest)
        took = time.perf_counter() - t
        print(f"incremental backup after {args.more} more: {took:.1f} s, {inc.commits} commits, bundle "
              f"{inc.bundle_bytes / 2**10:.0f} KiB, {inc.blobs} files ({inc.bytes / 2**10:.0f} KiB); manifest "
              f"{mf.manifest_path(dest, 2).stat().st_size / 2**20:.1f} MiB")

        t = time.perf_counter()
        done = restore(dest, Settings(data=str(Path(tmp) / "restored")), keys=reg.settings.keys_path)
        took = time.perf_counter() - t
        assert done.head == reg.ledger.head()
        print(f"restore (bundles fetched, {done.blobs} files hashed, history indexed, verify): {took:.1f} s")


if __name__ == "__main__":
    main()
