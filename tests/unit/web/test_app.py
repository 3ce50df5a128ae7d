"""The API says what it answers: schemathesis generates requests for every operation of the OpenAPI
document and checks each answer against it (status documented, content type and body as described,
never a 5xx), as a workspace admin and as a stranger."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry.web.app import create_asgi
from tests.support.asgi import call
from tests.support.world import publish

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api_schema(world, dists):
    publish(world.reg, world.principal("dev@acme.test"), dists[("Acme.Utils", "1.0.0")][1])
    app = create_asgi(world.reg.settings, world.reg)
    return schemathesis.openapi.from_asgi("/api/schema/openapi.json", app)


def test_the_document_lists_no_internal_route(api_schema):
    paths = api_schema.raw_schema["paths"]
    assert not [p for p in paths if "{tail}" in p or "{api}" in p]
    for path, operations in paths.items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "404"} <= codes, (method, path, codes)
            assert operation["responses"]["404"]["content"].keys() == {"application/problem+json"}


BOUNDED = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("who", ["wsadmin@acme.test", None])
def test_every_answer_is_as_documented(api_schema, world, who):
    """Every operation, a bounded number of generated requests each. (Operations are walked here
    rather than with schemathesis's lazy pytest fixtures, which pytest 9 no longer supports.)"""
    headers = world.basic(who) if who else {}
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @BOUNDED
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # one report for all, not just the first operation that fails
            failures.append(f"{operation.label}: {exc}")
    assert operations >= 13
    assert not failures, "\n\n".join(failures)


async def test_health_says_how_the_servers_retention_runs_went_and_when_the_next_is(world, tmp_path):
    from datetime import timedelta

    import msgspec

    from registry import model, operations, retention_runs
    from registry.datadir import Registry
    from tests.support.helpers import make_wheel

    async def health(settings) -> dict:
        # (no lifespan: the app's own scheduler would run too, on today's clock, and race the test's steps)
        answer = await call(create_asgi(settings, Registry.open(settings)), "GET", "/_/health")
        assert answer.status == 200
        return json.loads(answer.body)

    off = await health(world.reg.settings)
    assert off["status"] == "ok" and off["retention"] == {"apply": "off", "interval_seconds": 86400,
                                                          "next_run": None, "last_run": None}
    for v in ("1.0", "1.1", "1.2"):
        publish(world.reg, world.principal("dev@acme.test"), make_wheel(tmp_path, "Acme.Utils", v))
    operations.set_retention(world.reg, world.principal("owner@acme.test"), "api", "acme", "two", repository="utils",
                             keep_newest=2)
    daily = msgspec.structs.replace(world.reg.settings, retention_apply="daily")
    now = model.now()
    retention_runs.Scheduler(Registry.open(msgspec.structs.replace(daily, min_free_bytes=2**62))).step(now)  # (507)
    said = await health(daily)
    assert said["status"] == "retention-failed" and "tries again at" in said["action"]
    assert said["retention"]["last_run"] == {"started": now.isoformat(), "finished": said["retention"]["last_run"][
        "finished"], "deleted": 0, "refused": 0, "failed": True}
    assert said["retention"]["next_run"] > now.isoformat()
    assert "disk" not in said["action"]  # (what went wrong where is for the admins and the log, not anyone)
    retention_runs.Scheduler(Registry.open(daily)).step(now + timedelta(days=1))  # (the next run: the disk freed)
    said = await health(daily)
    assert said["status"] == "ok" and said["retention"]["last_run"]["deleted"] == 1


def test_one_worker_collects_at_a_time(world, monkeypatch):
    """The workers' maintenance rounds line up: a worker whose turn finds another collecting skips
    the collection (one walk through the ledger at a time, one child process for a big one)."""
    import os

    import anyio
    import msgspec

    from registry import locks
    from registry.web import app

    reg = world.reg
    monkeypatch.setattr(reg, "settings", msgspec.structs.replace(reg.settings, gc_grace_seconds=0))
    orphan = reg.blobs.put_bytes(b"an upload that never committed")
    held = locks.first(reg.settings.collect_lock_path)  # (another worker, collecting)
    assert held is not None
    try:
        anyio.run(app._collect, reg)
        assert reg.blobs.exists(orphan)  # (skipped)
    finally:
        os.close(held)
    anyio.run(app._collect, reg)
    assert not reg.blobs.exists(orphan)  # (its turn: collected)
