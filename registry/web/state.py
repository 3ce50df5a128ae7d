"""What a worker keeps between requests (`WebState`: the registry and its bounded caches), and what
every controller asks of a request first: the registry as the caller may see it (a `Reader`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from litestar import Request

from ..datadir import Registry
from ..reads import Reader
from ..replica import Follower
from .caches import Answers, PageCache
from .credentials import Authenticator
from .incoming import incoming
from .readiness import StoreCheck
from .repeats import Repeats
from .stopping import Stopping

if TYPE_CHECKING:
    from ..upstream.fetching import Upstreams
    from ..upstream.pulling import Pulls
    from .forward import Forwarder


@dataclass
class WebState:
    """Everything a worker keeps between requests: the registry, and its bounded caches."""

    registry: Registry
    authenticator: Authenticator = field(default_factory=Authenticator)
    pages: PageCache = field(default_factory=PageCache)
    answers: Answers = field(default_factory=Answers)
    repeats: Repeats = field(default_factory=Repeats)  # (answers by the request's bytes: repeats.py)
    checkpoint: tuple[tuple[str, int], str] | None = None  # the last one signed, by (head, second)
    replica: Follower | None = None  # on a read replica: what keeps its ledger fresh
    forwarder: Forwarder | None = None  # on a read replica: what sends writes to the primary (forward.py)
    upstreams: Upstreams | None = None  # upstream indexes' connections and cached pages (web/upstream.py)
    pulls: Pulls | None = None  # files this worker is pulling from upstream
    stopping: Stopping = field(default_factory=Stopping)  # requests in flight, and the way out (stopping.py)
    store_check: StoreCheck = field(default_factory=StoreCheck)  # /_/ready's last word from the blob store


def web_state(request: Request) -> WebState:
    return request.app.state.web


async def reader(request: Request) -> Reader:
    """The registry at its tip, as the caller (by the request's credentials) may see it."""
    state = web_state(request)
    return await state.authenticator.reader(state.registry, incoming(request.scope).authorization)
