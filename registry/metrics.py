"""Every metric the registry exports (GET /_/metrics), declared here and nowhere else, and the
one-line calls that move them.

Under `registry serve` the workers share nothing, so each writes its counters to memory-mapped files
in a directory made fresh at every start (`prometheus_client`'s multiprocess mode, `serving_directory`),
and a scrape sums every worker's files, those of workers that have exited included (their counts
happened). Gauges are not written there: what they measure (the journal, the history index, a
replica's lag) is the same for every worker and is read when a scrape asks (`Gauges`). Caches count
hits and misses in plain integers on the hot path; `caches_seen` adds what is new to the counters.

Labels take only values from a set fixed by the code (route templates, never paths; an error's class
and status; an operation's name), so no request can add a series.
"""

from __future__ import annotations

import bisect
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

P = ParamSpec("P")
R = TypeVar("R")
DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"  # (prometheus_client's own name for it)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Request latencies: an index page from memory is well under a millisecond, an upload of a big file
# takes seconds.
LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REGISTRY = CollectorRegistry(auto_describe=True)  # (a process's own; a served registry's scrape reads the files)

REQUESTS = Counter("registry_http_requests_total", "HTTP requests answered, by route template, method and status",
                   ["route", "method", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("registry_http_request_duration_seconds", "Time to answer a request, by route template",
                            ["route", "method"], buckets=LATENCY, registry=REGISTRY)
PUBLISHES = Counter("registry_publishes_total", "Uploads that were published (or were there already, identical)",
                    ["outcome"], registry=REGISTRY)
REFUSALS = Counter("registry_publish_refusals_total", "Uploads refused, by status and the refusal's class",
                   ["status", "reason"], registry=REGISTRY)
UPLOAD_BYTES = Counter("registry_upload_bytes_total", "Bytes of distribution files published, by kind",
                       ["kind"], registry=REGISTRY)
BLOB_SECONDS = Histogram("registry_blob_store_duration_seconds", "Calls to the blob store, by store and operation",
                         ["store", "operation"], buckets=LATENCY, registry=REGISTRY)
BLOB_ERRORS = Counter("registry_blob_store_errors_total", "Calls to the blob store that failed",
                      ["store", "operation"], registry=REGISTRY)
COMMIT_SECONDS = Histogram("registry_ledger_commit_duration_seconds", "Ledger transactions, lock wait included",
                           ["result"], buckets=LATENCY, registry=REGISTRY)
CACHE_HITS = Counter("registry_cache_hits_total", "Lookups a cache answered, by cache name (registry/cache.py)",
                     ["cache"], registry=REGISTRY)
CACHE_MISSES = Counter("registry_cache_misses_total", "Lookups a cache could not answer, by cache name",
                       ["cache"], registry=REGISTRY)
UPSTREAM_FETCHES = Counter("registry_upstream_fetches_total", "Fetches from upstream indexes: project pages, files",
                           ["kind", "outcome"], registry=REGISTRY)

# Requests are noted here, each one's duration appended to its series' list, and added to the metrics
# by `flush` (every second, and at a scrape), which sorts each list and counts its buckets at once: a
# counter's and a histogram's calls in multiprocess mode cost 14 µs a request (a lock, a pid check
# and an mmap write each), a tenth of an index page's whole cost, and even a tally under a lock with a
# bisect per request cost 6% of an index page's instructions (tests/benchmarks/bench_metrics.py).
# `request` and `flush` run on one thread, the event loop's (the access log's middleware, the
# lifespan's flushes, the scrape's), so no lock; a list that grows to FOLD_AT is flushed at once
# (bounded, also where nothing flushes: a test's app).
_pending: dict[tuple[str, str, int], list[float]] = {}  # (route, method, status) -> durations
FOLD_AT = 4096
_caches_seen: dict[str, tuple[int, int]] = {}
FLUSH_SECONDS = 1.0
_INF = float("inf")


def _forked() -> None:
    """A forked process starts with nothing noted: what its parent noted is its parent's to flush."""
    _pending.clear()


os.register_at_fork(after_in_child=_forked)


MEMORY = Path("/dev/shm")  # (a tmpfs on Linux, in containers too)
PREFIX = "pypi-registry-metrics-"


def serving_directory() -> Path:
    """A new, empty directory for a server's counts, never on its data disk: prometheus_client writes
    them through memory maps into files it grows sparse, and a write to a page the disk has no room for
    is a SIGBUS that kills the worker (on a full data disk, the first new series killed it). In memory
    (/dev/shm) where there is one, else the system's temporary directory; private to this user, named
    after this process, and those of servers that are gone (killed) are removed here."""
    base = MEMORY if os.access(MEMORY, os.W_OK | os.X_OK) else Path(tempfile.gettempdir())
    for left in base.glob(f"{PREFIX}*"):
        pid = left.name[len(PREFIX):].split("-", 1)[0]
        try:
            if pid.isdigit() and not _alive(int(pid)) and left.stat().st_uid == os.getuid():
                shutil.rmtree(left, ignore_errors=True)
        except OSError:  # (swept meanwhile by another server starting)
            continue
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))  # (mode 0700, a name not guessed)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's process)
        return True
    return True


def use_directory(directory: Path, *, fresh: bool) -> None:
    """Count in ``directory``'s files from now on (and so will processes forked or started with this
    environment); ``fresh``: empty it first."""
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[DIRECTORY_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # (read at import, maybe before the variable was set)
    for metric in (REQUESTS, REQUEST_SECONDS, PUBLISHES, REFUSALS, UPLOAD_BYTES, BLOB_SECONDS, BLOB_ERRORS,
                   COMMIT_SECONDS, CACHE_HITS, CACHE_MISSES, UPSTREAM_FETCHES):
        with metric._lock:  # (children made before count in memory only; `clear` warns in this mode)
            metric._metrics = {}
    _pending.clear()


def shared() -> Path | None:
    """The directory the workers count in, if they do."""
    found = os.environ.get(DIRECTORY_ENV)
    return Path(found) if found else None


def exited(pid: int) -> None:
    """A worker is gone: its live gauges (none are written; see the module's doc) go with it."""
    if (directory := shared()) is not None:
        mark_process_dead(pid, str(directory))


# --- the calls that move them: one line where it happens ----------------------------------------


def request(route: str, method: str, status: int, seconds: float) -> None:
    """A request answered (the access log's middleware: web/access.py), noted until `flush`."""
    key = (route, method, status)
    durations = _pending.get(key)
    if durations is None:
        _pending[key] = [seconds]
    else:
        durations.append(seconds)
        if len(durations) >= FOLD_AT:
            _fold(key, _pending.pop(key))


def flush() -> None:
    """Add the requests noted since the last flush to the metrics (where a scrape sees them)."""
    while _pending:
        _fold(*_pending.popitem())


def _fold(key: tuple[str, str, int], durations: list[float]) -> None:
    route, method, status = key
    method = method if method in METHODS else "other"
    REQUESTS.labels(route, method, str(status)).inc(len(durations))
    histogram = REQUEST_SECONDS.labels(route, method)
    histogram._sum.inc(sum(durations))  # (what `observe` does, for many observations at once)
    durations.sort()
    below = 0  # (the buckets count what is at most their bound, and more than the one before's)
    for bucket, bound in zip(histogram._buckets, (*LATENCY, _INF), strict=True):
        upto = bisect.bisect_right(durations, bound)
        if upto > below:
            bucket.inc(upto - below)
        below = upto


def published(filename: str, nbytes: int, *, new: bool) -> None:
    UPLOAD_BYTES.labels("wheel" if filename.endswith(".whl") else "sdist").inc(nbytes if new else 0)
    PUBLISHES.labels("published" if new else "identical").inc()


def refused(error: Exception, status: int) -> None:
    """An upload refused: by its status and the refusal's class (`registry.errors`: a fixed set)."""
    REFUSALS.labels(str(status), type(error).__name__).inc()


def operation(doing: str) -> str:
    """A bounded name for what a call to the bucket was doing ("reading a file": reading)."""
    first = doing.split(" ", 1)[0]
    return "checking" if first == "when" else first


@contextmanager
def blob_call(store: str, operation: str) -> Iterator[None]:
    """Time a call to the blob store, and count it as an error if it raises."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, (GeneratorExit, FileNotFoundError)):  # (a file not there is an answer)
            BLOB_ERRORS.labels(store, operation).inc()
        raise
    finally:
        BLOB_SECONDS.labels(store, operation).observe(time.perf_counter() - started)


def blob_timed(store: str, operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`blob_call` around every call of a blob store's method (a decorator)."""
    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            with blob_call(store, operation):
                return method(*args, **kwargs)
        return timed
    return wrap


@contextmanager
def commit_timed() -> Iterator[list[str]]:
    """Time a ledger transaction; the caller puts what came of it in the list ("committed" unless told)."""
    started, result = time.perf_counter(), ["committed"]
    try:
        yield result
    except BaseException:
        result[0] = "failed"
        raise
    finally:
        COMMIT_SECONDS.labels(result[0]).observe(time.perf_counter() - started)


def upstream_fetch(kind: str, *, failed: bool = False) -> None:
    UPSTREAM_FETCHES.labels(kind, "failed" if failed else "ok").inc()


def caches_seen(counts: Iterable[tuple[str, int, int]]) -> None:
    """Each cache's (name, hits, misses) so far in this process: what is new since the last call is added."""
    for name, hits, misses in counts:
        before = _caches_seen.get(name, (0, 0))
        if hits > before[0]:
            CACHE_HITS.labels(name).inc(hits - before[0])
        if misses > before[1]:
            CACHE_MISSES.labels(name).inc(misses - before[1])
        _caches_seen[name] = (max(hits, before[0]), max(misses, before[1]))


# --- a scrape ---------------------------------------------------------------------------------


class Gauges:
    """Gauges read when a scrape asks: ``read`` returns {name: (help, value)}, None values left out."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, float | None]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        for name, (text, value) in self._read().items():
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)


def exposition(gauges: Gauges | None = None, *, flushed: bool = False) -> bytes:
    """The text format: every worker's counts (or this process's, when not served), and ``gauges``.
    ``flushed``: the caller flushed on the event loop's thread (a scrape reads in another thread)."""
    if not flushed:
        flush()  # (this process's; the others' are at most FLUSH_SECONDS old)
    directory = shared()
    if directory is None:
        scraped = REGISTRY
    else:
        scraped = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(scraped, path=str(directory))
    if gauges is None:
        return generate_latest(scraped)
    return generate_latest(scraped) + generate_latest(_Only(gauges))


class _Only(CollectorRegistry):
    def __init__(self, gauges: Gauges) -> None:
        super().__init__(auto_describe=False)
        self.register(gauges)
