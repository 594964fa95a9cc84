"""An existing Open311 client library against /open311/v2/, unchanged, over real HTTP.

The library is ``georeport`` (PyPI, 0.3.1, 2025: "Python wrapper for the Open311
GeoReport v2 API"), pointed at pytest-django's live server. It reads services,
service definitions, request lists with the standard filters and single requests,
in JSON and in XML. It has no call for POST requests or token lookups: those are
posted here with ``requests`` (the HTTP library it uses itself) exactly as the
specification describes, and the library then reads the new request back.

Other libraries on PyPI were tried and do not run on Python 3 (docs/api.md):
``three`` 0.8.0 imports ``itertools.ifilter``; ``open311`` 1.1 uses Python 2
implicit relative imports.
"""

from __future__ import annotations

from io import StringIO

import pytest
import requests
from django.core.management import call_command
from georeport import GeoReport

from casework.models import Category
from casework.states import CaseState
from tests.casework.steps import case_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def endpoint(live_server) -> str:
    return f"{live_server.url}/open311/v2"


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_library_reads_services_and_definitions(endpoint, output_format):
    client = GeoReport(endpoint, output_format=output_format)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert codes == list(Category.objects.values_list("code", flat=True))
    definition = client.get_service_definition("study")
    assert definition["service_code"] == "study"
    attributes = definition["attributes"]
    if output_format == "xml":  # xmltodict: <attributes><attribute>…</attribute>…
        attributes = attributes["attribute"]
    assert {a["code"] for a in attributes} >= {"region_code", "urgency"}


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_library_posts_and_reads_requests(tree, endpoint, output_format):
    out = StringIO()
    call_command("open311_keys", "create", "city-hotline", stdout=out)
    key = out.getvalue().strip()
    closed = case_in(tree, CaseState.CLOSED)
    client = GeoReport(endpoint, api_key=key, output_format=output_format)

    # POST requests: not in the library; form-encoded as the specification says
    posted = requests.post(
        f"{endpoint}/requests.json",
        data={
            "api_key": client.api_key,
            "service_code": "study",
            "address_id": "440105",
            "description": "学习压力很大，想找人聊聊",
        },
        timeout=30,
    )
    assert posted.status_code == 201, posted.text
    [created] = posted.json()
    token = requests.get(f"{endpoint}/tokens/{created['token']}.json", timeout=30).json()
    assert token[0]["service_request_id"] == created["service_request_id"]

    # the library reads the new request and the list, with the standard filters
    one = client.get_service_request(created["service_request_id"])
    assert one["service_request_id"] == created["service_request_id"]
    assert one["status"] == "open" and one["service_code"] == "study"
    assert "description" not in one or one["description"] in (None, "")

    def ids(**filters):
        found = client.get_service_requests(**filters)
        if output_format == "xml" and isinstance(found, dict):
            found = [found]  # xmltodict gives one <request> as a dict
        return {r["service_request_id"] for r in found or []}

    assert ids() == {created["service_request_id"], closed.reference}
    assert ids(status="closed") == {closed.reference}
    assert ids(status="open", service_code="study") == {created["service_request_id"]}
    assert ids(service_request_id=closed.reference) == {closed.reference}
