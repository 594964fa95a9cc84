"""Property-based API tests: schemathesis generates requests for every operation of
/api/schema/ and checks each response against the schema.

The Django WSGI app runs in-process. Callers rotate between a signed-in handler, a
signed-in youth and a supervisor (API tokens), and about half the generated path parameters are
swapped for a real case, task or public token, so the operations do real work rather
than only answering 404. Every operation must give no server error and only responses
that its schema documents (status, content type, headers and body).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import caches
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi import checks as openapi_checks

from casework.models import CoordinationTask
from casework.states import CaseState
from config.wsgi import application
from tests.casework.steps import case_in

EXAMPLES_PER_OPERATION = 5
MIN_TOTAL_CASES = 300
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
generated = {"cases": 0, "operations": set()}


# Loaded once at collection: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def _keep_test_connection():
    # The real WSGI handler closes the database connection when a request ends, which
    # would end the test's transaction on PostgreSQL; Django's own test client does
    # the same disconnection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(tree, settings, tmp_path, _keep_test_connection):
    """Real rows for the generated requests to hit, and tokens for three callers."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.API_THROTTLE_RATES = {scope: "100000/hour" for scope in settings.API_THROTTLE_RATES}
    caches["throttle"].clear()
    coordinating = case_in(tree, CaseState.COORDINATING)
    from casework import services

    services.case_refer(
        case=coordinating, actor=tree.handler, partner=tree.partner, instructions="请协调"
    )
    from django.core.files.uploadedfile import SimpleUploadedFile

    from casework.services.evidence import evidence_add

    scan = SimpleUploadedFile("scan.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "image/png")
    evidence = evidence_add(case=coordinating, actor=tree.handler, file=scan)
    complaint = services.complaint_submit(case=coordinating, actor=tree.youth, body="太慢了")
    cases = [case_in(tree, CaseState.SUBMITTED), coordinating]
    return {
        "evidence": [evidence.pk],
        "complaints": [complaint.pk],
        "references": [c.reference for c in cases],
        "tokens": [c.public_token for c in cases],
        "tasks": list(CoordinationTask.objects.values_list("pk", flat=True)),
        "auth": [
            f"Token {Token.objects.create(user=tree.handler).key}",
            f"Token {Token.objects.create(user=tree.youth).key}",
            f"Token {Token.objects.create(user=tree.city_supervisor).key}",
        ],
    }


def _real(value, choices, n):
    # Swap about half the generated values for a real one, chosen by the example number.
    return choices[n % len(choices)] if choices and n % 2 == 0 else value


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, world):
    n = generated["cases"]
    generated["cases"] += 1
    generated["operations"].add(case.operation.label)
    params = case.path_parameters or {}
    if "reference" in params:
        params["reference"] = _real(params["reference"], world["references"], n)
    if "token" in params:
        params["token"] = _real(params["token"], world["tokens"], n)
    if "task_id" in params:
        params["task_id"] = _real(params["task_id"], world["tasks"], n)
    if "evidence_id" in params:
        params["evidence_id"] = _real(params["evidence_id"], world["evidence"], n)
    if "complaint_id" in params:
        params["complaint_id"] = _real(params["complaint_id"], world["complaints"], n)
    headers = {"Authorization": world["auth"][(n // 2) % len(world["auth"])]}
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_enough_generated_cases_covered_every_operation():
    """Runs after the generated tests (same module, file order): a few hundred cases in all."""
    if not generated["cases"]:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert generated["operations"] == operations
    assert generated["cases"] >= MIN_TOTAL_CASES, generated["cases"]
    print(f"schemathesis: {generated['cases']} generated cases over {len(operations)} operations")
