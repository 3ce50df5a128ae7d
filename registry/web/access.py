"""The access log: one line per request (method, path, status, bytes, milliseconds, who, request id),
written by the one middleware every request passes (`AccessLog`, outermost: a refusal at the front
door is logged as an answer from the app is), as text or as one JSON object a line
(REGISTRY_ACCESS_LOG=json). The same middleware counts the request for the metrics (by its route's
template, registry/metrics.py) and gives every answer an `X-Request-Id`: the client's, if it sent a
sane one, else a new one.

Who is the principal as the credentials code resolved it for this request (`note`, called by the
code that resolves it): an email, `pipeline:{uuid}`, `anonymous`. Nothing secret is ever written:
no header, no query string (a query may carry a token), and the secret segment of a sign-in link
replaced by `…`. A served worker's lines are made when their batch is written (`Batched`); elsewhere
by `logging`, only if the logger takes them.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import IO, TYPE_CHECKING

import msgspec

from .. import metrics
from ..identity import Principal
from ..links import SIGNIN_LINK
from . import eventlog
from .asgi import ASGIApp, Message, Receive, Scope, Send
from .incoming import ROUTE, SCOPE_KEY, Incoming
from .repeats import ANSWERED, Repeat, Repeats, request_key

if TYPE_CHECKING:
    from .credentials import Authenticator

log = logging.getLogger("registry.access")
_WHO: ContextVar[list] = ContextVar("registry.access.who")  # a one-slot list per request, filled by `note`
REDACTED = "…"
# a path holding a secret: its prefix, up to the secret (a sign-in link's: /-/_/link/<secret>)
_SECRET_PREFIXES = (SIGNIN_LINK.path.partition("{")[0],)
_SLASHES = re.compile("/{2,}")
_SINK: Batched | None = None  # a served worker's: its lines skip `logging` (configure)
_JSON = [False]  # one JSON object a line (configure)
REQUEST_ID = b"x-request-id"
# A request id a client may choose (a proxy's, to follow a request through): short, and nothing a log
# reader could take for another field or line.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,128}")
UNROUTED = "(unrouted)"  # the route of a request no route took (a 404, a redirect or refusal at the front door)
_json = msgspec.json.Encoder()


def configure(enabled: bool, stream: IO[str] | None = None, *, json: bool = False) -> None:
    """On: every request's line at INFO, whatever REGISTRY_LOG_LEVEL lets through of the rest. With a
    ``stream`` (a served worker's stderr), the lines go there in batches, not through the root
    logger's handler. ``json``: each line a JSON object (the time, the fields, the request id)."""
    log.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)
    log.disabled = not enabled
    _JSON[0] = json
    global _SINK
    if enabled and stream is not None and _SINK is None:
        _SINK = Batched(stream, json=json)
        log.addHandler(_SINK)  # (what else logs to registry.access goes the same way)
        log.propagate = False


def flush() -> None:
    """Write the lines still waiting (a stopping worker: granian may end it before `logging` would)."""
    if _SINK is not None:
        _SINK.flush()


class Batched(logging.Handler):
    """Writes the access log's lines a batch at a time: a write and a flush of the stream per request
    cost the index a third of its throughput (tests/benchmarks/bench_access_log.py). A line waits at
    most FLUSH_SECONDS, or until BATCH lines are waiting; `logging` flushes what is left at exit.

    A line is added without a lock (a deque's append and popleft are atomic: any thread may add
    while another writes); writing takes the handler's lock, so that batches leave one at a time."""

    FLUSH_SECONDS = 0.25
    BATCH = 256

    def __init__(self, stream: IO[str], *, json: bool = False) -> None:
        super().__init__(logging.INFO)
        self._stream, self._json = stream, json
        self._waiting: deque[str | tuple] = deque()  # (a request's fields, or a line made already)
        self._clock = (-1, "")  # (the second and its timestamp, as one value: threads read it unlocked)
        threading.Thread(target=self._flushing, name="access-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        if self._json:
            self._added(json_line(record.created, {"message": record.getMessage()}))
        else:
            self.line(record.getMessage(), record.created)

    def request(self, method: str, path: str, status: int, nbytes: int, ms: float, who: str, rid: bytes) -> None:
        """A request's line, straight from the middleware (no LogRecord is made for it): its fields are
        kept as they are, and the line is made when its batch is written. A batch's lines made
        together cost a worker 6% less CPU a request than each made as it came (bench_pairs.py)."""
        self._added((time.time(), method, path, status, nbytes, ms, who, rid))

    def line(self, message: str, at: float | None = None) -> None:
        """A line of another logger's (the message as it is, at ``at``)."""
        at = time.time() if at is None else at
        self._added(f"{self._stamp(at)} INFO registry.access: {message}\n")

    def _added(self, line: str | tuple) -> None:
        self._waiting.append(line)
        if len(self._waiting) >= self.BATCH:
            self.flush()

    def _stamp(self, at: float) -> str:
        second, stamp = self._clock
        if int(at) != second:  # (one timestamp a second, as the other lines show it)
            second = int(at)
            self._clock = second, (stamp := time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        return f"{stamp},{int(at * 1000) % 1000:03d}"

    def _made(self, fields: tuple) -> str:
        """A request's line, from the fields `request` kept; if it can't be made, a line that says so
        in its place (one field of the wrong kind must not cost the rest of its batch, nor the thread
        that writes them)."""
        at, *request = fields
        try:
            if self._json:
                return json_line(at, request_fields(*request))
            return f"{self._stamp(at)} INFO registry.access: {request_text(*request)}\n"
        except Exception as exc:
            said = f"a request's line could not be made ({type(exc).__name__}: {exc})"
            if self._json:
                return json_line(at, {"message": said})
            return f"{self._stamp(at)} ERROR registry.access: {said}\n"

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        waiting = self._waiting
        lines = [waiting.popleft() for _ in range(len(waiting))]  # (what another thread adds meanwhile: next time)
        if lines:
            text = "".join(line if isinstance(line, str) else self._made(line) for line in lines)
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):  # (a closed stderr at exit: nothing to tell)
                pass

    def _flushing(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # (the timer must outlive any one batch: the lines after it wait on it)
                logging.getLogger("registry.web").exception("access log: writing a batch failed")


def request_fields(method: str, path: str, status: int, nbytes: int, ms: float, who: str, rid: bytes) -> dict:
    """A request's JSON line's fields (the time and the logger's name aside)."""
    return {"method": method, "path": shown_path(path), "status": status or None, "bytes": nbytes,
            "ms": round(ms, 1), "who": who, "request_id": rid.decode()}


def request_text(method: str, path: str, status: int, nbytes: int, ms: float, who: str, rid: bytes) -> str:
    """A request's text line, after the time and the logger's name."""
    return f"{method} {shown_path(path)} {status or '-'} {nbytes} {ms:.1f}ms {who} {rid.decode()}"


def json_line(at: float, fields: dict) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
    return _json.encode({"time": stamp, "logger": "registry.access", **fields}).decode() + "\n"


def request_id(scope: Scope) -> bytes:
    """The client's X-Request-Id if it is a sane one (short, plain characters), else a new one: 64
    random bits, which need no secrecy, only to differ (`random` is reseeded in each forked worker)."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID:
            if _SANE_ID.fullmatch(value):
                return value
            break
    return b"%016x" % _bits(64)


_bits = random.getrandbits


def note(who: Principal | Exception) -> None:
    """Record who the request's credentials resolved to (or that they were refused)."""
    slot = _WHO.get(None)
    if slot is not None:
        slot[0] = who


def shown_path(path: str) -> str:
    """The path as logged: the secret of a sign-in link replaced (also in a path spelled with doubled
    slashes, which a client may send and the router may still take)."""
    if "link/" not in path:  # (the common case, at the cost of a scan)
        return path
    plain = _SLASHES.sub("/", path)
    for prefix in _SECRET_PREFIXES:
        if plain.startswith(prefix) and len(plain) > len(prefix):
            return prefix + REDACTED
    return path


def who_of(found: object, seen: object, authenticator: Authenticator) -> str:
    """Who the request was from: as resolved for it, else as its credentials were last resolved (a
    repeat index request is answered from memory, without resolving them again)."""
    authorization = seen.authorization if isinstance(seen, Incoming) else None
    if found is None and authorization:
        found = authenticator.known(authorization)
    if isinstance(found, Principal):
        return found.actor
    if isinstance(found, Exception):
        return "refused-credentials"  # (not the name they claimed: a mistyped token lands there too)
    return "unchecked" if authorization else "anonymous"  # (credentials that answering didn't need)


class AccessLog:
    def __init__(self, front: ASGIApp, authenticator: Authenticator, *, writes: bool = True,
                 counts: bool = True, repeats: tuple[Repeats, Callable[[], str]] | None = None) -> None:
        self._front, self._authenticator, self._writes, self._counts = front, authenticator, writes, counts
        self._repeats: Repeats | None = repeats[0] if repeats is not None else None
        self._head: Callable[[], str] = repeats[1] if repeats is not None else str  # (the ledger's tip)

    def __getattr__(self, name: str):  # look like the front door to whoever holds us (tests: its `.app`)
        return getattr(self._front, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self._front(scope, receive, send)
        started, method, path = time.perf_counter(), scope["method"], scope["path"]  # (the router rewrites them)
        key = request_key(scope) if self._repeats is not None else None
        if key is not None and self._repeats is not None:
            found = self._repeats.find(key, self._head())
            if found is not None:
                return await self._repeat(scope, send, found[0], found[1], started)
        rid = request_id(scope)
        slot: list = [None]
        token = _WHO.set(slot)
        events = eventlog.serving(rid.decode()) if eventlog.enabled() else None  # (its commits' lines name it)
        answer = [0, 0]  # status, body bytes
        sent: list[tuple[bytes, bytes]] = []  # the headers an answer that may be given again was sent with (repeats.py)

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                if ANSWERED in scope:
                    sent.extend(message.get("headers", ()))
                message = {**message, "headers": [*message.get("headers", ()), (REQUEST_ID, rid)]}
            elif message["type"] == "http.response.body":
                answer[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self._front(scope, receive, counting)
        finally:
            _WHO.reset(token)
            if events is not None:
                eventlog.served(events)
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or scope.get(ROUTE) or UNROUTED
            if self._counts:  # (no answer at all: the client left, 499)
                metrics.request(route, method, answer[0] or 499, seconds)
            keep = self._repeats if key is not None and ANSWERED in scope else None
            logged = self._writes and not log.disabled
            if logged or keep is not None:
                who = who_of(slot[0], scope.get(SCOPE_KEY), self._authenticator)  # (once, for both)
                if logged:
                    self._line(method, path, answer[0], answer[1], seconds * 1000, who, rid)
                if keep is not None and key is not None:
                    keep.keep(key, scope, answer[0], sent, who, route)

    async def _repeat(self, scope: Scope, send: Send, repeat: Repeat, body: bytes, started: float) -> None:
        """A repeat request's answer (repeats.py), logged and counted as the front door's would be."""
        rid = request_id(scope)
        await send({"type": "http.response.start", "status": repeat.status,
                    "headers": [*repeat.headers, (REQUEST_ID, rid)]})
        await send({"type": "http.response.body", "body": body})
        seconds = time.perf_counter() - started
        if self._counts:
            metrics.request(repeat.route, scope["method"], repeat.status, seconds)
        if self._writes and not log.disabled:
            self._line(scope["method"], scope["path"], repeat.status, len(body), seconds * 1000, repeat.who, rid)

    def _line(self, method: str, path: str, status: int, nbytes: int, ms: float, who: str, rid: bytes) -> None:
        if _SINK is not None:
            _SINK.request(method, path, status, nbytes, ms, who, rid)
        elif _JSON[0]:
            log.info("%s", _json.encode(request_fields(method, path, status, nbytes, ms, who, rid)).decode())
        else:
            log.info("%s", request_text(method, path, status, nbytes, ms, who, rid))
