"""Trust: the pipeline issuer a workspace trusts (`registry trust`), the ledger's signing keys
(`registry key`), and the outside check that the ledger only grew (`registry witness`)."""

from __future__ import annotations

import argparse
import json

from pipelines.claims import default_audience

from .. import operations
from ..config import Settings
from ..errors import RegistryError
from ..model import SigningKey
from ..reads import Reader
from ..trust import checkpoints, keys, sshsig
from .command import CHANNEL, Opened, opened


@opened
def trust(cx: Opened) -> int:
    """Lists the trusts (no WS), shows one (WS), sets one (--issuer) or removes it (--remove)."""
    args = cx.args
    if args.remove and (args.issuer or args.audience or args.jwks_file):
        raise RegistryError("Use --remove alone: registry trust WS --remove.")
    if (args.audience or args.jwks_file) and not args.issuer:
        raise RegistryError("--audience and --jwks-file need --issuer (a trust is set whole): "
                            "registry trust WS --issuer URL [--audience AUD]... [--jwks-file PATH].")
    if args.workspace is None:
        if args.issuer or args.remove:
            raise RegistryError("Name the workspace: registry trust WS --issuer URL.")
        _print_trusts(cx.read)
    elif args.remove:
        operations.remove_trust(cx.reg, cx.who, CHANNEL, args.workspace)
        print(f"workspace {args.workspace} no longer trusts any pipeline issuer")
    elif not args.issuer:
        _print_trust(cx.read, args.workspace)
    else:
        _set_trust(cx, args)
    return 0


def _print_trusts(read: Reader) -> None:
    found = [(ws, record) for ws, record in read.trusts() if record]
    for ws, record in found:
        print(f"{ws}\t{record.issuer}\t{', '.join(record.audiences) or '(default audience)'}"
              f"{chr(9) + 'inline JWKS' if record.jwks else ''}")
    if not found:
        print("no workspace trusts a pipeline issuer yet: registry trust WS --issuer URL adds one")


def _print_trust(read: Reader, ws: str) -> None:
    found = read.trusts(ws)
    if not found:
        print(f"workspace {ws} trusts no pipeline issuer")
        return
    record, uuid = found[0][1], read.workspace(ws).uuid
    inline = f"inline JWKS ({len(record.jwks['keys'])} keys)" if record.jwks else "fetched from the issuer"
    print(f"issuer:    {record.issuer}\nworkspace: {uuid}\n"
          f"audiences: {', '.join(record.audiences) or default_audience(uuid) + ' (default)'}\n"
          f"keys:      {inline}")


def _set_trust(cx: Opened, args: argparse.Namespace) -> None:
    jwks = None
    if args.jwks_file:
        try:
            jwks = json.loads(args.jwks_file.read_text())
        except (OSError, ValueError) as exc:
            raise RegistryError(f"Can't read a JWKS from {args.jwks_file}: {exc}") from None
    record = operations.set_trust(cx.reg, cx.who, CHANNEL, args.workspace, args.issuer, args.audience, jwks)
    print(f"workspace {args.workspace} now trusts pipeline tokens from {record.issuer}")


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
