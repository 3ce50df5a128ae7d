"""Trust: the pipeline issuers a workspace trusts (`registry trust`, `registry untrust`), the ledger's signing keys
(`registry key`), and the outside check that the ledger only grew (`registry witness`)."""

from __future__ import annotations

import argparse
import json

from pipelines.claims import default_audience

from .. import operations
from ..config import Settings
from ..errors import RegistryError
from ..model import PipelinesTrust, SigningKey
from ..reads import Reader
from ..trust import checkpoints, keys, sshsig
from .command import CHANNEL, Opened, opened


@opened
def trust(cx: Opened) -> int:
    """Lists the trusts (no WS: every workspace's; WS: its own), adds or updates one (--issuer), or
    removes one (--remove, as `registry untrust`)."""
    args = cx.args
    if args.remove and (args.audience or args.jwks_file):
        raise RegistryError("--remove takes no --audience or --jwks-file: registry untrust WS --issuer URL.")
    if (args.audience or args.jwks_file) and not args.issuer:
        raise RegistryError("--audience and --jwks-file need --issuer (an issuer's trust is set whole): "
                            "registry trust WS --issuer URL [--audience AUD]... [--jwks-file PATH].")
    if args.workspace is None:
        if args.issuer or args.remove:
            raise RegistryError("Name the workspace: registry trust WS --issuer URL.")
        _print_trusts(cx.read)
    elif args.remove:
        _untrust(cx, args.workspace, args.issuer)
    elif not args.issuer:
        _print_trust(cx.read, args.workspace)
    else:
        _set_trust(cx, args)
    return 0


@opened
def untrust(cx: Opened) -> int:
    _untrust(cx, cx.args.workspace, cx.args.issuer)
    return 0


def _untrust(cx: Opened, ws: str, issuer: str | None) -> None:
    record = operations.remove_trust(cx.reg, cx.who, CHANNEL, ws, issuer)
    left = [t.issuer for _, t in Reader(cx.reg, cx.who).trusts(ws)]
    print(f"workspace {ws} no longer trusts pipeline tokens from {record.issuer}; "
          + (f"it still trusts {', '.join(left)}" if left else "it trusts no issuer now"))


def _audiences(record: PipelinesTrust, uuid: str | None) -> str:
    return ", ".join(record.audiences) or (f"{default_audience(uuid)} (default)" if uuid else "(default audience)")


def _print_trusts(read: Reader) -> None:
    found = read.trusts()
    for ws, record in found:
        print(f"{ws}\t{record.issuer}\t{_audiences(record, None)}{chr(9) + 'inline JWKS' if record.jwks else ''}")
    if not found:
        print("no workspace trusts a pipeline issuer yet: registry trust WS --issuer URL adds one")


def _print_trust(read: Reader, ws: str) -> None:
    found = read.trusts(ws)
    if not found:
        print(f"workspace {ws} trusts no pipeline issuer: registry trust {ws} --issuer URL adds one")
        return
    uuid = read.workspace(ws).uuid
    print(f"workspace {ws} ({uuid}) trusts {len(found)} issuer{'s' if len(found) > 1 else ''}:")
    for _, record in found:
        inline = f"inline JWKS ({len(record.jwks['keys'])} keys)" if record.jwks else "fetched from the issuer"
        print(f"issuer:    {record.issuer}\naudiences: {_audiences(record, uuid)}\nkeys:      {inline}")


def _set_trust(cx: Opened, args: argparse.Namespace) -> None:
    jwks = None
    if args.jwks_file:
        try:
            jwks = json.loads(args.jwks_file.read_text())
        except (OSError, ValueError) as exc:
            raise RegistryError(f"Can't read a JWKS from {args.jwks_file}: {exc}") from None
    record = operations.set_trust(cx.reg, cx.who, CHANNEL, args.workspace, args.issuer, args.audience, jwks)
    others = [t.issuer for _, t in Reader(cx.reg, cx.who).trusts(args.workspace) if t.issuer != record.issuer]
    print(f"workspace {args.workspace} now trusts pipeline tokens from {record.issuer}"
          + (f" (and from {', '.join(others)})" if others else ""))


@opened
def key_list(cx: Opened) -> int:
    _print_keys(cx.read, cx.args.allowed_signers)
    return 0


@opened
def key_rotate(cx: Opened) -> int:
    operations.rotate_keys(cx.reg, cx.who, CHANNEL)
    print("rotated the signing keys; the old ones signed the change and are deleted. Now current:")
    _print_keys(Reader(cx.reg, cx.who), False, current_only=True)
    return 0


def _print_keys(read: Reader, allowed_signers: bool, current_only: bool = False) -> None:
    record = read.signing_keys()
    if record is None:
        raise RegistryError("This ledger has no signing keys yet (it is read-only here, or from an older release).")
    if allowed_signers:
        print(keys.allowed_signers(record), end="")
        return
    for k in record.keys:
        if current_only and k.valid_until is not None:
            continue
        until = f"{k.valid_until:%Y-%m-%d %H:%M:%S}Z" if k.valid_until else "now (current)"
        print(f"{k.purpose:<10} {k.fingerprint}  {k.valid_from:%Y-%m-%d %H:%M:%S}Z .. {until}")
        if k.purpose == "checkpoint":
            print(f"           verifier key: {_verifier_key(k)}")


def _verifier_key(k: SigningKey) -> str:
    if k.note_name is None:  # (damage: every checkpoint key is made with one)
        raise RegistryError(f"Checkpoint key {k.fingerprint} has no note name: the ledger's signing-keys record is "
                            "damaged. Run `registry verify`.")
    return checkpoints.verifier_key(k.note_name, sshsig.parse_public_line(k.public_key))


def witness(args: argparse.Namespace, settings: Settings) -> int:
    from ..trust.witness import main  # (httpx: only when witnessing)

    return main(args)
