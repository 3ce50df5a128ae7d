"""Canonical JSON for ledger records, and a decode cache keyed by git blob id.

Canonical means sorted keys, two-space indent, UTF-8, one trailing newline: equal content gives an
equal git blob, and `git log -p` shows line-by-line diffs an auditor can read.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import TypeVar

import msgspec

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder] = {}
_cache: OrderedDict[tuple[bytes, type], object] = OrderedDict()
_cache_lock = Lock()
_CACHE_SIZE = 100_000


def encode(record: msgspec.Struct) -> bytes:
    return msgspec.json.format(msgspec.json.encode(record, order="sorted"), indent=2) + b"\n"


def decode(data: bytes, type_: type[T]) -> T:
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    return decoder.decode(data)


def cached(key: bytes, type_: type[T]) -> T | None:
    hit = _cache.get((key, type_))
    return hit  # type: ignore[return-value]


def remember(key: bytes, type_: type[T], value: T) -> T:
    # Records are frozen structs, so one decoded instance can be shared by every reader.
    with _cache_lock:
        _cache[(key, type_)] = value
        if len(_cache) > _CACHE_SIZE:
            for _ in range(_CACHE_SIZE // 10):
                _cache.popitem(last=False)
    return value
