"""The REST API: error format, concurrency, pagination and filters, rate limits, logging."""

from __future__ import annotations

import logging
import os

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.test import APIClient

from casework.models import Case
from casework.states import CaseState
from tests.casework.steps import case_in, snapshot, submit

pytestmark = pytest.mark.django_db
ERROR_KEYS = {"code", "message", "field_errors"}


@pytest.fixture(autouse=True)
def _fresh_counters():
    caches["throttle"].clear()


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_every_failure_has_the_one_error_body(tree):
    case = case_in(tree, CaseState.SUBMITTED)
    handler = as_user(tree.handler)
    failures = [
        APIClient().get("/api/cases/"),  # 401
        handler.get("/api/cases/YV-NOSUCH00/"),  # 404
        handler.post(f"/api/cases/{case.reference}/accept/", {}, format="json"),  # 428
        handler.post(f"/api/cases/{case.reference}/resolve/", {"version": 0}, format="json"),
        as_user(tree.youth).post(
            f"/api/cases/{case.reference}/accept/", {"version": 0}, format="json"
        ),  # 403
        handler.post(
            f"/api/cases/{case.reference}/accept/",
            "{not json",
            content_type="application/json",
            HTTP_IF_MATCH='"0"',
        ),  # 400 parse
        handler.delete(f"/api/cases/{case.reference}/"),  # 405
        handler.get("/api/no-such-endpoint/"),  # 404
    ]
    assert [r.status_code for r in failures] == [401, 404, 428, 400, 403, 400, 405, 404]
    for response in failures:
        assert set(response.json()) == ERROR_KEYS
    assert (
        failures[3].json()["field_errors"]
        == {
            "outcome": ["This field is required."],
            "note": ["This field is required."],
        }
        or "outcome" in failures[3].json()["field_errors"]
    )
    assert failures[0]["WWW-Authenticate"].startswith("Token")


def test_invalid_state_is_409_and_changes_nothing(tree):
    case = case_in(tree, CaseState.ACCEPTED)
    before = snapshot(case)
    response = as_user(tree.handler).post(
        f"/api/cases/{case.reference}/accept/", HTTP_IF_MATCH=f'"{case.version}"'
    )
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert snapshot(case) == before


def test_a_stale_client_gets_409_not_a_lost_update(tree):
    # given two clients that read the same version
    case = case_in(tree, CaseState.COORDINATING)
    etag = as_user(tree.handler).get(f"/api/cases/{case.reference}/")["ETag"]
    # when the first asks the youth a question and the second resolves with the old version
    first = as_user(tree.handler).post(
        f"/api/cases/{case.reference}/request-info/", {"question": "请补充"}, HTTP_IF_MATCH=etag
    )
    second = as_user(tree.city_supervisor).post(
        f"/api/cases/{case.reference}/resolve/",
        {"outcome": "solved", "note": "已解决"},
        HTTP_IF_MATCH=etag,
    )
    # then the second is refused and the first's change stands
    assert first.status_code == 200 and first["ETag"] != etag
    assert second.status_code == 409 and second.json()["code"] == "conflict"
    assert Case.objects.get(pk=case.pk).state == CaseState.AWAITING_YOUTH


def test_if_match_and_version_must_agree(tree):
    case = case_in(tree, CaseState.SUBMITTED)
    response = as_user(tree.handler).post(
        f"/api/cases/{case.reference}/accept/", {"version": 5}, HTTP_IF_MATCH='"0"'
    )
    assert response.status_code == 400 and "version" in response.json()["field_errors"]


def test_list_is_paginated_and_filtered(tree):
    for _ in range(3):
        submit(tree)
    closed = case_in(tree, CaseState.CLOSED)
    handler = as_user(tree.handler)
    page = handler.get("/api/cases/", {"page_size": 2}).json()
    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    only_closed = handler.get("/api/cases/", {"state": "closed"}).json()
    assert [c["reference"] for c in only_closed["results"]] == [closed.reference]
    both = handler.get("/api/cases/?state=closed&state=submitted").json()
    assert both["count"] == 4
    assert handler.get("/api/cases/", {"category": "legal"}).json()["count"] == 0
    assert handler.get("/api/cases/", {"state": "bogus"}).status_code == 400
    assert handler.get("/api/cases/", {"org": 10**30}).status_code == 400
    assert handler.get("/api/cases/", {"page": 99}).status_code == 404


def test_list_reads_in_a_fixed_number_of_queries(tree, django_assert_max_num_queries):
    for _ in range(2):
        case_in(tree, CaseState.COORDINATING)
    client = as_user(tree.city_supervisor)
    with django_assert_max_num_queries(8) as few:
        assert client.get("/api/cases/").status_code == 200
    for _ in range(6):
        submit(tree)
    client = as_user(tree.city_supervisor)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/api/cases/").json()["count"] == 8


def test_submission_is_rate_limited_per_user_and_per_ip(tree, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "submit": "2/hour"}
    body = {"category": "study", "region_code": "440105", "title": "求助", "description": "内容"}
    youth = as_user(tree.youth)
    codes = [youth.post("/api/cases/", body, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    refused = youth.post("/api/cases/", body, format="json")
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) >= 1
    # another youth from another address is counted apart
    other = as_user(tree.other_youth)
    assert other.post("/api/cases/", body, format="json", REMOTE_ADDR="10.9.9.9").status_code == 201
    # the same address is counted across users
    third = as_user(tree.branch_handler)
    assert third.post("/api/cases/", body, format="json").status_code == 429
    assert Case.objects.count() == 3


def test_login_and_public_lookups_are_rate_limited(tree, settings):
    settings.API_THROTTLE_RATES = {
        **settings.API_THROTTLE_RATES,
        "login": "2/minute",
        "public_token": "2/minute",
    }
    client = APIClient()
    creds = {"username": tree.youth.username, "password": "wrong"}
    codes = [client.post("/api/auth/token/", creds).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    case = submit(tree)
    codes = [client.get(f"/api/public/cases/{case.public_token}/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_token_login(tree):
    response = APIClient().post(
        "/api/auth/token/", {"username": tree.youth.username, "password": "pass-1234"}
    )
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/me/").json()["username"] == tree.youth.username


def test_refused_authorization_is_logged_without_personal_data(tree, caplog):
    tree.youth.display_name = "陈小雨"
    tree.youth.save()
    case = submit(tree, title="我的名字是陈小雨")
    with caplog.at_level(logging.WARNING, logger="casework.authz"):
        as_user(tree.other_youth).get(f"/api/cases/{case.reference}/")
        as_user(tree.youth).post(f"/api/cases/{case.reference}/accept/", {"version": 0})
    records = [r for r in caplog.records if r.name == "casework.authz"]
    assert [r.getMessage().split()[2] for r in records] == ["code=not_found", "code=forbidden"]
    for record in records:
        text = record.getMessage()
        assert f"user={tree.other_youth.pk}" in text or f"user={tree.youth.pk}" in text
        for personal in ("陈小雨", tree.youth.username, tree.other_youth.username, case.reference):
            assert personal not in text


def _redis_url() -> str | None:
    url = os.environ.get("REDIS_URL") or os.environ.get("CACHE_URL") or ""
    if not url and os.environ.get("CI", "").lower() == "true":
        url = "redis://127.0.0.1:6379/15"
    return url or None


@pytest.mark.skipif(_redis_url() is None, reason="needs Redis (REDIS_URL; always in CI)")
def test_redis_counters_are_shared_between_processes(tree, settings):
    """Two cache clients (as two web processes would have) count against one limit."""
    from casework.api import throttling

    url = _redis_url()
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "submit": "2/hour"}
    process_a = RedisCache(url, {"KEY_PREFIX": "yv-test-throttle"})
    process_b = RedisCache(url, {"KEY_PREFIX": "yv-test-throttle"})
    process_a.clear()

    class Request:
        user = tree.youth
        META = {"REMOTE_ADDR": "127.0.0.7"}

    def allowed(cache) -> bool:
        throttle = throttling.SUBMIT[0]()
        type(throttle).cache = cache  # the process's own connection
        try:
            return throttle.allow_request(Request(), None)
        finally:
            del type(throttle).cache

    assert [allowed(process_a), allowed(process_b), allowed(process_a)] == [True, True, False]
    process_a.clear()


def test_case_body_renders_exactly_what_drf_renders(tree):
    """CaseSerializer's own rendering path (no per-row introspection) gives DRF's output."""
    from rest_framework import serializers as drf

    from casework import permissions
    from casework.api import selectors, serializers

    cases = [case_in(tree, state) for state in (CaseState.SUBMITTED, CaseState.COORDINATING)]
    cases.append(case_in(tree, CaseState.REJECTED))
    views = {
        permissions.ACCESS_STAFF: serializers.STAFF_FIELDS,
        permissions.ACCESS_YOUTH: serializers.YOUTH_FIELDS,
        permissions.ACCESS_PARTNER: serializers.PARTNER_FIELDS,
        None: serializers.AFTER_MOVE_FIELDS,
    }
    page = list(selectors.api_cases(tree.city_supervisor).filter(pk__in=[c.pk for c in cases]))
    assert len(page) == 3
    for view, keep in views.items():
        access = {c.pk: view for c in page}
        ours = serializers.CaseSerializer(page, many=True, context={"access": access}).data
        single = serializers.CaseSerializer(page[0], context={"access": access}).data
        reference = serializers.CaseSerializer(context={"access": access})
        theirs = [
            {
                k: v
                for k, v in drf.ModelSerializer.to_representation(reference, c).items()
                if k in keep
            }
            for c in page
        ]
        assert [dict(x) for x in ours] == theirs
        assert list(ours[0]) == list(theirs[0])  # same keys in the same order
        assert dict(single) == theirs[0]


def test_rate_limit_counts_one_integer_per_period_and_not_refusals(tree, settings):
    """Fixed window: a count per caller and period in the cache; a refusal is not counted,
    and the wait is what is left of the period."""
    from django.core.cache import caches

    from casework.api import throttling

    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "submit": "2/minute"}

    class Request:
        user = tree.youth
        META = {"REMOTE_ADDR": "127.0.0.9"}

    clock = [6000.0]  # the start of a minute
    throttle_cls = throttling.SUBMIT[0]

    def attempt():
        throttle = throttle_cls()
        throttle.timer = lambda: clock[0]
        return throttle.allow_request(Request(), None), throttle

    assert attempt()[0] and attempt()[0]
    clock[0] = 6040.0
    refused, throttle = attempt()
    assert not refused and throttle.wait() == 20.0
    key = f"throttle:submit:u{tree.youth.pk}:100"
    assert caches["throttle"].get(key) == 2  # the refusal was not counted
    clock[0] = 6060.0  # the next minute: a new count
    assert attempt()[0]
    assert caches["throttle"].get(f"throttle:submit:u{tree.youth.pk}:101") == 1


def test_token_authentication_reads_the_user_and_memberships_as_drf_would(tree):
    """The one-statement token read: the same user, the memberships cached on it, and
    DRF's own answers for a wrong token and an inactive user."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework import authentication as drf
    from rest_framework import exceptions
    from rest_framework.authtoken.models import Token

    from casework import permissions
    from casework.api.authentication import TokenAuthentication

    token, _ = Token.objects.get_or_create(user=tree.handler)
    with CaptureQueriesContext(connection) as queries:
        user, got = TokenAuthentication().authenticate_credentials(token.key)
    if connection.vendor == "postgresql":
        assert len(queries) == 1  # token, user and memberships together
    expected_user, expected_token = drf.TokenAuthentication().authenticate_credentials(token.key)
    assert got.key == expected_token.key and user.pk == expected_user.pk == tree.handler.pk
    for field in type(user)._meta.concrete_fields:
        assert getattr(user, field.attname) == getattr(expected_user, field.attname), field.name
    with CaptureQueriesContext(connection) as queries:
        roles = permissions.roles_of(user)
    assert set(roles) == {
        permissions.Role(m.organisation_id, m.organisation.path, m.role)
        for m in tree.handler.memberships.select_related("organisation")
    }
    if connection.vendor == "postgresql":
        assert len(queries) == 0 and roles

    youth_token, _ = Token.objects.get_or_create(user=tree.youth)
    youth, _ = TokenAuthentication().authenticate_credentials(youth_token.key)
    assert youth.pk == tree.youth.pk and permissions.roles_of(youth) == ()

    for cls in (TokenAuthentication, drf.TokenAuthentication):
        with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token"):
            cls().authenticate_credentials("0" * 40)
    tree.youth.is_active = False
    tree.youth.save(update_fields=["is_active"])
    for cls in (TokenAuthentication, drf.TokenAuthentication):
        with pytest.raises(exceptions.AuthenticationFailed, match="inactive"):
            cls().authenticate_credentials(youth_token.key)

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    refused = client.get("/api/cases/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/me/").json()["username"] == tree.handler.username
