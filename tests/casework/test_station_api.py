"""The station API: the public directory and slots, a case's visit, and the visit actions
against every kind of caller (the same matrix rules as tests/casework/test_api_authz_matrix.py:
a caller who may not see the case gets 404, one who sees it but may not act 403, an
anonymous caller 401)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from casework import services
from casework.models import Case
from casework.models_stations import Appointment
from tests.casework.stations_steps import book, free_starts, station_profile, visiting_case
from tests.casework.steps import snapshot
from tests.casework.test_api_authz_matrix import (  # noqa: F401 (people is a fixture)
    SEES_CASE_WITHOUT_TASK,
    client_for,
    people,
)

pytestmark = pytest.mark.django_db


def _post(user, case, endpoint, body):
    case = Case.objects.get(pk=case.pk)
    return client_for(user).post(
        f"/api/cases/{case.reference}/{endpoint}/",
        body,
        format="json",
        HTTP_IF_MATCH=f'"{case.version}"',
    )


def test_directory_and_slots_are_public(tree):
    station_profile(tree.station, seats=2)
    anonymous = client_for(None)
    listed = anonymous.get("/api/stations/")
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["id"] == tree.station.pk and row["visits_per_hour"] == 2
    assert row["services"][0]["code"] == "tutoring"
    assert row["latitude"] == "23.097000"
    assert anonymous.get("/api/stations/", {"service": "legal"}).json()["results"] == []
    assert anonymous.get("/api/stations/", {"region_code": "440105"}).json()["count"] == 1
    slots = anonymous.get(f"/api/stations/{tree.station.pk}/slots/")
    assert slots.status_code == 200
    assert slots.json()[0]["free"] == 2 and slots.json()[0]["capacity"] == 2
    for bad in ("99999999999999999999", "abc", str(tree.haizhu.pk)):
        response = anonymous.get(f"/api/stations/{bad}/slots/")
        assert response.status_code == 404
        assert set(response.json()) == {"code", "message", "field_errors"}


def test_booking_through_the_api(tree):
    station_profile(tree.station, seats=1)
    case = visiting_case(tree)
    start = free_starts(tree.station)[0]
    # no visit yet
    assert client_for(tree.youth).get(f"/api/cases/{case.reference}/visit/").status_code == 404
    response = _post(tree.youth, case, "book-visit", {"starts_at": start.isoformat()})
    assert response.status_code == 200, response.json()
    assert response["ETag"] == f'"{Case.objects.get(pk=case.pk).version}"'
    visit = client_for(tree.handler).get(f"/api/cases/{case.reference}/visit/")
    assert visit.status_code == 200
    assert visit.json()["status"] == "confirmed" and visit.json()["station"] == tree.station.pk
    # the same slot for another case: full, a clear refusal
    other = visiting_case(tree)
    full = _post(tree.youth, other, "book-visit", {"starts_at": start.isoformat()})
    assert full.status_code == 409
    assert full.json()["code"] == "slot_full" and "starts_at" in full.json()["field_errors"]
    # a time the station does not offer, and a malformed one
    odd = _post(tree.youth, other, "book-visit", {"starts_at": "2001-01-01T03:00:00+08:00"})
    assert odd.status_code == 400 and "starts_at" in odd.json()["field_errors"]
    assert _post(tree.youth, other, "book-visit", {"starts_at": "soon"}).status_code == 400
    # the events are readable by the youth
    kinds = [
        e["kind"] for e in client_for(tree.youth).get(f"/api/cases/{case.reference}/events/").json()
    ]
    assert kinds[-1] == "visit_booked"


def test_visit_needs_a_version(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station)[0]
    response = client_for(tree.youth).post(
        f"/api/cases/{case.reference}/book-visit/", {"starts_at": start.isoformat()}, format="json"
    )
    assert response.status_code == 428


# --- the matrix -------------------------------------------------------------------


def _booked(tree):
    case = visiting_case(tree)
    book(tree, case, free_starts(tree.station, skip=30)[0])
    return case


def _proposed(tree):
    case = visiting_case(tree)
    services.visit_propose(
        case=case.pk, actor=tree.verifier, starts_at=free_starts(tree.station, skip=30)[0]
    )
    return case


def _missed(tree):
    case = visiting_case(tree)
    start = free_starts(tree.station)[0]
    book(tree, case, start)
    with freeze_time(start + timedelta(minutes=30)):
        services.visit_no_show(case=case.pk, actor=tree.verifier)
    return case


def _time(tree, skip=40):
    return {"starts_at": free_starts(tree.station, skip=skip)[0].isoformat()}


VISIT_MATRIX = [
    # (endpoint, case maker, body maker, allowed callers)
    ("book-visit", visiting_case, _time, {"owner"}),
    ("propose-visit", visiting_case, _time, {"supervisor"}),
    ("confirm-visit", _proposed, lambda tree: {}, {"owner"}),
    ("reschedule-visit", _booked, _time, {"owner", "supervisor"}),
    ("decide-no-show", _missed, lambda tree: {"decision": "reschedule"}, {"handler", "supervisor"}),
]


@pytest.mark.parametrize(
    ("endpoint", "make", "body", "allowed"), VISIT_MATRIX, ids=[row[0] for row in VISIT_MATRIX]
)
def test_visit_action_matrix(tree, people, endpoint, make, body, allowed):  # noqa: F811
    station_profile(tree.station, seats=3)
    case = make(tree)
    before = snapshot(case)
    for role, user in people.items():
        if role in allowed:
            continue
        response = _post(user, case, endpoint, body(tree))
        expected = 401 if user is None else 403 if role in SEES_CASE_WITHOUT_TASK else 404
        assert response.status_code == expected, (role, response.json())
        assert set(response.json()) == {"code", "message", "field_errors"}
        assert snapshot(Case.objects.get(pk=case.pk)) == before, role
    for role in sorted(allowed):
        case = make(tree)
        version = Case.objects.get(pk=case.pk).version
        response = _post(people[role], case, endpoint, body(tree))
        assert response.status_code == 200, (role, response.json())
        assert Case.objects.get(pk=case.pk).version > version, role


def test_record_no_show_matrix(tree, people):  # noqa: F811
    # one booked visit per caller, all in the same roomy slot
    station_profile(tree.station, seats=20)
    cases = {role: visiting_case(tree) for role in [*people, "verifier"]}
    start = free_starts(tree.station)[0]
    for case in cases.values():
        book(tree, case, start)
    with freeze_time(start + timedelta(minutes=20)):
        for role, user in [*people.items(), ("verifier", tree.verifier)]:
            response = _post(user, cases[role], "record-no-show", {})
            if role in ("supervisor", "verifier"):
                assert response.status_code == 200, response.json()
                continue
            expected = 401 if user is None else 403 if role in SEES_CASE_WITHOUT_TASK else 404
            assert response.status_code == expected, (role, response.json())
    missed = Appointment.objects.filter(status="no_show")
    assert {a.case_id for a in missed} == {cases["supervisor"].pk, cases["verifier"].pk}
