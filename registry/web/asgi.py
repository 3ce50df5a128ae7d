"""The types of raw ASGI, as the front door, the forwarder and the guards on every request and answer
speak it (before and around Litestar): a scope and each message are dicts, as the ASGI spec has them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = Mapping[str, Any]  # (Litestar's are TypedDicts: read-only to mypy, dicts at run time)
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
