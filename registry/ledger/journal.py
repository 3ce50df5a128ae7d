"""The commit journal: a write-ahead log, so that a commit is durable after a single fsync.

Before the branch moves, a writer appends one record holding everything the commit needs: its
parent and id, its pack and pack index (the bytes), and a copy of each small file outside git it
needs (an uploaded distribution). One fsync of the journal makes all that durable; the pack, the
files and the ref are written to their places without syncs of their own. Files too big to copy
are made durable (data and name) *before* the record is written, and the record holds their size
and sha256: a record is never durable before what it points to.

After a crash, `Ledger.recover` replays the journal: it rewrites whatever didn't reach the disk
whole, moves the branch to the last commit, syncs everything, and empties the journal. A big file
that is missing or altered at replay is damage (it was durable before its record): it is logged
and kept in `registry-damage` for the health endpoint and `registry verify`, and the replay goes
on, so that no later, acknowledged record is dropped for it. Once the
journal has grown, the writer retires it and starts a new one, and a background thread syncs what
the retired one describes, then deletes it (a checkpoint); `registry gc` checkpoints before it
deletes anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import msgspec

from ..fsync import fdatasync_fd, fsync_fd, fsync_path, write_file
from .packs import write_replacing

# journal bytes (some hundreds of commits) before the writer syncs what it describes and empties it
CHECKPOINT_AT = 1 * 2**20
COPY_LIMIT = 1 * 2**20  # files up to this size travel in the journal instead of being fsynced
log = logging.getLogger("registry.ledger")
_MAGIC = b"RGJ1"
_PACK_NAME = re.compile(r"pack-[0-9a-f]{40}")
_HEADER = struct.Struct(">4sI16s")  # magic, payload length, first 16 bytes of the payload's SHA-256


class Entry(msgspec.Struct, frozen=True):
    parent: str
    commit: str
    pack: str  # pack-<sha1>, under objects/pack
    pack_data: bytes
    idx_data: bytes
    copies: dict[str, bytes] = {}  # relative to the data directory: small files, content included
    synced: tuple[str, ...] = ()  # relative to the data directory: big files, durable before the record
    checks: dict[str, tuple[int, str]] = {}  # each synced file's size and sha256 (older records: none)

    def __post_init__(self) -> None:
        # A replay writes what a record names: it must name nothing outside the ledger and the
        # data directory, whatever bytes a record holds (a decoding error ends the replay there).
        if not _PACK_NAME.fullmatch(self.pack):
            raise ValueError(f"not a pack name: {self.pack!r}")
        for name in (*self.copies, *self.synced, *self.checks):
            parts = PurePosixPath(name).parts
            if not parts or parts[0] == "/" or ".." in parts:
                raise ValueError(f"not a path inside the data directory: {name!r}")


class Damage(msgspec.Struct, frozen=True):
    """What a replay found wrong in a record it replayed anyway (it keeps every record that is whole):
    a file that was durable before the record and is missing or altered now, or a torn record with
    whole ones after it. Never expected; kept in `registry-damage` for the health endpoint and
    `registry verify` until repaired."""

    found: str  # when (ISO 8601)
    commit: str  # the commit whose record it concerns ("" if unknown)
    problem: str  # in words
    path: str = ""  # the file concerned, relative to the data directory
    size: int = -1
    sha256: str = ""


class Journal:
    """The journal file, and the one retired at the last checkpoint while it is being synced.

    Writers (`append`, `cut`, `sync`, `retire`, `reset`) hold the ledger's write lock: one at a
    time across processes. Readers (`entries`, `size`, `pending`) may run at any time; they see
    whole records only."""

    def __init__(self, path: Path, base: Path) -> None:
        self.path = path
        self.retired = path.with_name(path.name + ".retired")
        self.base = base  # the data directory, so that moving it whole keeps the entries valid
        self._fd: int | None = None
        self._pid: int | None = None
        self._end = 0  # where the whole records end, as far as we know

    def append(self, entry: Entry) -> int:
        """Write the record after the last whole one (cutting off a torn one a killed writer left);
        not synced (see `sync`). Returns where it starts (for `cut`). OSError (a full disk) leaves
        the journal as it was."""
        payload = msgspec.msgpack.encode(entry)
        record = _HEADER.pack(_MAGIC, len(payload), hashlib.sha256(payload).digest()[:16]) + payload
        fd, size = self._current()
        if size != self._end:  # others appended since, emptied it, or one was killed mid-append
            start = self._end if self._end < size else 0
            end = start + _whole(os.pread(fd, size - start, start))
            if start and end == start:  # no record starts where ours ended: emptied and refilled?
                end = _whole(os.pread(fd, size, 0))  # (or a torn tail right there: the same answer)
            self._end = end
            if end < size:
                # A writer died mid-append: its record was never acknowledged, and one written
                # after it would be out of a replay's reach (replays stop at a torn record).
                os.ftruncate(fd, end)
        view = memoryview(record)
        try:
            while view:  # (a full disk may take a record in parts, or not whole)
                view = view[os.write(fd, view):]
        except BaseException:
            os.ftruncate(fd, self._end)
            raise
        start, self._end = self._end, self._end + len(record)
        return start

    def cut(self, start: int) -> None:
        """Take back the last record (it starts at ``start``), durably: its commit was never
        acknowledged (a full disk stopped it), and a replay must not make it after all."""
        fd, _ = self._current()
        os.ftruncate(fd, start)
        self._end = start
        fdatasync_fd(fd)

    def _current(self) -> tuple[int, int]:
        """Our descriptor of the journal file and its size, reopened when another process (or we)
        retired or emptied it (both put a new file in its place)."""
        try:
            ino: int | None = os.stat(self.path).st_ino
        except FileNotFoundError:
            ino = None
        fd = self._fd if self._pid == os.getpid() else None  # (a forked child opens its own)
        st = os.fstat(fd) if fd is not None else None
        if fd is None or st is None or st.st_ino != ino:
            if fd is not None:
                os.close(fd)
            fd = self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
            self._end = 0
            if ino is None:  # a new journal (after a checkpoint retired the last): its name must last
                fsync_path(self.path.parent)
            st = os.fstat(fd)
        return fd, st.st_size

    def sync(self) -> None:
        """Make every record appended so far durable (one fdatasync)."""
        fdatasync_fd(self._current()[0])

    def relative(self, path: Path) -> str:
        """``path`` as a record names it: relative to the data directory."""
        return os.path.relpath(path, self.base)

    def size(self) -> int:
        """The journal's bytes now (0 if there is none)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def pending(self) -> bool:
        """Whether a replay or a checkpoint has anything to do (records, or a retired journal)."""
        return self.size() > 0 or self.retired.exists()

    def entries(self, *, retired_only: bool = False) -> Iterator[Entry]:
        """Every whole record, oldest first (the retired journal's first); reading a file stops at
        its first torn record (a crash mid-append: never acknowledged, nothing after it written)."""
        for path in (self.retired,) if retired_only else (self.retired, self.path):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            yield from _records(data)

    def retire(self) -> bool:
        """Set the journal aside for a checkpoint (under the write lock); False if the last one
        is still being checkpointed. The next append starts a new journal."""
        if self.retired.exists():
            return False
        os.rename(self.path, self.retired)
        return True

    def reset(self) -> None:
        """Empty the journal and drop the retired one; only once all they describe is durable.
        The empty journal is a new file, so that every writer notices (see `_current`); it keeps
        the old one's owner where it can (an operator's command run as root must not lock the
        server out of it)."""
        self.retired.unlink(missing_ok=True)
        temp = self.path.with_name(f"tmp_{os.getpid()}_{self.path.name}")
        write_file(temp, b"", 0o644, exclusive=False)
        try:
            st = os.stat(self.path)
            os.chown(temp, st.st_uid, st.st_gid)
        except (FileNotFoundError, PermissionError):
            pass
        os.replace(temp, self.path)
        fsync_path(self.path.parent)


class DamageLog:
    """`registry-damage`: what replays found (JSON lines, appended and synced). Written only by a
    replay (under the write lock); read by anyone."""

    def __init__(self, path: Path, base: Path) -> None:
        self.path = path
        self.base = base

    def add(self, damage: list[Damage]) -> None:
        """Log and keep, durably, what of ``damage`` is not kept already."""
        known = {(d.commit, d.path, d.problem) for d in self._read()}
        new = [d for d in damage if (d.commit, d.path, d.problem) not in known]  # (a replay cut short is redone)
        if not new:
            return
        for d in new:
            log.error("ledger: DAMAGE found replaying the journal: commit %s: %s", d.commit[:12] or "?", d.problem)
        existed = self.path.exists()
        with open(self.path, "ab") as fh:
            fh.write(b"".join(msgspec.json.encode(d) + b"\n" for d in new))
            fh.flush()
            fsync_fd(fh.fileno())
        if not existed:
            fsync_path(self.path.parent)

    def unresolved(self, *, deep: bool = False) -> list[Damage]:
        """What is still wrong: a file counts as repaired once it has its recorded size (``deep``:
        and hashes as recorded). A torn journal record stays until the operator deletes this file."""
        return [d for d in self._read() if not d.path or _check(self.base / d.path, d.size, d.sha256 if deep else "")]

    def _read(self) -> list[Damage]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(msgspec.json.decode(line, type=Damage))
            except msgspec.DecodeError:  # (a line torn by a crash while it was appended)
                continue
        return out


def _records(data: bytes) -> Iterator[Entry]:
    for start, end in _spans(data):
        try:
            yield msgspec.msgpack.decode(data[start + _HEADER.size:end], type=Entry)
        except msgspec.DecodeError:  # whole, but not ours to replay: skipped, as writers skip it
            log.error("journal: skipping a record that is whole but not a valid entry (at byte %d)", start)


def _whole(data: bytes) -> int:
    """Where the whole records at the start of ``data`` end."""
    return max((end for _, end in _spans(data)), default=0)


def _spans(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each whole record, up to the first torn one."""
    pos = 0
    while pos + _HEADER.size <= len(data):
        magic, length, digest = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if magic != _MAGIC or end > len(data) or hashlib.sha256(data[pos + _HEADER.size:end]).digest()[:16] != digest:
            return
        yield pos, end
        pos = end


def chain(entries: list[Entry]) -> list[Entry]:
    """The commits the journal leads through, oldest first: back from its last record, parent by
    parent (a record whose commit never became the tip, like a compare-and-swap that lost, drops
    out). The first one's parent is where the branch stood when the journal was last emptied."""
    if not entries:
        return []
    by_commit = {e.commit: e for e in entries}  # the later record wins a repeated commit
    out = [entries[-1]]
    while out[-1].parent in by_commit and len(out) <= len(entries):
        out.append(by_commit[out[-1].parent])
    return out[::-1]


def described(entry: Entry, pack_dir: Path, base: Path) -> list[Path]:
    """The files an entry put in place, with their directories and those directories' parents
    (a new blob may have needed a new fan-out directory): what a checkpoint fsyncs."""
    files = [pack_dir / f"{entry.pack}.pack", pack_dir / f"{entry.pack}.idx", *(base / n for n in entry.copies)]
    return [*files, *{d for f in files for d in (f.parent, f.parent.parent)}]


def inspect_synced(entry: Entry, base: Path, found: str) -> list[Damage]:
    """The files ``entry`` says were durable before it, checked against the size and sha256 it
    recorded (a name alone proves nothing: a file whose data never reached the disk comes back
    empty). Records from before the checks were recorded are checked for presence only."""
    damage = []
    for name in entry.synced:
        path = base / name
        size, sha256 = entry.checks.get(name, (-1, ""))
        problem = _check(path, size, sha256)
        if problem:
            damage.append(Damage(found, entry.commit, f"{name} {problem}", name, size, sha256))
    return damage


def _check(path: Path, size: int, sha256: str) -> str | None:
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    if size >= 0 and actual != size:
        return f"has {actual} bytes, not {size}"
    if sha256:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(2**20):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            return f"does not hash to {sha256}"
    return None


def torn_before_whole(path: Path, found: str) -> list[Damage]:
    """A torn record followed by whole ones: not a crash mid-append (whose torn record is the last,
    and cut off by the next writer), but damage to synced data. The whole records after it are
    not replayed (they build on the torn one's commit); the operator must look."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    end = _whole(data)
    at = data.find(_MAGIC, end + 1)
    while at >= 0:
        if _whole(data[at:]):
            return [Damage(found, "", f"{path.name}: the record at byte {end} is torn, and whole records follow "
                                      f"it (from byte {at}); they were not replayed")]
        at = data.find(_MAGIC, at + 1)
    return []


def materialize(entry: Entry, pack_dir: Path, base: Path, readable) -> None:
    """Put back whatever of ``entry`` didn't reach the disk whole (not synced here).
    ``readable(commit)`` says whether git can already read the commit (its pack may have been
    folded into another by a repack)."""
    pack, idx = pack_dir / f"{entry.pack}.pack", pack_dir / f"{entry.pack}.idx"
    for path, data in ((pack, entry.pack_data), (idx, entry.idx_data)):
        if _differs(path, data) and (path.exists() or not readable(entry.commit)):
            write_replacing(path, data, 0o444)
    for name, data in entry.copies.items():
        path = base / name
        if _differs(path, data):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(path, data, 0o600)


def _differs(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size != len(data) or path.read_bytes() != data
    except FileNotFoundError:
        return True


