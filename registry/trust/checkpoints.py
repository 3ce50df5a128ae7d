"""Signed checkpoints of the ledger: a C2SP signed note (signed-note.md) whose text has the shape of a
C2SP tlog checkpoint (tlog-checkpoint.md), and the note verifier keys that check them.

    registry-ledger/<registry uuid>           origin: names this registry's ledger
    1234                                      the number of commits on main
    <base64 of the head commit's 20-byte id>  a git commit id, NOT an RFC 6962 Merkle root
    timestamp 2026-12-01T23:11:35Z            when the note was signed

    — registry-ledger/<registry uuid> <base64(key id ‖ Ed25519 signature)>

The origin says it is a git ledger, so nothing mistakes it for a transparency log's tree head:
consistency between two checkpoints is git ancestry (the newer head descends from the older), not
a Merkle proof. Verifiers ignore signatures by keys they don't know (so witnesses could cosign).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ORIGIN_PREFIX = "registry-ledger/"
DASH = "\u2014"  # what starts a signature line
ED25519 = b"\x01"  # the note signature type


class BadCheckpoint(ValueError):
    """A note that isn't a checkpoint of ours, or whose signature doesn't verify."""


class BadSignature(BadCheckpoint):
    """Signed by a key we know, but the signature doesn't verify: the note was altered."""


class UnknownKey(BadCheckpoint):
    """Signed only by keys we don't know."""


def origin(registry_uuid: str) -> str:
    return ORIGIN_PREFIX + registry_uuid.strip("{}")


def key_id(name: str, public: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public.public_bytes_raw()).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """`<name>+<key id hex>+<base64(type ‖ key)>`: how a note verifier key is written (Go's note package)."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519 + public.public_bytes_raw()).decode()}"


@dataclass(frozen=True)
class Verifier:
    name: str
    id: bytes
    public: Ed25519PublicKey
    text: str

    @classmethod
    def parse(cls, text: str) -> Verifier:
        name, sep, rest = text.strip().partition("+")
        hex_id, sep2, b64 = rest.partition("+")
        try:
            raw = base64.b64decode(b64, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise BadCheckpoint(f"not a note verifier key: {text.strip()[:60]!r}") from None
        if not (sep and sep2 and name) or len(raw) != 33 or raw[:1] != ED25519:
            raise BadCheckpoint(f"not an Ed25519 note verifier key: {text.strip()[:60]!r}")
        public = Ed25519PublicKey.from_public_bytes(raw[1:])
        if key_id(name, public) != wanted:
            raise BadCheckpoint(f"the key id in {text.strip()[:60]!r} does not match its key")
        return cls(name, wanted, public, verifier_key(name, public))


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int  # commits on main, the root included
    head: str  # the head commit id, hex
    timestamp: datetime

    def text(self) -> str:
        root = base64.b64encode(bytes.fromhex(self.head)).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntimestamp {self.timestamp.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\n"


def sign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    text = checkpoint.text()
    signature = key_id(name, key.public_key()) + key.sign(text.encode())
    return f"{text}\n{DASH} {name} {base64.b64encode(signature).decode()}\n"


def parse(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]], str]:
    """(checkpoint, signatures as (key name, key id, signature), signed text), unverified."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep:
        raise BadCheckpoint("not a signed note: no blank line before its signatures")
    text += "\n"
    lines = text.splitlines()
    if len(lines) < 4 or not lines[0].startswith(ORIGIN_PREFIX):
        raise BadCheckpoint("not a registry ledger checkpoint (its first line is not a registry-ledger origin)")
    try:
        size = int(lines[1])
        head = base64.b64decode(lines[2], validate=True).hex()
        stamp = next(line for line in lines[3:] if line.startswith("timestamp "))
        timestamp = datetime.strptime(stamp.split(" ", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (ValueError, StopIteration, binascii.Error):
        raise BadCheckpoint("malformed checkpoint: expected origin, commit count, base64 commit id, "
                            "timestamp") from None
    if len(head) != 40 or size < 1:
        raise BadCheckpoint("malformed checkpoint: the commit id is not 20 bytes, or the count is not positive")
    signatures = []
    for line in sigs.splitlines():
        dash, _, rest = line.partition(" ")
        name, _, b64 = rest.partition(" ")
        if dash != DASH or not name or not b64:
            raise BadCheckpoint(f"malformed signature line in the note: {line[:60]!r}")
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise BadCheckpoint(f"malformed signature line in the note: {line[:60]!r}") from None
        if len(raw) > 4:
            signatures.append((name, raw[:4], raw[4:]))
    return Checkpoint(lines[0], size, head, timestamp), signatures, text


def verify(note: str, known: list[Verifier]) -> tuple[Checkpoint, Verifier]:
    """The checkpoint and the known key that signed it. A signature by a key we know that doesn't
    verify is a bad signature; signatures only by keys we don't know are an unknown key."""
    checkpoint, signatures, text = parse(note)
    seen = []
    for name, kid, signature in signatures:
        for key in known:
            if (key.name, key.id) == (name, kid):
                try:
                    key.public.verify(signature, text.encode())
                except InvalidSignature:
                    raise BadSignature(f"bad signature: the checkpoint's signature by {key.text} does not "
                                       "verify") from None
                return checkpoint, key
        seen.append(f"{name}+{kid.hex()}")
    raise UnknownKey(f"unknown key: the checkpoint is signed only by {', '.join(seen) or 'nobody'}, "
                        f"not by a key this witness was told about ({', '.join(k.text for k in known) or 'none'})")
