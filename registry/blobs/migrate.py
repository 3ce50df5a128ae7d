"""`registry blobs migrate --to s3://...`: a data directory's blobs into a bucket.

Each blob is hashed as it is sent and made visible only if it hashes to its name (a damaged local
copy is reported, never uploaded as if whole); an object already in the bucket with the right size
is skipped, so a run that was stopped resumes where it was. Cached core metadata is not sent: it
moves to the local cache. Once every blob is there, the data directory records the bucket, and
every later start and command uses it. Run it again after stopping the server (it then sends only
what was published since), and start the server on the bucket.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .files import FileBlobStore
from .s3 import S3BlobStore

READ = 1 * 2**20


@dataclass
class Migrated:
    sent: int = 0
    bytes: int = 0
    skipped: int = 0  # already in the bucket
    cached: int = 0  # core metadata, moved to the local cache
    deleted: int = 0  # local copies removed (--delete-local)
    problems: list[str] = field(default_factory=list)


def migrate(source: FileBlobStore, target: S3BlobStore, metadata: set[str], *, jobs: int = 4,
            delete_local: bool = False, progress: bool = True) -> Migrated:
    """Send every blob of ``source`` but those named in ``metadata`` (core metadata: a cache)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    target.check()
    there = dict(target.inventory())
    local = [(sha, source.size(sha)) for sha, _ in source.list()]
    done = Migrated()
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"to {target.location}", total=sum(size for _, size in local))

        def one(sha: str, size: int) -> None:
            if sha in metadata:
                target.put_cache(source.read(sha))
                done.cached += 1
            elif there.get(sha) == size:
                done.skipped += 1
            else:
                problem = _send(source, target, sha, replace=sha in there)
                if problem:
                    done.problems.append(problem)
                    bar.advance(task, size)
                    return
                done.sent += 1
                done.bytes += size
            if delete_local:
                source.delete(sha)
                done.deleted += 1
            bar.advance(task, size)

        with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="migrate") as pool:
            for future in [pool.submit(one, sha, size) for sha, size in local]:
                future.result()
    return done


def _send(source: FileBlobStore, target: S3BlobStore, sha: str, *, replace: bool) -> str | None:
    """Stream one blob to its object, hashed on the way; a message if it isn't what its name says."""
    with target.stage() as staged, source.open(sha) as fh:
        staged.expect(sha)
        while chunk := fh.read(READ):
            staged.write(chunk)
        if staged.finish().sha256 != sha:
            return (f"{source.objects / sha[:2] / sha} does not hash to its name (a damaged copy): not sent; "
                    "`registry verify` says which file it is")
        if replace:  # (an object of another size is there: not whole, so replaced)
            target.repair(staged)
        else:
            target.adopt(staged)
    return None
