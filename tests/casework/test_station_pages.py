"""Station pages: the public directory and map data, a station's page, the youth's visit
forms, the workbench's visit actions and the station's list of visits."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from casework.models import Case, Organisation
from casework.models_stations import Appointment, StationException
from casework.states import CaseState
from tests.casework.stations_steps import book, free_starts, station_profile, visiting_case
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


def map_data(response) -> dict:
    html = response.content.decode()
    match = re.search(r'<script id="station-map-data" type="application/json">(.*?)</script>', html)
    assert match, "the map data block is missing"
    return json.loads(match.group(1))


def second_station(tree):
    station = OrganisationFactory(
        parent=tree.baiyun,
        name="白云青年之家·京溪",
        level=4,
        region_code="440111",
        kind=Organisation.Kind.STATION,
        routes_by_region=False,
    )
    station_profile(station, services=["employment"], latitude="23.180000", longitude="113.326000")
    return station


# --- the public directory ---------------------------------------------------------------


def test_directory_lists_and_filters_stations_without_sign_in(client, tree, settings):
    settings.STATIONS_TILE_URL = ""
    station_profile(tree.station)
    second_station(tree)
    response = client.get(reverse("casework:station_directory"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "海珠青年之家·江南西" in html and "白云青年之家·京溪" in html
    data = map_data(response)
    assert data["tiles"] == ""  # no tile server: positions only
    assert {(s["name"], s["lat"]) for s in data["stations"]} == {
        ("海珠青年之家·江南西", 23.097),
        ("白云青年之家·京溪", 23.18),
    }
    # by district, by service
    only_baiyun = client.get(reverse("casework:station_directory"), {"district": "440111"})
    assert [s["name"] for s in map_data(only_baiyun)["stations"]] == ["白云青年之家·京溪"]
    tutoring = client.get(reverse("casework:station_directory"), {"service": "tutoring"})
    assert [s["name"] for s in map_data(tutoring)["stations"]] == ["海珠青年之家·江南西"]
    # unknown filters show everything rather than failing
    odd = client.get(
        reverse("casework:station_directory"), {"district": "\x00", "service": "x" * 500}
    )
    assert odd.status_code == 200 and len(map_data(odd)["stations"]) == 2


def test_directory_obeys_the_content_security_policy(client, tree, settings):
    settings.STATIONS_TILE_URL = "https://tiles.example.org/{z}/{x}/{y}.png"
    station_profile(tree.station)
    response = client.get(reverse("casework:station_directory"))
    policy = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    html = response.content.decode()
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "vendor/leaflet-1.9.4/leaflet.js" in html and "js/station-map.js" in html
    assert map_data(response)["tiles"] == settings.STATIONS_TILE_URL


def test_tile_server_origin_joins_the_image_policy():
    from config.settings.stations import with_tile_origin

    policy = {"img-src": ["'self'", "data:"], "script-src": ["'self'"]}
    assert with_tile_origin(policy, "")["img-src"] == ["'self'", "data:"]
    tiles = with_tile_origin(policy, "https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert tiles["img-src"] == ["'self'", "data:", "https://*.tile.example.org"]
    assert tiles["script-src"] == ["'self'"]
    assert with_tile_origin(policy, "not a url")["img-src"] == ["'self'", "data:"]


def test_unlisted_and_unprofiled_stations_stay_out(client, tree):
    profile = station_profile(tree.station)
    profile.listed = False
    profile.save()
    response = client.get(reverse("casework:station_directory"))
    assert map_data(response)["stations"] == []
    assert client.get(reverse("casework:station_page", args=[tree.station.pk])).status_code == 404


def test_station_page_shows_hours_closures_and_services(client, tree):
    station_profile(tree.station)
    closed = timezone.localdate() + timedelta(days=3)
    StationException.objects.create(
        station=tree.station, date=closed, kind="closed", note="设施维护"
    )
    response = client.get(reverse("casework:station_page", args=[tree.station.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "广州市海珠区江南西路 1 号" in html and "tutoring" in html  # English names
    assert "09:00–12:00, 14:00–18:00" in html
    assert "设施维护" in html
    assert closed.isoformat() in html
    assert client.get("/stations/99999999999999999999/").status_code == 404
    assert client.get(reverse("casework:station_page", args=[tree.haizhu.pk])).status_code == 404


# --- the youth's visit -------------------------------------------------------------


def test_youth_books_a_visit_from_the_case_page(client, tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    client.force_login(tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference]))
    book_url = reverse("casework:youth_visit", args=[case.reference, "book"])
    assert book_url in page.content.decode()
    form = client.get(book_url)
    assert form.status_code == 200
    start = free_starts(tree.station)[2]
    assert start.isoformat() in form.content.decode()
    response = client.post(
        book_url, {"starts_at": start.isoformat(), "version": Case.objects.get(pk=case.pk).version}
    )
    assert response.status_code == 302
    appointment = Appointment.objects.get(case=case)
    assert appointment.slot.starts_at == start
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert "You booked a visit at" in page
    assert reverse("casework:youth_visit", args=[case.reference, "reschedule"]) in page
    assert book_url not in page


def test_youth_visit_form_errors_never_fail(client, tree):
    station_profile(tree.station, seats=1)
    case, other = visiting_case(tree), visiting_case(tree)
    start = free_starts(tree.station)[0]
    book(tree, other, start)
    client.force_login(tree.youth)
    url = reverse("casework:youth_visit", args=[case.reference, "book"])
    version = Case.objects.get(pk=case.pk).version
    # a full slot is not offered: a form error
    assert client.post(url, {"starts_at": start.isoformat(), "version": version}).status_code == 400
    # a stale page: the conflict, with the current version
    free = free_starts(tree.station)[0]
    stale = client.post(url, {"starts_at": free.isoformat(), "version": version - 1})
    assert stale.status_code == 409
    for value in ("", "\x00", "x" * 5000, "-1", "99999999999999999999"):
        assert client.post(url, {"starts_at": value, "version": value}).status_code == 400
    assert (
        client.get(reverse("casework:youth_visit", args=[case.reference, "nope"])).status_code
        == 404
    )
    # someone else's case does not exist for this youth
    client.force_login(tree.other_youth)
    assert client.get(url).status_code == 404


def test_youth_confirms_a_proposal(client, tree):
    from casework import services

    station_profile(tree.station)
    case = visiting_case(tree)
    services.visit_propose(
        case=case.pk, actor=tree.verifier, starts_at=free_starts(tree.station)[4]
    )
    client.force_login(tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    confirm = reverse("casework:youth_visit", args=[case.reference, "confirm"])
    assert confirm in page
    response = client.post(confirm, {"version": Case.objects.get(pk=case.pk).version})
    assert response.status_code == 302
    assert Appointment.objects.get(case=case).status == Appointment.Status.CONFIRMED


# --- the workbench ------------------------------------------------------------------


def act(case, name):
    return reverse("casework:staff_action", args=[case.reference, name])


def test_station_proposes_records_a_no_show_and_the_handler_decides(client, tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    client.force_login(tree.verifier)
    page = client.get(reverse("casework:staff_case", args=[case.reference])).content.decode()
    assert 'id="action-visit_propose"' in page
    start = free_starts(tree.station)[0]
    response = client.post(
        act(case, "visit_propose"),
        {
            "visit_propose-starts_at": start.isoformat(),
            "visit_propose-version": Case.objects.get(pk=case.pk).version,
        },
    )
    assert response.status_code == 302
    assert Appointment.objects.get(case=case).status == Appointment.Status.PROPOSED
    book_page = client.get(reverse("casework:staff_case", args=[case.reference])).content.decode()
    assert (
        'id="action-visit_reschedule"' in book_page and 'id="action-visit_no_show"' not in book_page
    )
    from casework import services

    services.visit_confirm(case=case.pk, actor=tree.youth)
    with freeze_time(start + timedelta(minutes=15)):
        page = client.get(reverse("casework:staff_case", args=[case.reference])).content.decode()
        assert 'id="action-visit_no_show"' in page
        response = client.post(
            act(case, "visit_no_show"),
            {"visit_no_show-version": Case.objects.get(pk=case.pk).version},
        )
        assert response.status_code == 302
    # the handler decides
    client.force_login(tree.handler)
    page = client.get(reverse("casework:staff_case", args=[case.reference])).content.decode()
    assert 'id="action-visit_decide"' in page
    bad = client.post(
        act(case, "visit_decide"),
        {
            "visit_decide-decision": "request_info",
            "visit_decide-version": Case.objects.get(pk=case.pk).version,
        },
    )
    assert bad.status_code == 400  # the question is missing
    response = client.post(
        act(case, "visit_decide"),
        {
            "visit_decide-decision": "request_info",
            "visit_decide-question": "请说明未到场的原因",
            "visit_decide-version": Case.objects.get(pk=case.pk).version,
        },
    )
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).state == CaseState.AWAITING_YOUTH


def test_station_visit_list(client, tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    book(tree, case)
    client.force_login(tree.verifier)
    response = client.get(reverse("casework:station_visits"))
    assert response.status_code == 200 and case.reference in response.content.decode()
    client.force_login(tree.baiyun_handler)
    assert case.reference not in client.get(reverse("casework:station_visits")).content.decode()


def test_station_visit_list_is_for_staff(client, tree):
    """A youth (no role anywhere) is refused the station's list, not shown an empty one."""
    client.force_login(tree.youth)
    assert client.get(reverse("casework:station_visits")).status_code == 403
