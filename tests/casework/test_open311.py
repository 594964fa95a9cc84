"""Open311 GeoReport v2: documents in JSON and XML, keys, filters, redaction."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from xml.etree import ElementTree as ET

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from casework.models import Case, Category, Open311Key
from casework.open311.keys import open311_key_check
from casework.public import public_view
from casework.states import CaseState
from tests.casework.steps import DESCRIPTION, case_in, submit

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"


@pytest.fixture
def api_key(tree) -> str:
    out = StringIO()
    call_command("open311_keys", "create", "hotline-12355", stdout=out)
    return out.getvalue().strip()


def get_json(path, **params):
    response = Client().get(f"{BASE}/{path}.json", params)
    assert response["Content-Type"].startswith("application/json")
    return response, response.json()


def get_xml(path, **params):
    response = Client().get(f"{BASE}/{path}.xml", params)
    assert response["Content-Type"].startswith("text/xml")
    return response, ET.fromstring(response.content)


def test_discovery_in_both_formats(db):
    response, body = get_json("discovery")
    assert response.status_code == 200
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2/")
    _, root = get_xml("discovery")
    assert root.tag == "discovery"
    assert root.find("endpoints/endpoint/formats/format").text == "application/json"


def test_services_are_the_categories(db):
    _, services = get_json("services")
    assert [s["service_code"] for s in services] == list(
        Category.objects.values_list("code", flat=True)
    )
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in services)
    _, root = get_xml("services")
    assert root.tag == "services"
    assert [e.text for e in root.findall("service/service_code")] == [
        s["service_code"] for s in services
    ]
    assert root.find("service/metadata").text == "true"


def test_service_definition_lists_attributes(db):
    _, definition = get_json("services/study")
    assert definition["service_code"] == "study"
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["region_code", "urgency", "title"]
    urgency = definition["attributes"][1]
    assert urgency["datatype"] == "singlevaluelist"
    assert {v["key"] for v in urgency["values"]} == set(Case.Urgency.values)
    _, root = get_xml("services/study")
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/values/value/key") is not None
    response, body = get_json("services/nope")
    assert response.status_code == 404 and body[0]["code"] == 404


def test_post_needs_a_valid_key(tree, api_key):
    form = {"service_code": "study", "address_id": "440105", "description": "学习困难"}
    response = Client().post(f"{BASE}/requests.json", form)
    assert response.status_code == 403
    assert response.json()[0]["code"] == 403
    response = Client().post(f"{BASE}/requests.json", {**form, "api_key": api_key + "x"})
    assert response.status_code == 403
    assert not Case.objects.exists()


def test_post_creates_a_case_and_token_lookup_finds_it(tree, api_key):
    form = {
        "api_key": api_key,
        "service_code": "study",
        "address_id": "440105",
        "description": "学习上遇到困难，需要帮助",
        "attribute[urgency]": "high",
        "email": "someone@example.com",
        "first_name": "小雨",
        "phone": "13800000000",
    }
    response = Client().post(f"{BASE}/requests.json", form)
    assert response.status_code == 201, response.content
    [created] = response.json()
    case = Case.objects.get(reference=created["service_request_id"])
    assert case.org == tree.haizhu and case.urgency == "high"
    # the specification's personal fields are not stored anywhere on the case
    assert "13800000000" not in json.dumps(
        list(Case.objects.values("title", "description", "region_code")), default=str
    )
    _, tokens = get_json(f"tokens/{created['token']}")
    assert tokens == [{"service_request_id": case.reference, "token": created["token"]}]
    response = Client().post(f"{BASE}/requests.xml", form)
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    assert root.find("request/service_request_id").text.startswith("YV-")


def test_post_refuses_bad_input_with_the_error_list(tree, api_key):
    client = Client()
    bad = [
        {"service_code": "nope", "address_id": "440105", "description": "x"},
        {"service_code": "study", "description": "x"},
        {"service_code": "study", "address_id": "440105", "description": ""},
        {"service_code": "study", "address_id": "999999", "description": "x"},
    ]
    for form in bad:
        response = client.post(f"{BASE}/requests.xml", {**form, "api_key": api_key})
        assert response.status_code == 400, form
        root = ET.fromstring(response.content)
        assert root.tag == "errors" and root.find("error/code").text == "400"
    assert not Case.objects.exists()


def test_revoked_key_stops_working(tree, api_key):
    out = StringIO()
    call_command("open311_keys", "revoke", "hotline-12355", stdout=out)
    assert open311_key_check(api_key) is None
    call_command("open311_keys", "list", stdout=out)
    assert "revoked" in out.getvalue()
    # only a hash is stored
    assert api_key not in json.dumps(list(Open311Key.objects.values()), default=str)


def test_request_records_are_the_public_view(tree):
    case = case_in(tree, CaseState.CLOSED)
    _, [record] = get_json(f"requests/{case.reference}")
    view = public_view(case)
    assert record["service_request_id"] == case.reference
    assert record["status"] == "closed"
    assert record["service_code"] == "study"
    assert record["agency_responsible"] == tree.haizhu.name
    assert record["address_id"] == view["region_code"] == "440100"
    assert record["requested_datetime"].startswith(view["submitted_on"])
    assert "rated" in record["status_notes"] and "solved" in record["status_notes"]
    blob = json.dumps(record, ensure_ascii=False)
    for secret in (DESCRIPTION, "学习上遇到困难", tree.youth.username, "440105"):
        assert secret not in blob
    _, root = get_xml(f"requests/{case.reference}")
    assert root.find("request/status").text == "closed"


def test_sensitive_cases_show_only_progress_and_no_agency(tree):
    case = submit(tree, category="psychological")
    _, [record] = get_json(f"requests/{case.reference}")
    assert record == {
        "service_request_id": case.reference,
        "status": "open",
        "status_notes": "in progress",
        "agency_responsible": "",
        "service_notice": "",
    }
    # and they stay out of lists, whatever the filter
    _, listed = get_json("requests", service_code="psychological")
    assert listed == []


def test_list_filters_and_default_window(tree):
    open_case = submit(tree)
    closed_case = case_in(tree, CaseState.CLOSED)
    old = submit(tree)
    Case.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - timedelta(days=120))
    _, listed = get_json("requests")
    refs = [r["service_request_id"] for r in listed]
    assert set(refs) == {open_case.reference, closed_case.reference}  # 90-day default window
    _, only_open = get_json("requests", status="open")
    assert [r["service_request_id"] for r in only_open] == [open_case.reference]
    _, only_closed = get_json("requests", status="closed")
    assert [r["service_request_id"] for r in only_closed] == [closed_case.reference]
    _, none = get_json("requests", service_code="legal")
    assert none == []
    start = (timezone.now() - timedelta(days=130)).isoformat()
    end = (timezone.now() - timedelta(days=100)).isoformat()
    _, window = get_json("requests", start_date=start, end_date=end)
    assert [r["service_request_id"] for r in window] == [old.reference]
    _, by_id = get_json("requests", service_request_id=f"{old.reference},{open_case.reference}")
    assert {r["service_request_id"] for r in by_id} == {old.reference, open_case.reference}
    response, body = get_json("requests", start_date="yesterday")
    assert response.status_code == 400 and body[0]["code"] == 400
    too_wide = (timezone.now() - timedelta(days=200)).isoformat()
    response, _ = get_json("requests", start_date=too_wide, end_date=timezone.now().isoformat())
    assert response.status_code == 400
    response, _ = get_json("requests", status="pending")
    assert response.status_code == 400


def test_list_respects_the_limit(tree, settings):
    settings.OPEN311_MAX_REQUESTS = 2
    for _ in range(3):
        submit(tree)
    _, listed = get_json("requests")
    assert len(listed) == 2


def test_unknown_ids_and_tokens_are_404_in_the_spec_format(db):
    response, body = get_json("requests/YV-NOPE0000")
    assert response.status_code == 404 and body == [
        {"code": 404, "description": body[0]["description"]}
    ]
    response, root = get_xml("tokens/nope")
    assert response.status_code == 404 and root.tag == "errors"


def test_token_lookups_and_posts_are_rate_limited(tree, api_key, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "public_token": "2/minute"}
    from django.core.cache import caches

    caches["throttle"].clear()
    client = Client()
    codes = [client.get(f"{BASE}/tokens/abc.json").status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    response = client.get(f"{BASE}/tokens/abc.json")
    assert int(response["Retry-After"]) >= 1
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "open311_post": "1/hour"}
    form = {"api_key": api_key, "service_code": "study", "address_id": "440105", "description": "x"}
    assert client.post(f"{BASE}/requests.json", form).status_code == 201
    assert client.post(f"{BASE}/requests.json", form).status_code == 429
