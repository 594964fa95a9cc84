"""The station story in a browser: a case is sent to a station, the youth books a visit,
the station's verifier records the visit and the case moves on to coordination.
And the public station map works without any tile server."""

from __future__ import annotations

from casework import services
from casework.models import Case
from casework.models_stations import Appointment
from casework.states import CaseState
from tests.casework.stations_steps import station_profile
from tests.casework.steps import submit as submit_case

from .harness import assert_fits, shot, submit, zh


def test_case_goes_to_a_station_the_youth_books_and_the_visit_is_recorded(open_page, tree):
    station_profile(tree.station, seats=2)
    case = services.case_accept(case=submit_case(tree), actor=tree.handler)

    # the handler sends the case to the station ("一键转至线下")
    handler = open_page(tree.handler.username)
    handler.goto(f"/work/cases/{case.reference}/")
    handler.locator("#action-schedule summary").click()
    handler.select_option("#id_schedule-station", str(tree.station.pk))
    submit(handler, f"form[action='/work/cases/{case.reference}/schedule/']")
    assert Case.objects.get(pk=case.pk).state == CaseState.VERIFYING

    # the youth books a free hour from the case page
    youth = open_page(tree.youth.username)
    youth.goto(f"/my/cases/{case.reference}/")
    youth.get_by_role("link", name=zh("Book a visit")).click()
    youth.wait_for_url(f"**/my/cases/{case.reference}/visit/book/")
    assert youth.locator("#id_starts_at option").count() > 0
    assert_fits(youth)
    shot(youth, "station-book-visit")
    submit(youth, f"form[action='/my/cases/{case.reference}/visit/book/']")
    assert youth.url.endswith(f"/my/cases/{case.reference}/")
    card = youth.locator("#visit")
    assert zh("confirmed") in card.inner_text()
    appointment = Appointment.objects.get(case=case)
    assert appointment.status == Appointment.Status.CONFIRMED

    # the station's verifier sees the visit and records it
    verifier = open_page(tree.verifier.username)
    verifier.goto("/work/visits/")
    verifier.get_by_role("link", name=case.reference).click()
    verifier.wait_for_url(f"**/work/cases/{case.reference}/")
    verifier.locator("#action-record summary").click()
    verifier.locator("#id_record-confirmed_0").check()
    verifier.fill("#id_record-findings", "在青年之家当面核实，情况属实。")
    submit(verifier, f"form[action='/work/cases/{case.reference}/record/']")

    # the case moves on to coordination, and the visit counts as made
    case = Case.objects.get(pk=case.pk)
    assert case.state == CaseState.COORDINATING
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.VISITED
    kinds = list(case.events.order_by("seq").values_list("kind", flat=True))
    assert kinds[-3:] == ["verification_scheduled", "visit_booked", "verification_confirmed"]


def test_station_map_shows_positions_without_tiles(page, tree, settings):
    settings.STATIONS_TILE_URL = ""
    station_profile(tree.station)
    page.goto("/stations/")
    # Leaflet drew one marker for the one station, and asked for no tile at all
    page.wait_for_selector("#station-map[data-markers='1']")
    assert page.locator("#station-map path.leaflet-interactive").count() == 1
    assert page.locator("#station-map img.leaflet-tile").count() == 0
    assert tree.station.name in page.locator("#station-" + str(tree.station.pk)).inner_text()
    assert_fits(page)
    shot(page, "station-directory")
