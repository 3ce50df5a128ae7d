"""`registry witness URL`: an outside check that a registry's ledger only ever grows.

Each run fetches the registry's signed checkpoint (`/_/ledger/checkpoint`) and its ledger (git's
smart HTTP, with a witness token), and checks, against what the last run saw (the state file):

- the checkpoint is signed by the checkpoint key it trusts: the one it was told (`--key`), the
  one the ledger named on the first run, or one a signed commit it checked rotated in;
- the head the checkpoint names is in the served ledger, and descends from the last head seen
  (git gives the append-only proof: a rewrite, an amend or a deleted commit breaks the line);
- the checkpoint's commit count is the ledger's;
- every commit since is signed by the commit key of its time (commit_signatures.py).

Exit 0: all held, and the state moves on. Exit 1: tampering (a rewrite, a missing commit, a bad
signature, an unknown key), naming both heads; the state stays, so every run after fails too until
someone looks. Exit 2: it could not check (network, credentials). The ledger copy it proves things
with is kept beside the state file (FILE.git); without it (a fresh CI runner) it is fetched whole.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pygit2
from pygit2.enums import SortMode

from ..model import SigningKeys
from ..outbound import describe, low_speed_seconds
from . import checkpoints as checkpoint
from . import commit_signatures as signatures
from . import keys as signing

CLOCK_SLACK = timedelta(minutes=5)  # how far a checkpoint's time may go back (a server's clock stepped)


class Tampered(Exception):
    """Evidence that the ledger was rewritten or its signatures don't hold."""


class CannotCheck(Exception):
    """The checkpoint or the ledger could not be had (network, credentials, a server error)."""


class Refused(CannotCheck):
    """The registry refused the credentials (or wanted some)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class State:
    url: str
    origin: str
    head: str
    size: int
    timestamp: str  # the checkpoint's, ISO 8601
    keys: list[str] = field(default_factory=list)  # trusted checkpoint verifier keys
    checked: str = ""  # when this witness last checked

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise CannotCheck(f"{path} is not a witness state file ({exc}); move it away to start afresh") from None

    def save(self, path: Path) -> None:
        temp = path.with_name(f".{path.name}.tmp")
        with open(temp, "w") as fh:
            json.dump(asdict(self), fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)


def main(args: argparse.Namespace) -> int:
    token = args.token if args.token is not None else os.environ.get("REGISTRY_WITNESS_TOKEN")
    if token == "-":
        token = sys.stdin.readline().strip()
    try:
        print(check(args.url, args.state, args.key, token, args.username))
        return 0
    except Tampered as exc:
        print(f"registry witness: TAMPERED: {exc}", file=sys.stderr)
        return 1
    except Refused as exc:
        print("registry witness: could not check: " + (
            "no witness token: set REGISTRY_WITNESS_TOKEN or pass --token" if not token else
            f"the registry refused the witness token ({exc.status}): give one made with `registry token create "
            "EMAIL --witness` on the registry, in REGISTRY_WITNESS_TOKEN or --token"), file=sys.stderr)
        return 2
    except (CannotCheck, checkpoint.BadCheckpoint) as exc:
        print(f"registry witness: could not check: {exc}", file=sys.stderr)
        return 2


@dataclass(frozen=True)
class Witnessed:
    point: checkpoint.Checkpoint  # what was checked, and now is the state's
    note: str  # the signed checkpoint itself
    message: str


def check(url: str, state_path: Path, keys: list[str], token: str | None, username: str = "__token__") -> str:
    return witness(url, state_path, keys, token, username).message


def witness(url: str, state_path: Path, keys: list[str], token: str | None, username: str = "__token__", *,
            mirror: Path | None = None, note: str | None = None, timeout: float = 30) -> Witnessed:
    """Check the registry at ``url`` against the state, and move the state on. ``mirror``: where the
    ledger copy is (default FILE.git); ``note``: a checkpoint just fetched (default: fetch one);
    ``timeout``: the longest the registry may stay silent (connect, each read; git's fetch gets longer,
    outbound.py `low_speed_seconds`)."""
    base = url.rstrip("/")
    state_path = Path(state_path)
    state = State.load(state_path)
    old = state.head if state else None
    note = note if note is not None else _get(f"{base}/_/ledger/checkpoint", timeout)
    try:
        point, _, _ = checkpoint.parse(note)
    except checkpoint.BadCheckpoint as exc:
        raise Tampered(f"bad checkpoint: {exc} (last head seen {old or 'none'})") from None
    heads = f"last head seen {old or 'none (first run)'}, checkpoint head {point.head}"
    if state and point.origin != state.origin:
        raise Tampered(f"the checkpoint is of another ledger, {point.origin}, not {state.origin} ({heads})")
    try:  # a note altered in transit or at the source fails here, before anything is fetched
        told = [checkpoint.Verifier.parse(k) for k in [*(state.keys if state else []), *keys]]
        if told:
            checkpoint.verify(note, told)
    except checkpoint.BadSignature as exc:
        raise Tampered(f"{exc} ({heads})") from None
    except checkpoint.UnknownKey:
        pass  # (maybe a rotation: the ledger, checked below, says which key is current)
    except checkpoint.BadCheckpoint as exc:
        raise CannotCheck(str(exc)) from None
    repo = _fetch(base, Path(mirror or f"{state_path}.git"), token, username, timeout)
    try:
        size = _check_history(repo, point, state, heads)
        record = _signing_keys(repo, point, heads)
        trusted = _trusted_keys(record, told, heads)
        try:
            _, signer = checkpoint.verify(note, trusted)
        except checkpoint.BadCheckpoint as exc:
            raise Tampered(f"{exc} ({heads})") from None
        current = signing.checkpoint_verifiers(record, current_only=True)[0]
        if signer.text != current.text:
            raise Tampered(f"the checkpoint is signed by {signer.text}, a key the ledger retired; its current "
                           f"checkpoint key is {current.text} ({heads})")
        repo.references.create("refs/witness/seen", point.head, force=True)  # (keeps what was seen, whatever comes)
    finally:
        repo.free()
    State(url=base, origin=point.origin, head=point.head, size=point.size, timestamp=point.timestamp.isoformat(),
          keys=[current.text], checked=datetime.now(UTC).isoformat(timespec="seconds")).save(state_path)
    grown = f"{_commits(point.size - state.size)} since {old}" if state else f"{_commits(size)} (first run)"
    return Witnessed(point, note, f"ok: {point.origin} at {point.head} ({point.timestamp:%Y-%m-%d %H:%M:%S}Z): "
                                  f"{grown}, each signed by the key of its time; checkpoint signed by {current.text}")


def _check_history(repo: pygit2.Repository, point: checkpoint.Checkpoint, state: State | None, heads: str) -> int:
    served = str(repo.references["refs/witness/served"].target)
    if point.head not in repo:
        raise Tampered(f"missing commit: the checkpoint names head {point.head}, which the served ledger does not "
                       f"have ({heads})")
    if served != point.head and not repo.descendant_of(served, point.head):
        raise Tampered(f"rewrite: the served ledger's main, {served}, does not descend from the checkpoint's head "
                       f"({heads})")
    old = state.head if state else None
    if state is not None and old is not None:
        if old not in repo:
            raise Tampered(f"missing commit: the last head seen is not in the served ledger, whose history was "
                           f"rewritten ({heads})")
        if old != point.head and not repo.descendant_of(point.head, old):
            if repo.descendant_of(old, point.head):
                raise Tampered(f"rollback: the checkpoint's head is older than the last head seen ({heads})")
            raise Tampered(f"rewrite: the checkpoint's head does not descend from the last head seen ({heads})")
        if point.timestamp < datetime.fromisoformat(state.timestamp) - CLOCK_SLACK:
            raise Tampered(f"stale checkpoint: signed at {point.timestamp}, before the one seen last "
                           f"({state.timestamp}) ({heads})")
    walker = repo.walk(point.head, SortMode.TOPOLOGICAL)
    if old is not None:
        walker.hide(old)
    size = sum(1 for _ in walker) + (state.size if state else 0)
    if size != point.size:
        raise Tampered(f"the checkpoint says {point.size} commits lead to its head; the ledger has {size} ({heads})")
    checked = signatures.check_history(repo, point.head, since=old)
    if not checked.ok:
        raise Tampered(f"bad signature: {checked.problem} ({heads})")
    return size


def _signing_keys(repo: pygit2.Repository, point: checkpoint.Checkpoint, heads: str) -> SigningKeys:
    """The ledger's signing-keys record at the checkpoint's head (which must have one)."""
    record = signing.keys_in(repo, repo[point.head].peel(pygit2.Commit).tree)
    if record is None:
        raise Tampered(f"the ledger at the checkpoint's head has no signing keys ({heads})")
    return record


def _trusted_keys(record: SigningKeys, told: list[checkpoint.Verifier], heads: str) -> list[checkpoint.Verifier]:
    """The checkpoint keys to verify with. The ledger's record at the head was just checked commit by
    commit from a head already trusted (or from its root, on a first run): a key it names is
    trusted when the key the witness already trusts is in it too (a rotation it signed)."""
    named = {v.text for v in signing.checkpoint_verifiers(record)}
    current = signing.checkpoint_verifiers(record, current_only=True)
    if not told:  # first run, told nothing: trust what the ledger says (and say so in the state)
        return current
    if not any(k.text in named for k in told):
        raise Tampered(f"unknown key: the ledger's checkpoint keys ({', '.join(sorted(named))}) include none this "
                       f"witness was told about ({', '.join(k.text for k in told)}) ({heads})")
    return [*told, *current]


def _get(url: str, timeout: float = 30) -> str:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise CannotCheck(f"GET {url}: {describe(exc, timeout)}") from None
    if response.status_code != 200:
        raise CannotCheck(f"GET {url}: {response.status_code} {response.text.strip()[:200]}")
    return response.text


def _fetch(base: str, mirror: Path, token: str | None, username: str, timeout: float = 30) -> pygit2.Repository:
    """The served ledger's main as refs/witness/served in our copy (forced: a rewrite must arrive
    to be caught; what was seen before stays, under refs/witness/seen)."""
    created = not (mirror / "HEAD").exists()
    if created:
        pygit2.init_repository(str(mirror), bare=True, initial_head="main")
    try:
        return _git_fetch(base, mirror, token, username, timeout)
    except CannotCheck:
        if created:  # (a failed first run leaves nothing behind)
            shutil.rmtree(mirror, ignore_errors=True)
        raise


def _git_fetch(base: str, mirror: Path, token: str | None, username: str, timeout: float = 30) -> pygit2.Repository:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if token:
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                   GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}")
    try:
        # (no auto gc: a replica's readers hold its packs open; its ledger folds them itself)
        # (a silent server ends the fetch: under a byte a second for that long; a slow one may go on)
        proc = subprocess.run(["git", "-C", str(mirror), "-c", "gc.auto=0", "-c", "maintenance.auto=false",
                               "-c", "http.lowSpeedLimit=1", "-c", f"http.lowSpeedTime={low_speed_seconds(timeout)}",
                               "fetch", "--quiet", "--force", "--no-tags",
                               f"{base}/_/ledger.git", "+refs/heads/main:refs/witness/served"],
                              env=env, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CannotCheck(f"could not run git to fetch the ledger ({exc}); install git") from None
    if proc.returncode != 0:
        raise _refused(base, token, username, timeout) or CannotCheck(
            f"git fetch {base}/_/ledger.git failed: {proc.stderr.strip()[-500:]}")
    return pygit2.Repository(str(mirror))


def _refused(base: str, token: str | None, username: str, timeout: float = 30) -> Refused | None:
    """Whether git failed because the registry refused the credentials (git says only that it could
    not prompt for them)."""
    try:
        status = httpx.get(f"{base}/_/ledger.git/info/refs", params={"service": "git-upload-pack"}, timeout=timeout,
                           auth=(username, token) if token else None).status_code
    except httpx.HTTPError:
        return None
    return Refused(status, f"{base}/_/ledger.git refused the credentials ({status})") if status in (401, 403) else None


def _commits(n: int) -> str:
    return f"{n} new commit{'' if n == 1 else 's'}"
