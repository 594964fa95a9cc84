"""Verification visits at a station: slots, booking, rescheduling, reminders, no-shows.

A case sent offline to a station (``case_schedule_verification`` with a station) is
visited in one of the station's one-hour slots. Either the youth books a free slot, or
the station proposes one (its seat is held) and the youth confirms it. Either side may
move the visit to another slot, not later than ``STATIONS_RESCHEDULE_MIN_NOTICE`` before
it and at most ``STATIONS_MAX_RESCHEDULES`` times; a move by the station waits for the
youth's confirmation again. The case's verification deadline (``stage_due_at``) follows
the appointment: the visit's end plus ``STATIONS_RECORD_WITHIN_HOURS`` business hours.

Seats: a ``VisitSlot`` row per station and hour holds ``capacity`` and ``booked``; a
booking takes its seat with ``UPDATE ... SET booked = booked + 1 WHERE booked <
capacity``, so concurrent bookings of the last seat give one success and clear
refusals, and a CHECK constraint makes an overbooked row impossible anyway.

Every change is one timeline event on the case, written under the case's row lock
(``finish_change``), and the notification outbox tells the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..errors import CaseworkError, InvalidTransition, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import Case, CaseMessage, Organisation, User
from ..models_stations import (
    Appointment,
    StationException,
    StationProfile,
    VisitSlot,
)
from ..states import CaseState
from ..station_hours import DayRule, StationWeek, parse_exception_hours, weekly_hours
from ._core import apply_transition, check_transition, finish_change

Status = Appointment.Status


class SlotFull(CaseworkError):
    """Every seat of the chosen slot is taken (someone else was quicker)."""

    code = "slot_full"
    default_message = _("This time is fully booked now. Choose another time.")


# --- opening hours and slots -------------------------------------------------------


def _round_the_clock_visits():
    from workflows.calendar import parse_hours

    return parse_hours(settings.STATIONS_ROUND_THE_CLOCK_VISITS)


def station_week(station: Organisation, *, profile: StationProfile | None = None) -> StationWeek:
    """The station's week, its exceptions and the business calendar's public holidays."""
    from workflows.sla import current_calendar

    if profile is None:
        profile = StationProfile.objects.filter(station=station).first()
    calendar = current_calendar()
    rules = {}
    for row in StationException.objects.filter(station=station, date__gte=_today() - timedelta(1)):
        rules[row.date] = DayRule(
            closed=row.kind == StationException.Kind.CLOSED,
            hours=parse_exception_hours(row.hours) if row.kind == "open" else (),
            note=row.note,
        )
    return StationWeek(
        week=weekly_hours(station.opening_hours),
        exceptions=rules,
        holidays=calendar.holidays,
        opens_on_holidays=bool(profile and profile.opens_on_public_holidays),
        time_zone=calendar.time_zone,
    )


def _today() -> date:
    return timezone.localdate()


@dataclass(frozen=True)
class SlotView:
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)


def takes_bookings(station_id: int | None) -> bool:
    """Whether the station has a profile with seats (what the pages offer booking on)."""
    return (
        station_id is not None
        and StationProfile.objects.filter(
            station_id=station_id, visits_per_hour__gt=0, station__is_active=True
        ).exists()
    )


def bookable_profile(station: Organisation) -> StationProfile:
    profile = StationProfile.objects.filter(station=station).first()
    if (
        profile is None
        or station.kind != Organisation.Kind.STATION
        or not station.is_active
        or profile.visits_per_hour == 0
    ):
        raise ValidationFailed(_("This station takes no visit bookings."))
    return profile


def station_slots(
    station: Organisation, *, now: datetime | None = None, days: int | None = None
) -> list[SlotView]:
    """The station's visit slots from now (plus the booking notice) over the booking days."""
    now = now or timezone.now()
    profile = bookable_profile(station)
    days = min(days or settings.STATIONS_BOOKING_DAYS, settings.STATIONS_BOOKING_DAYS)
    week = station_week(station, profile=profile)
    earliest = now + settings.STATIONS_BOOKING_MIN_NOTICE
    start_day = timezone.localdate(now)
    candidates = [
        (a, b)
        for a, b in week.slot_starts(start_day, days + 1, _round_the_clock_visits())
        if a >= earliest and a < now + timedelta(days=days)
    ]
    if not candidates:
        return []
    rows = {
        row.starts_at: row
        for row in VisitSlot.objects.filter(
            station=station,
            starts_at__gte=candidates[0][0],
            starts_at__lte=candidates[-1][0],
        )
    }
    out = []
    for a, b in candidates:
        row = rows.get(a)
        capacity = row.capacity if row else profile.visits_per_hour
        out.append(SlotView(a, b, capacity, row.booked if row else 0))
    return out


def parse_slot_time(value) -> datetime:
    """A slot's start from a form or API value (ISO 8601; local time when naive)."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_datetime(str(value or "").strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ValidationFailed(field_errors={"starts_at": [str(_("Choose a time from the list."))]})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _slot_row(station: Organisation, starts_at: datetime, now: datetime) -> VisitSlot:
    """The slot row of a start the station offers now (created on first use)."""
    offered = {s.starts_at: s for s in station_slots(station, now=now)}
    view = offered.get(starts_at)
    if view is None:
        raise ValidationFailed(
            field_errors={"starts_at": [str(_("The station offers no visit at that time."))]}
        )
    # INSERT ... ON CONFLICT DO NOTHING: two first bookings of one hour make one row.
    VisitSlot.objects.bulk_create(
        [
            VisitSlot(
                station=station,
                starts_at=view.starts_at,
                ends_at=view.ends_at,
                capacity=view.capacity,
            )
        ],
        ignore_conflicts=True,
    )
    return VisitSlot.objects.get(station=station, starts_at=view.starts_at)


def _take_seat(slot: VisitSlot) -> None:
    """Take one seat of ``slot`` in one conditional UPDATE, or refuse (no seat left)."""
    taken = VisitSlot.objects.filter(pk=slot.pk, booked__lt=F("capacity")).update(
        booked=F("booked") + 1
    )
    if not taken:
        raise SlotFull(field_errors={"starts_at": [str(SlotFull.default_message)]})
    slot.booked += 1  # what the row now holds, for the caller's copy


def _free_seat(slot_id: int) -> None:
    VisitSlot.objects.filter(pk=slot_id, booked__gt=0).update(booked=F("booked") - 1)


# --- who may do what ----------------------------------------------------------------


def acts_for_station(case: Case, user: User | None) -> bool:
    """Station staff for this case's visit: its verifiers or handlers, or the case's
    verifiers (a verifier of the holding organisation, a supervisor above it)."""
    return permissions.has_role_at(
        user, case.station_id, permissions.VERIFIER, permissions.HANDLER
    ) or permissions.is_case_verifier(case, user)


def active_appointment(case: Case, *, lock: bool = False) -> Appointment | None:
    rows = Appointment.objects.filter(case=case, status__in=Appointment.ACTIVE)
    if lock:
        rows = rows.select_for_update()
    return rows.select_related("slot").first()


def latest_appointment(case: Case) -> Appointment | None:
    return (
        Appointment.objects.filter(case=case).select_related("slot", "station").order_by("-pk")
    ).first()


def _require_visit_case(case: Case) -> Organisation:
    if case.state != CaseState.VERIFYING:
        raise InvalidTransition(
            _("Visits are arranged while the case is being verified (now: %(state)s).")
            % {"state": case.get_state_display()}
        )
    if case.station_id is None:
        raise InvalidTransition(_("This case is verified without a station visit."))
    return Organisation.objects.get(pk=case.station_id)


def _follow_appointment(case: Case, slot: VisitSlot) -> None:
    """The verification deadline follows the visit: its end plus the time to record it."""
    from workflows import sla
    from workflows.calendar import hours

    case.stage_due_at = sla.current_calendar().add(
        slot.ends_at, hours(settings.STATIONS_RECORD_WITHIN_HOURS)
    )
    case.remind_at = None  # the visit's own reminder replaces the stage reminder
    case.sla_breached = False


def _remind_at(slot: VisitSlot, now: datetime) -> datetime | None:
    moment = slot.starts_at - settings.STATIONS_REMINDER_BEFORE
    return moment if moment > now else None


def _payload(appointment: Appointment, slot: VisitSlot, **extra) -> dict:
    # Facts only: no personal data on the timeline (it outlives erasure).
    return {
        "appointment": appointment.pk,
        "station": appointment.station_id,
        "visit": slot.starts_at.isoformat(),
        **extra,
    }


def _record(case, appointment, slot, *, kind, actor, **extra):
    return finish_change(
        case,
        kind=kind,
        actor=actor,
        from_state=case.state,
        payload=_payload(appointment, slot, **extra),
    )


# --- booking -----------------------------------------------------------------------------


def _new_appointment(
    *, case, actor, starts_at, expected_version, status: str, kind: str, allowed
) -> Appointment:
    now = timezone.now()
    starts_at = parse_slot_time(starts_at)
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not allowed(case, actor):
            raise NotPermitted()
        station = _require_visit_case(case)
        if active_appointment(case) is not None:
            raise InvalidTransition(
                _("This case already has a visit arranged: reschedule it instead.")
            )
        slot = _slot_row(station, starts_at, now)
        _take_seat(slot)
        appointment = Appointment.objects.create(
            case=case,
            station=station,
            slot=slot,
            status=status,
            booked_by=actor,
            remind_at=_remind_at(slot, now) if status == Status.CONFIRMED else None,
        )
        _follow_appointment(case, slot)
        _record(case, appointment, slot, kind=kind, actor=actor)
    return appointment


def visit_book(
    *, case: Case | int, actor: User, starts_at, expected_version: int | None = None
) -> Appointment:
    """The youth books a free slot of the case's station for the verification visit."""
    return _new_appointment(
        case=case,
        actor=actor,
        starts_at=starts_at,
        expected_version=expected_version,
        status=Status.CONFIRMED,
        kind=EventKind.VISIT_BOOKED,
        allowed=permissions.is_case_youth,
    )


def visit_propose(
    *, case: Case | int, actor: User, starts_at, expected_version: int | None = None
) -> Appointment:
    """The station proposes a slot (its seat is held); the youth confirms it."""
    return _new_appointment(
        case=case,
        actor=actor,
        starts_at=starts_at,
        expected_version=expected_version,
        status=Status.PROPOSED,
        kind=EventKind.VISIT_PROPOSED,
        allowed=acts_for_station,
    )


def _locked_active(case: Case) -> Appointment:
    appointment = active_appointment(case, lock=True)
    if appointment is None:
        raise InvalidTransition(_("This case has no visit arranged."))
    return appointment


def visit_confirm(
    *, case: Case | int, actor: User, expected_version: int | None = None
) -> Appointment:
    """The youth confirms the slot the station proposed."""
    now = timezone.now()
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not permissions.is_case_youth(case, actor):
            raise NotPermitted()
        _require_visit_case(case)
        appointment = _locked_active(case)
        if appointment.status != Status.PROPOSED:
            raise InvalidTransition(_("This visit is already confirmed."))
        if appointment.slot.starts_at <= now:
            raise InvalidTransition(_("The proposed time has passed: choose another time."))
        appointment.status = Status.CONFIRMED
        appointment.remind_at = _remind_at(appointment.slot, now)
        appointment.save(update_fields=["status", "remind_at", "updated_at"])
        _record(case, appointment, appointment.slot, kind=EventKind.VISIT_CONFIRMED, actor=actor)
    return appointment


def visit_reschedule(
    *, case: Case | int, actor: User, starts_at, expected_version: int | None = None
) -> Appointment:
    """Move the visit to another slot (the youth's move is confirmed, the station's proposed).

    Not later than ``STATIONS_RESCHEDULE_MIN_NOTICE`` before the visit, and at most
    ``STATIONS_MAX_RESCHEDULES`` times per appointment.
    """
    now = timezone.now()
    starts_at = parse_slot_time(starts_at)
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        by_youth = permissions.is_case_youth(case, actor)
        if not by_youth and not acts_for_station(case, actor):
            raise NotPermitted()
        station = _require_visit_case(case)
        appointment = _locked_active(case)
        old = appointment.slot
        if appointment.reschedules >= settings.STATIONS_MAX_RESCHEDULES:
            raise InvalidTransition(
                _("This visit was moved %(n)s times already; it cannot be moved again.")
                % {"n": appointment.reschedules}
            )
        if old.starts_at - now < settings.STATIONS_RESCHEDULE_MIN_NOTICE:
            hours = int(settings.STATIONS_RESCHEDULE_MIN_NOTICE.total_seconds() // 3600)
            raise InvalidTransition(
                _("A visit can be moved up to %(hours)s hours before it; this one is too close.")
                % {"hours": hours}
            )
        if starts_at == old.starts_at:
            raise ValidationFailed(field_errors={"starts_at": [str(_("Choose a different time."))]})
        slot = _slot_row(station, starts_at, now)
        _take_seat(slot)
        _free_seat(old.pk)
        appointment.slot = slot
        appointment.reschedules += 1
        appointment.status = Status.CONFIRMED if by_youth else Status.PROPOSED
        appointment.remind_at = _remind_at(slot, now) if by_youth else None
        appointment.save(update_fields=["slot", "reschedules", "status", "remind_at", "updated_at"])
        _follow_appointment(case, slot)
        _record(
            case,
            appointment,
            slot,
            kind=EventKind.VISIT_RESCHEDULED,
            actor=actor,
            previous=old.starts_at.isoformat(),
            by="youth" if by_youth else "station",
        )
    return appointment


# --- after the visit time --------------------------------------------------------------


def visit_no_show(
    *, case: Case | int, actor: User, expected_version: int | None = None
) -> Appointment:
    """The station records that the youth did not come; the handler decides what next."""
    now = timezone.now()
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not acts_for_station(case, actor):
            raise NotPermitted()
        _require_visit_case(case)
        appointment = _locked_active(case)
        if appointment.status != Status.CONFIRMED:
            raise InvalidTransition(_("Only a confirmed visit can be missed."))
        if appointment.slot.starts_at > now:
            raise InvalidTransition(_("The visit has not started yet."))
        appointment.status = Status.NO_SHOW
        appointment.remind_at = None
        appointment.save(update_fields=["status", "remind_at", "updated_at"])
        _record(case, appointment, appointment.slot, kind=EventKind.VISIT_NO_SHOW, actor=actor)
    return appointment


def _undecided_no_show(case: Case) -> Appointment:
    appointment = latest_appointment(case)
    if appointment is None or appointment.status != Status.NO_SHOW or appointment.no_show_decision:
        raise InvalidTransition(_("There is no missed visit to decide on."))
    return Appointment.objects.select_for_update().select_related("slot").get(pk=appointment.pk)


def visit_decide_no_show(
    *,
    case: Case | int,
    actor: User,
    decision: str,
    question: str = "",
    reason: str = "",
    note: str = "",
    expected_version: int | None = None,
) -> Case:
    """The handler decides after a no-show: book another visit, ask the youth, or reject.

    One timeline event either way: ``visit_rebook`` (the verification clock starts
    afresh and the youth may book again), ``info_requested`` or ``rejected``, each
    naming the missed appointment.
    """
    D = Appointment.NoShowDecision
    if decision not in D.values:
        raise ValidationFailed(field_errors={"decision": [str(_("Choose what happens next."))]})
    question, note = (question or "").strip(), (note or "").strip()
    if decision == D.REQUEST_INFO and not question:
        raise ValidationFailed(field_errors={"question": [str(_("Write the question."))]})
    if decision == D.REJECT and reason not in Case.RejectReason.values:
        raise ValidationFailed(
            field_errors={"reason": [str(_("Choose a reason for the rejection."))]}
        )
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        _require_visit_case(case)
        appointment = _undecided_no_show(case)
        appointment.no_show_decision = decision
        appointment.save(update_fields=["no_show_decision", "updated_at"])
        if decision == D.RESCHEDULE:
            from workflows import sla

            sla.restart_clock(case, timezone.now())
            _record(case, appointment, appointment.slot, kind=EventKind.VISIT_REBOOK, actor=actor)
        elif decision == D.REQUEST_INFO:
            check_transition(case, "request_info", actor)
            msg = CaseMessage.objects.create(
                case=case, author=actor, kind=CaseMessage.Kind.QUESTION, body=question
            )
            apply_transition(
                case,
                "request_info",
                actor=actor,
                kind=EventKind.INFO_REQUESTED,
                payload={"message": msg.pk, "no_show": appointment.pk},
            )
        else:
            check_transition(case, "reject", actor)
            payload = {"reason": reason, "no_show": appointment.pk}
            if note:
                payload["message"] = CaseMessage.objects.create(
                    case=case, author=actor, kind=CaseMessage.Kind.FEEDBACK, body=note
                ).pk
            apply_transition(
                case,
                "reject",
                actor=actor,
                kind=EventKind.REJECTED,
                payload=payload,
                args=(reason,),
            )
    return case


def settle_appointment(case: Case, event) -> None:
    """The case left verification: its visit was made (a recorded verification) or is
    cancelled (any other way out), and a cancelled one frees its seat.

    Called by ``finish_change`` under the case lock when a station case leaves the
    visit states; a cancellation is one more timeline event.
    """
    appointment = active_appointment(case, lock=True)
    if appointment is None:
        return
    if "verification" in (event.payload or {}):
        appointment.status = Status.VISITED
        appointment.remind_at = None
        appointment.save(update_fields=["status", "remind_at", "updated_at"])
        return
    appointment.status = Status.CANCELLED
    appointment.remind_at = None
    appointment.save(update_fields=["status", "remind_at", "updated_at"])
    _free_seat(appointment.slot_id)
    _record(case, appointment, appointment.slot, kind=EventKind.VISIT_CANCELLED, actor=None)


# --- reminders ---------------------------------------------------------------------------


def due_reminders(now: datetime):
    """Appointments whose reminder is due (the partial index appointment_remind_idx)."""
    return Appointment.objects.filter(remind_at__isnull=False, remind_at__lte=now).order_by(
        "remind_at"
    )


def visit_reminder_sweep(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Send the due visit reminders (youth and station) through the outbox; returns how many.

    Each reminder is one transaction under the case lock: a reminder is sent once, and
    an appointment moved meanwhile is skipped (its new reminder time applies).
    """
    now = now or timezone.now()
    batch = batch or settings.STATIONS_REMINDER_BATCH
    sent = 0
    for pk, case_id in due_reminders(now).values_list("pk", "case_id")[:batch]:
        with transaction.atomic():
            case = lock_case(case_id)
            appointment = (
                Appointment.objects.select_for_update()
                .select_related("slot")
                .filter(pk=pk, remind_at__lte=now, status=Status.CONFIRMED)
                .first()
            )
            if appointment is None:
                Appointment.objects.filter(pk=pk, remind_at__lte=now).exclude(
                    status=Status.CONFIRMED
                ).update(remind_at=None)
                continue
            appointment.remind_at = None
            appointment.save(update_fields=["remind_at", "updated_at"])
            _record(case, appointment, appointment.slot, kind=EventKind.VISIT_REMINDER, actor=None)
            sent += 1
    return sent


__all__ = [
    "SlotFull",
    "SlotView",
    "active_appointment",
    "acts_for_station",
    "latest_appointment",
    "settle_appointment",
    "station_slots",
    "station_week",
    "visit_book",
    "visit_confirm",
    "visit_decide_no_show",
    "visit_no_show",
    "visit_propose",
    "visit_reminder_sweep",
    "visit_reschedule",
]
