"""Request bodies read as JSON, one way for every route: a body nested deeper than any request of
ours needs is refused (400) before it is used, as is one a decoder would recurse too deeply on."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException

from ..errors import Invalid

MAX_DEPTH = 32  # levels of arrays and objects; the deepest request the registry takes has 3
TOO_DEEP = (f"The JSON body nests deeper than {MAX_DEPTH} levels of arrays and objects; send the flat object the "
            "operation documents.")


def json_value(raw: bytes, type: Any = Any) -> Any:
    """``raw`` decoded (into ``type``), or Invalid if it nests too deeply; msgspec's own DecodeError
    and ValidationError pass through for the caller to word."""
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        raise Invalid(TOO_DEEP) from None
    if _depth(value) > MAX_DEPTH:
        raise Invalid(TOO_DEEP)
    return value if type is Any else msgspec.convert(value, type)


def _depth(value: Any) -> int:
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        level.extend((child, depth + 1) for child in node)
    return deepest


class RegistryRequest(Request):
    """Litestar's Request, whose JSON body (a route's `data`) is refused when it nests too deeply."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            value = _TOO_DEEP
        if value is _TOO_DEEP or _depth(value) > MAX_DEPTH:
            raise ClientException(TOO_DEEP)
        return value


_TOO_DEEP = object()
