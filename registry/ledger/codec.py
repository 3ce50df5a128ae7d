"""Canonical JSON for ledger records, and a cache of decoded records keyed by git blob id.

Canonical means sorted keys, two-space indent, UTF-8, one trailing newline: equal content gives an
equal git blob, and `git log -p` shows line-by-line diffs an auditor can read.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from ..cache import Cache, decoded_size

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder] = {}
_records = Cache("records", "ledger records, decoded, by git blob id")


def encode(record: msgspec.Struct) -> bytes:
    """A record's canonical bytes: what is written to the ledger, and what its git blob id hashes."""
    return msgspec.json.format(msgspec.json.encode(record, order="sorted"), indent=2) + b"\n"


def decode(data: bytes, type_: type[T]) -> T:
    """A record of ``type_`` from its bytes; raises msgspec.ValidationError/DecodeError on bytes that
    aren't one (the callers say which path was damaged)."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    return decoder.decode(data)


def cached(key: bytes, type_: type[T]) -> T | None:
    """The record already decoded from the blob ``key`` as ``type_``, or None."""
    return _records.get((key, type_))


def remember(key: bytes, type_: type[T], value: T, encoded: int) -> T:
    """Keep a record decoded from ``encoded`` bytes. Records are frozen structs, so one decoded
    instance can be shared by every reader."""
    return _records.put((key, type_), value, decoded_size(encoded))
