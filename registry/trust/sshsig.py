"""OpenSSH signatures (PROTOCOL.sshsig) with Ed25519 keys: what git's `gpg.format=ssh` writes in a
commit's `gpgsig` header, and what `git verify-commit` and `ssh-keygen -Y verify` check.

`cryptography` signs and verifies; the wire format (SSH strings, the signed blob, the armour) is
written here. Only Ed25519 and SHA-512, the one combination the registry makes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

MAGIC = b"SSHSIG"
NAMESPACE = "git"
HASH = "sha512"
KEY_TYPE = b"ssh-ed25519"
BEGIN, END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


class BadSignature(ValueError):
    """Not an SSH signature we can check, or one that does not verify."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise BadSignature("truncated SSH signature")
    (n,) = struct.unpack_from(">I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise BadSignature("truncated SSH signature")
    return buf[pos + 4:end], end


def public_blob(key: Ed25519PublicKey) -> bytes:
    """The SSH wire form of a public key: string("ssh-ed25519") string(32 bytes)."""
    return _string(KEY_TYPE) + _string(key.public_bytes_raw())


def public_line(key: Ed25519PublicKey) -> str:
    """`ssh-ed25519 AAAA...`, as in authorized_keys and allowed_signers."""
    return f"{KEY_TYPE.decode()} {base64.b64encode(public_blob(key)).decode()}"


def parse_public_line(line: str) -> Ed25519PublicKey:
    parts = line.split()
    if len(parts) < 2 or parts[0] != KEY_TYPE.decode():
        raise ValueError(f"not an ssh-ed25519 public key: {line[:40]!r}")
    return _key_from_blob(base64.b64decode(parts[1]))


def fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:...`, as ssh-keygen and git print it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_blob(key)).digest()).decode().rstrip("=")


def _key_from_blob(blob: bytes) -> Ed25519PublicKey:
    kind, pos = _read_string(blob, 0)
    raw, pos = _read_string(blob, pos)
    if kind != KEY_TYPE or len(raw) != 32 or pos != len(blob):
        raise BadSignature("the signature's key is not an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def _signed_data(message: bytes, namespace: str) -> bytes:
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(HASH.encode()) + \
        _string(hashlib.sha512(message).digest())


def sign(key: Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE, *,
         public: bytes | None = None) -> str:
    """The armoured SSH signature of ``message`` (``public``: the key's wire blob, if known)."""
    signature = key.sign(_signed_data(message, namespace))
    blob = (MAGIC + struct.pack(">I", 1) + _string(public or public_blob(key.public_key()))
            + _string(namespace.encode()) + _string(b"") + _string(HASH.encode())
            + _string(_string(KEY_TYPE) + _string(signature)))
    text = base64.b64encode(blob).decode()
    return "\n".join([BEGIN, *(text[i:i + 70] for i in range(0, len(text), 70)), END]) + "\n"


def verify(armoured: str | bytes, message: bytes, namespace: str = NAMESPACE) -> Ed25519PublicKey:
    """The key that made this signature of ``message``; BadSignature if it is none."""
    if isinstance(armoured, bytes):
        armoured = armoured.decode("ascii", "replace")
    lines = [line.strip() for line in armoured.strip().splitlines()]
    if len(lines) < 3 or lines[0] != BEGIN or lines[-1] != END:
        raise BadSignature("not an SSH signature (no BEGIN/END SSH SIGNATURE armour)")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise BadSignature("the SSH signature's armour is not base64") from None
    if not blob.startswith(MAGIC) or blob[6:10] != struct.pack(">I", 1):
        raise BadSignature("not an SSHSIG version 1 signature")
    pub, pos = _read_string(blob, 10)
    ns, pos = _read_string(blob, pos)
    _, pos = _read_string(blob, pos)
    hash_alg, pos = _read_string(blob, pos)
    sig, pos = _read_string(blob, pos)
    if ns.decode(errors="replace") != namespace:
        raise BadSignature(f"signed for namespace {ns.decode(errors='replace')!r}, not {namespace!r}")
    if hash_alg != HASH.encode():
        raise BadSignature(f"hashed with {hash_alg.decode(errors='replace')}, not {HASH}")
    key = _key_from_blob(pub)
    kind, spos = _read_string(sig, 0)
    raw, _ = _read_string(sig, spos)
    if kind != KEY_TYPE:
        raise BadSignature("the signature is not an Ed25519 signature")
    try:
        key.verify(raw, _signed_data(message, namespace))
    except InvalidSignature:
        raise BadSignature("the signature does not match the signed content") from None
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The OpenSSH private key file (unencrypted: the data directory's permissions protect it)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())


def load_private(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_ssh_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def allowed_signer(principal: str, key_line: str, valid_after: datetime | None, valid_before: datetime | None) -> str:
    """One line of an OpenSSH allowed_signers file (ssh-keygen(1), ALLOWED SIGNERS)."""
    options = ['namespaces="git"']
    if valid_after is not None:
        options.append(f'valid-after="{_stamp(valid_after)}"')
    if valid_before is not None:
        options.append(f'valid-before="{_stamp(valid_before)}"')
    return f"{principal} {','.join(options)} {key_line}"


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
