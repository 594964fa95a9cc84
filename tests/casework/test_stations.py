"""Station hours and verification visits: booking, proposals, moves, reminders, no-shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from freezegun import freeze_time

from casework import services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.events import EventKind, verify_case
from casework.models import Case, CaseEvent
from casework.models_stations import Appointment, StationException, VisitSlot
from casework.services.stations import SlotFull, station_slots, station_week
from casework.states import CaseState
from casework.station_hours import DayRule, StationWeek, weekly_hours
from notifications.models import Notification
from notifications.services import fan_out_pending
from tests.casework.stations_steps import book, free_starts, station_profile, visiting_case

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Shanghai")
# A Monday, 08:00 in Guangzhou.
MONDAY_8 = datetime(2026, 3, 2, 8, 0, tzinfo=TZ)


def local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=TZ)


def kinds(case) -> list[str]:
    return list(
        CaseEvent.objects.filter(case_id=case.pk).order_by("seq").values_list("kind", flat=True)
    )


# --- hours (pure) --------------------------------------------------------------------


def test_week_exceptions_and_holidays_decide_the_hours():
    monday, tuesday, wednesday = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
    week = StationWeek(
        week=weekly_hours({"mon": [["09:00", "12:00"]], "tue": [["09:00", "12:00"]]}),
        exceptions={
            tuesday: DayRule(closed=True),
            wednesday: DayRule(False, ((time(10), time(12)),)),
        },
        holidays=frozenset({monday}),
        opens_on_holidays=False,
    )
    assert week.hours_on(monday) == ()  # a public holiday closes it
    assert week.why_closed(monday) == "holiday"
    assert week.hours_on(tuesday) == ()  # the exception closes it
    assert week.hours_on(wednesday) == ((time(10), time(12)),)  # open by exception
    assert week.why_closed(date(2026, 3, 5)) == "weekly"
    slots = week.slot_starts(monday, 3, ())
    assert [a.hour for a, _b in slots] == [10, 11]  # only Wednesday's two hours
    # a station open on holidays keeps its Monday
    assert StationWeek(week.week, {}, frozenset({monday}), True).hours_on(monday)


def test_round_the_clock_station_offers_daytime_visits_only():
    week = StationWeek(
        week=weekly_hours({"24h": True}),
        exceptions={},
        holidays=frozenset(),
        opens_on_holidays=False,
    )
    slots = week.slot_starts(date(2026, 3, 2), 1, ((time(8), time(22)),))
    assert (slots[0][0].hour, slots[-1][1].hour, len(slots)) == (8, 22, 14)


def test_unreadable_hours_are_refused():
    from casework.station_hours import HoursError

    for spec in ({"mon": [["18:00", "09:00"]]}, {"xyz": []}, {"mon": [["9", "x"]]}):
        with pytest.raises(HoursError):
            weekly_hours(spec)


def test_slots_follow_hours_exceptions_and_the_calendar(tree):
    from workflows import sla
    from workflows.models import CalendarDay

    station_profile(tree.station, seats=3)
    with freeze_time(MONDAY_8):
        CalendarDay.objects.create(date=date(2026, 3, 3), kind=CalendarDay.Kind.HOLIDAY, name="x")
        StationException.objects.create(station=tree.station, date=date(2026, 3, 4), kind="closed")
        sla.invalidate()
        slots = station_slots(tree.station, days=3)
        days = sorted({timezone_day(s.starts_at) for s in slots})
        # Monday's slots from 10:00 (two hours' notice), Tuesday a holiday, Wednesday closed
        assert days == [date(2026, 3, 2)]
        assert [s.starts_at.astimezone(TZ).hour for s in slots] == [10, 11, 14, 15, 16, 17]
        assert {s.free for s in slots} == {3}
        assert station_week(tree.station).why_closed(date(2026, 3, 3)) == "holiday"
    sla.invalidate()


def timezone_day(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


# --- booking -------------------------------------------------------------------------


def test_youth_books_a_slot_and_the_deadline_follows(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station)[3]
    appointment = book(tree, case, start)
    case = Case.objects.get(pk=case.pk)
    assert appointment.status == Appointment.Status.CONFIRMED
    assert appointment.slot.booked == 1 and appointment.slot.starts_at == start
    # the verification deadline follows the visit: after its end, within business time
    assert case.stage_due_at > appointment.slot.ends_at
    assert case.remind_at is None
    assert kinds(case)[-1] == EventKind.VISIT_BOOKED
    event = case.events.order_by("-seq").first()
    assert event.payload == {
        "appointment": appointment.pk,
        "station": tree.station.pk,
        "visit": start.astimezone(UTC).isoformat(),
    }
    assert verify_case(case) is None
    # the station's verifiers hear of it (once the delivery worker fanned the event out)
    fan_out_pending()
    assert Notification.objects.filter(event=event, recipient=tree.verifier).exists()


def test_booking_refusals(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station)[0]
    with pytest.raises(NotPermitted):
        services.visit_book(case=case.pk, actor=tree.other_youth, starts_at=start)
    with pytest.raises(ValidationFailed) as bad:
        services.visit_book(case=case.pk, actor=tree.youth, starts_at=start + timedelta(minutes=30))
    assert "starts_at" in bad.value.field_errors
    with pytest.raises(ValidationFailed):
        services.visit_book(case=case.pk, actor=tree.youth, starts_at="not a time")
    book(tree, case, start)
    with pytest.raises(InvalidTransition):
        book(tree, case)  # one visit at a time
    other = visiting_case(tree)
    services.case_withdraw(case=other, actor=tree.youth)
    with pytest.raises(InvalidTransition):
        book(tree, other)


def test_a_full_slot_refuses_clearly(tree):
    station_profile(tree.station, seats=1)
    first, second = visiting_case(tree), visiting_case(tree)
    start = free_starts(tree.station)[0]
    book(tree, first, start)
    before = Case.objects.get(pk=second.pk).version
    with pytest.raises(SlotFull) as full:
        book(tree, second, start)
    assert full.value.code == "slot_full"
    assert Case.objects.get(pk=second.pk).version == before
    assert not Appointment.objects.filter(case=second).exists()
    assert start not in free_starts(tree.station)


def test_the_database_refuses_an_overbooked_slot(tree):
    station_profile(tree.station, seats=1)
    case = visiting_case(tree)
    slot = book(tree, case).slot
    with pytest.raises(IntegrityError), transaction.atomic():
        VisitSlot.objects.filter(pk=slot.pk).update(booked=2)


def test_station_without_profile_takes_no_bookings(tree):
    case = visiting_case(tree)
    with pytest.raises(ValidationFailed):
        services.visit_book(case=case.pk, actor=tree.youth, starts_at=datetime.now(TZ))


# --- proposals and moves ---------------------------------------------------------------


def test_station_proposes_and_the_youth_confirms(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station)[2]
    appointment = services.visit_propose(case=case.pk, actor=tree.verifier, starts_at=start)
    assert appointment.status == Appointment.Status.PROPOSED
    assert appointment.slot.booked == 1  # the seat is held
    with pytest.raises(NotPermitted):
        services.visit_confirm(case=case.pk, actor=tree.verifier)
    appointment = services.visit_confirm(case=case.pk, actor=tree.youth)
    assert appointment.status == Appointment.Status.CONFIRMED
    with pytest.raises(InvalidTransition):
        services.visit_confirm(case=case.pk, actor=tree.youth)
    assert kinds(case)[-2:] == [EventKind.VISIT_PROPOSED, EventKind.VISIT_CONFIRMED]
    fan_out_pending()
    assert Notification.objects.filter(kind="visit_proposed", recipient=tree.youth).exists()
    with pytest.raises(NotPermitted):
        services.visit_propose(case=case.pk, actor=tree.youth, starts_at=start)


def test_reschedule_rules(tree, settings):
    settings.STATIONS_MAX_RESCHEDULES = 2
    station_profile(tree.station, seats=1)
    case = visiting_case(tree)
    starts = free_starts(tree.station, skip=20)
    appointment = book(tree, case, starts[0])
    with pytest.raises(ValidationFailed):  # to the same time
        services.visit_reschedule(case=case.pk, actor=tree.youth, starts_at=starts[0])
    # the youth moves it: confirmed at once, the old seat is free again
    moved = services.visit_reschedule(case=case.pk, actor=tree.youth, starts_at=starts[1])
    assert moved.status == Appointment.Status.CONFIRMED and moved.reschedules == 1
    assert VisitSlot.objects.get(pk=appointment.slot_id).booked == 0
    # the station moves it: the youth must confirm again
    moved = services.visit_reschedule(case=case.pk, actor=tree.verifier, starts_at=starts[2])
    assert moved.status == Appointment.Status.PROPOSED and moved.remind_at is None
    with pytest.raises(InvalidTransition):  # at most two moves
        services.visit_reschedule(case=case.pk, actor=tree.youth, starts_at=starts[3])
    event = Case.objects.get(pk=case.pk).events.order_by("-seq").first()
    assert event.kind == EventKind.VISIT_RESCHEDULED and event.payload["by"] == "station"
    assert event.payload["previous"] == starts[1].astimezone(UTC).isoformat()
    with pytest.raises(NotPermitted):
        services.visit_reschedule(case=case.pk, actor=tree.other_youth, starts_at=starts[3])


def test_no_reschedule_too_close_to_the_visit(tree, settings):
    settings.STATIONS_RESCHEDULE_MIN_NOTICE = timedelta(hours=12)
    station_profile(tree.station)
    case = visiting_case(tree)
    with freeze_time(MONDAY_8):
        first = free_starts(tree.station)[0]  # Monday 10:00
        book(tree, case, first)
        later = free_starts(tree.station)[-1]
        with pytest.raises(InvalidTransition) as close:
            services.visit_reschedule(case=case.pk, actor=tree.youth, starts_at=later)
        assert "12" in str(close.value.message)


# --- reminders ---------------------------------------------------------------------


def test_reminder_goes_out_once_before_the_visit(tree, settings):
    settings.STATIONS_REMINDER_BEFORE = timedelta(hours=24)
    station_profile(tree.station)
    case = visiting_case(tree)
    with freeze_time(MONDAY_8):
        start = free_starts(tree.station, skip=12)[0]  # Tuesday or later
        appointment = book(tree, case, start)
        assert appointment.remind_at == start - timedelta(hours=24)
        assert services.visit_reminder_sweep() == 0  # not due yet
    with freeze_time(start - timedelta(hours=23)):
        assert services.visit_reminder_sweep() == 1
        assert services.visit_reminder_sweep() == 0  # once
    assert kinds(case)[-1] == EventKind.VISIT_REMINDER
    fan_out_pending()
    assert Notification.objects.filter(kind="visit_reminder", recipient=tree.youth).exists()
    assert Notification.objects.filter(kind="visit_reminder", recipient=tree.verifier).exists()
    assert Appointment.objects.get(pk=appointment.pk).remind_at is None


def test_reminder_of_a_proposal_waits_for_the_confirmation(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station, skip=30)[0]
    appointment = services.visit_propose(case=case.pk, actor=tree.verifier, starts_at=start)
    assert appointment.remind_at is None
    assert services.visit_confirm(case=case.pk, actor=tree.youth).remind_at is not None


def test_beat_task_runs_the_reminder_sweep(tree):
    from casework.tasks import visit_reminders_task

    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station, skip=30)[0]
    book(tree, case, start)
    with freeze_time(start - timedelta(hours=1)):
        assert visit_reminders_task.apply().get() == 1


# --- the visit, and no-shows ------------------------------------------------------------


def test_recorded_verification_marks_the_visit_made(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    appointment = book(tree, case)
    services.case_record_verification(
        case=case.pk, actor=tree.verifier, confirmed=True, findings="属实"
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.VISITED
    assert Case.objects.get(pk=case.pk).state == CaseState.COORDINATING
    assert appointment.slot.booked == VisitSlot.objects.get(pk=appointment.slot_id).booked == 1


def test_a_withdrawn_case_frees_its_seat(tree):
    station_profile(tree.station, seats=1)
    case = visiting_case(tree)
    appointment = book(tree, case)
    services.case_withdraw(case=case.pk, actor=tree.youth)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert VisitSlot.objects.get(pk=appointment.slot_id).booked == 0
    assert kinds(case)[-2:] == [EventKind.WITHDRAWN, EventKind.VISIT_CANCELLED]
    assert verify_case(Case.objects.get(pk=case.pk)) is None


def _missed(tree):
    station_profile(tree.station)
    case = visiting_case(tree)
    start = free_starts(tree.station)[0]
    book(tree, case, start)
    with pytest.raises(InvalidTransition):  # not before the visit
        services.visit_no_show(case=case.pk, actor=tree.verifier)
    with freeze_time(start + timedelta(minutes=40)):
        with pytest.raises(NotPermitted):
            services.visit_no_show(case=case.pk, actor=tree.youth)
        services.visit_no_show(case=case.pk, actor=tree.verifier)
    assert kinds(case)[-1] == EventKind.VISIT_NO_SHOW
    fan_out_pending()
    assert Notification.objects.filter(kind="visit_no_show", recipient=tree.handler).exists()
    return case


def test_no_show_then_the_handler_lets_the_youth_book_again(tree):
    case = _missed(tree)
    with pytest.raises(NotPermitted):
        services.visit_decide_no_show(case=case.pk, actor=tree.verifier, decision="reschedule")
    services.visit_decide_no_show(case=case.pk, actor=tree.handler, decision="reschedule")
    case = Case.objects.get(pk=case.pk)
    assert case.state == CaseState.VERIFYING and kinds(case)[-1] == EventKind.VISIT_REBOOK
    assert case.stage_due_at > case.stage_started_at  # a fresh verification clock
    with pytest.raises(InvalidTransition):  # decided once
        services.visit_decide_no_show(case=case.pk, actor=tree.handler, decision="reschedule")
    again = book(tree, case, free_starts(tree.station)[1])
    assert again.status == Appointment.Status.CONFIRMED
    assert Appointment.objects.filter(case=case).count() == 2


def test_no_show_then_the_handler_asks_the_youth(tree):
    case = _missed(tree)
    with pytest.raises(ValidationFailed):
        services.visit_decide_no_show(case=case.pk, actor=tree.handler, decision="request_info")
    services.visit_decide_no_show(
        case=case.pk, actor=tree.handler, decision="request_info", question="为什么没来？"
    )
    case = Case.objects.get(pk=case.pk)
    assert case.state == CaseState.AWAITING_YOUTH
    event = case.events.order_by("-seq").first()
    assert event.kind == EventKind.INFO_REQUESTED and "no_show" in event.payload


def test_no_show_then_the_handler_rejects_with_a_reason(tree):
    case = _missed(tree)
    with pytest.raises(ValidationFailed):
        services.visit_decide_no_show(case=case.pk, actor=tree.handler, decision="reject")
    with pytest.raises(ValidationFailed):
        services.visit_decide_no_show(case=case.pk, actor=tree.handler, decision="nonsense")
    services.visit_decide_no_show(
        case=case.pk, actor=tree.handler, decision="reject", reason="not_confirmed", note="两次未到"
    )
    case = Case.objects.get(pk=case.pk)
    assert case.state == CaseState.REJECTED and case.reject_reason == "not_confirmed"
    assert Appointment.objects.get(case=case).no_show_decision == "reject"
    assert verify_case(case) is None


def test_withdrawn_while_paused_in_verification_frees_the_seat(tree):
    station_profile(tree.station, seats=1)
    case = visiting_case(tree)
    appointment = book(tree, case)
    services.case_request_info(case=case.pk, actor=tree.verifier, question="请带上证明材料")
    assert Appointment.objects.get(pk=appointment.pk).is_active  # a pause keeps the visit
    services.case_withdraw(case=case.pk, actor=tree.youth)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert VisitSlot.objects.get(pk=appointment.slot_id).booked == 0
