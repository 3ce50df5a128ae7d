"""registry/metrics.py: the calls move the right series by the right amounts, labels stay within the
sets the code fixes, and the exposition parses as Prometheus reads it (in-process and from files)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import Histogram
from prometheus_client.parser import text_string_to_metric_families

from registry import metrics
from registry.errors import Conflict, Forbidden, TooLarge


def samples(text: bytes | None = None) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families((text or metrics.exposition()).decode()):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(name: str, **labels: str) -> float:
    return samples().get((name, frozenset(labels.items())), 0.0)


def test_a_request_counts_once_by_route_method_and_status_and_its_time_is_observed():
    before = value("registry_http_requests_total", route="/t/{x}", method="GET", status="200")
    seconds = value("registry_http_request_duration_seconds_sum", route="/t/{x}", method="GET")
    for _ in range(3):
        metrics.request("/t/{x}", "GET", 200, 0.25)
    assert value("registry_http_requests_total", route="/t/{x}", method="GET", status="200") == before + 3
    assert value("registry_http_request_duration_seconds_sum", route="/t/{x}", method="GET") == seconds + 0.75
    assert value("registry_http_request_duration_seconds_bucket", route="/t/{x}", method="GET", le="0.25") >= 3


@pytest.mark.parametrize("method", ["BREW", "get", "PROPFIND", "X" * 200])
def test_a_method_no_one_serves_is_counted_as_other(method):
    before = value("registry_http_requests_total", route="/t/m", method="other", status="405")
    metrics.request("/t/m", method, 405, 0.001)
    assert value("registry_http_requests_total", route="/t/m", method="other", status="405") == before + 1
    assert not any(dict(labels).get("method") == method for _, labels in samples())


def test_publishes_count_bytes_only_of_new_files_and_refusals_by_status_and_class():
    new = value("registry_upload_bytes_total", kind="wheel")
    metrics.published("a-1.0-py3-none-any.whl", 1000, new=True)
    metrics.published("a-1.0-py3-none-any.whl", 1000, new=False)
    metrics.published("a-1.0.tar.gz", 10, new=True)
    assert value("registry_upload_bytes_total", kind="wheel") == new + 1000
    for error in (Conflict("x"), Forbidden("y"), TooLarge("z")):
        before = value("registry_publish_refusals_total", status=str(error.status), reason=type(error).__name__)
        metrics.refused(error, error.status)
        assert value("registry_publish_refusals_total", status=str(error.status),
                     reason=type(error).__name__) == before + 1


def test_a_blob_call_is_timed_and_counted_as_an_error_only_when_it_fails():
    errors = value("registry_blob_store_errors_total", store="files", operation="t-reading")
    calls = value("registry_blob_store_duration_seconds_count", store="files", operation="t-reading")
    with metrics.blob_call("files", "t-reading"):
        pass
    with pytest.raises(FileNotFoundError), metrics.blob_call("files", "t-reading"):
        raise FileNotFoundError("not there: an answer, not a failure")
    with pytest.raises(OSError), metrics.blob_call("files", "t-reading"):
        raise OSError("the disk failed")
    assert value("registry_blob_store_duration_seconds_count", store="files", operation="t-reading") == calls + 3
    assert value("registry_blob_store_errors_total", store="files", operation="t-reading") == errors + 1


@pytest.mark.parametrize(("doing", "named"), [("reading a file", "reading"), ("storing a file", "storing"),
                                              ("when asked for bucket 'b' at http://x", "checking")])
def test_what_a_bucket_call_was_doing_is_named_by_a_word(doing, named):
    assert metrics.operation(doing) == named


def test_cache_counts_are_added_once_whatever_how_often_they_are_seen():
    hits, misses = value("registry_cache_hits_total", cache="t-cache"), value("registry_cache_misses_total",
                                                                                cache="t-cache")
    metrics.caches_seen([("t-cache", 5, 2)])
    metrics.caches_seen([("t-cache", 5, 2)])
    metrics.caches_seen([("t-cache", 8, 2)])
    assert value("registry_cache_hits_total", cache="t-cache") == hits + 8
    assert value("registry_cache_misses_total", cache="t-cache") == misses + 2


def test_a_commit_is_timed_by_what_came_of_it():
    failed = value("registry_ledger_commit_duration_seconds_count", result="failed")
    with pytest.raises(RuntimeError), metrics.commit_timed():
        raise RuntimeError
    with metrics.commit_timed() as result:
        result[0] = "unchanged"
    assert value("registry_ledger_commit_duration_seconds_count", result="failed") == failed + 1
    assert value("registry_ledger_commit_duration_seconds_count", result="unchanged") >= 1


def test_tallied_requests_land_in_the_buckets_observe_would_have_put_them_in():
    for seconds in (0.0005, 0.0006, 0.7, 100.0):
        metrics.request("/t/b", "GET", 200, seconds)
    assert value("registry_http_request_duration_seconds_bucket", route="/t/b", method="GET", le="0.0005") == 1
    assert value("registry_http_request_duration_seconds_bucket", route="/t/b", method="GET", le="0.001") == 2
    assert value("registry_http_request_duration_seconds_bucket", route="/t/b", method="GET", le="1.0") == 3
    assert value("registry_http_request_duration_seconds_bucket", route="/t/b", method="GET", le="+Inf") == 4
    assert value("registry_http_request_duration_seconds_count", route="/t/b", method="GET") == 4


def test_gauges_are_read_at_the_scrape_and_one_that_cant_be_read_is_left_out():
    text = metrics.exposition(metrics.Gauges(lambda: {"registry_t_bytes": ("t", 42.0), "registry_t_none": ("t", None)}))
    assert samples(text)[("registry_t_bytes", frozenset())] == 42.0
    assert not any(name == "registry_t_none" for name, _ in samples(text))


def test_processes_counting_in_one_directory_are_summed_and_a_fresh_start_empties_it(tmp_path):
    """What `registry serve` does: the directory made fresh, then workers (forked here) count in it."""
    code = f"""
import os, sys
from pathlib import Path
from registry import metrics
metrics.use_directory(Path({str(tmp_path / 'm')!r}), fresh=True)
metrics.request("/before-fork", "GET", 200, 0.1)
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        for _ in range(5):
            metrics.request("/x", "GET", 200, 0.1)
        metrics.flush()  # (what a worker does every second, and as it stops)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
    metrics.exited(pid)
sys.stdout.write(metrics.exposition().decode())
"""
    env = {k: v for k, v in os.environ.items() if k != metrics.DIRECTORY_ENV}
    for _ in range(2):  # (the second start begins from nothing again)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
        found = samples(out.encode())
        assert found[("registry_http_requests_total", frozenset(dict(route="/x", method="GET",
                                                                       status="200").items()))] == 15
        assert found[("registry_http_requests_total", frozenset(dict(route="/before-fork", method="GET",
                                                                       status="200").items()))] == 1


def test_a_servers_directory_is_new_private_never_on_the_data_disk_and_a_dead_servers_is_swept(tmp_path, monkeypatch):
    """`serving_directory`: in memory (or the temporary directory), mode 0700, a name of this process;
    one a killed server left (its pid no longer alive) is removed, a live one's is kept."""
    monkeypatch.setattr(metrics, "MEMORY", tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f"{metrics.PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{metrics.PREFIX}{os.getppid()}-def"
    for folder in (left, live):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"\0" * 64)
    made = metrics.serving_directory()
    assert made.parent == tmp_path and made.name.startswith(f"{metrics.PREFIX}{os.getpid()}-")
    assert made.stat().st_mode & 0o777 == 0o700 and list(made.iterdir()) == []
    assert not left.exists() and live.exists()
    assert metrics.serving_directory() != made  # (each start its own)


EXAMPLES = itertools.count()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(metrics.LATENCY), st.floats(0, 60)), max_size=300))
def test_requests_noted_then_flushed_count_as_observing_each_would(durations):
    """The durations noted and folded at once fill the same buckets, sum and count as prometheus_client's
    `observe` of each (a duration equal to a bound is in that bound's bucket)."""
    route = f"/p/{next(EXAMPLES)}"  # (a series of its own: the metrics are the process's, and add up)
    reference = Histogram("t", "t", buckets=metrics.LATENCY, registry=None)
    for seconds in durations:
        metrics.request(route, "GET", 200, seconds)
        reference.observe(seconds)
    metrics.flush()
    folded = metrics.REQUEST_SECONDS.labels(route, "GET")
    assert [b.get() for b in folded._buckets] == [b.get() for b in reference._buckets]
    assert folded._sum.get() == pytest.approx(reference._sum.get())
    assert metrics.REQUESTS.labels(route, "GET", "200")._value.get() == len(durations)


def test_what_is_noted_stays_bounded_where_nothing_flushes():
    """A test's app, or a worker whose loop is busy, never flushes: each series' list is folded into
    the metrics once it holds FOLD_AT, and nothing is lost."""
    route = "/bounded/{x}"
    before = value("registry_http_requests_total", route=route, method="GET", status="200")
    for _ in range(3 * metrics.FOLD_AT + 5):
        metrics.request(route, "GET", 200, 0.001)
        assert len(metrics._pending.get((route, "GET", 200), ())) < metrics.FOLD_AT
    after = value("registry_http_requests_total", route=route, method="GET", status="200")
    assert after == before + 3 * metrics.FOLD_AT + 5
