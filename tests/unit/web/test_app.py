"""The API says what it answers: schemathesis generates requests for every operation of the OpenAPI
document and checks each answer against it (status documented, content type and body as described,
never a 5xx), as a workspace admin and as a stranger."""

from __future__ import annotations

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
