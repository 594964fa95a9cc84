"""SLA stage clocks: which clock runs in which state, and when a stage is due.

Deadlines live on the case (``stage_due_at`` and ``remind_at``, indexed for
open cases) and are acted on by the sweep (``casework.services.sla_sweep``);
never by broker ETAs.

The stage clocks (accept, verify, resolve, feedback) run in business time on
the platform's calendar (``workflows.calendar``); the rating window is counted
in calendar days. Durations come from the ``SlaPolicy`` rows that match the
case's category and urgency, loaded once per process and reloaded after an
admin edit (at once in the editing process, within ``SLA_CACHE_SECONDS``
elsewhere).
"""

from __future__ import annotations

import threading
import time as _time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from casework.states import CaseState

from .calendar import DEFAULT_HOURS, DEFAULT_TIME_ZONE, BusinessCalendar, hours, parse_hours

# Which SLA clock runs in each state; awaiting_youth pauses the clock it interrupted.
CLOCK_OF_STATE = {
    CaseState.SUBMITTED: "accept",
    CaseState.ACCEPTED: "verify",
    CaseState.VERIFYING: "verify",
    CaseState.COORDINATING: "resolve",
    CaseState.RESOLVED: "feedback",
    CaseState.FEEDBACK_GIVEN: "rating",
}
STAGE_CLOCKS = ("accept", "verify", "resolve", "feedback")
# The rating clock's deadline closes the case instead of escalating it.
RATING_CLOCK = "rating"
DEFAULT_REMINDER_FRACTION = 0.75


def clock_for(state: str) -> str | None:
    return CLOCK_OF_STATE.get(state)


@dataclass(frozen=True)
class Policy:
    """The plain-data form of an ``SlaPolicy`` row (or of the settings fallback)."""

    accept: timedelta
    verify: timedelta
    resolve: timedelta
    feedback: timedelta
    reminder_fraction: float
    rating_window: timedelta

    def duration(self, clock: str) -> timedelta:
        if clock == RATING_CLOCK:
            return self.rating_window
        return getattr(self, clock)

    def scaled(self, factor: float) -> Policy:
        if factor == 1:
            return self
        return Policy(
            accept=self.accept * factor,
            verify=self.verify * factor,
            resolve=self.resolve * factor,
            feedback=self.feedback * factor,
            reminder_fraction=self.reminder_fraction,
            rating_window=self.rating_window,
        )


def _settings_policy() -> Policy:
    defaults = settings.SLA_DEFAULT_HOURS
    return Policy(
        accept=hours(defaults["accept"]),
        verify=hours(defaults["verify"]),
        resolve=hours(defaults["resolve"]),
        feedback=hours(defaults["feedback"]),
        reminder_fraction=getattr(settings, "SLA_REMINDER_FRACTION", DEFAULT_REMINDER_FRACTION),
        rating_window=settings.CASEWORK_RATING_WINDOW,
    )


@dataclass(frozen=True)
class PolicyTable:
    """Every policy keyed by (category code or "", urgency or ""), most specific wins."""

    rows: dict[tuple[str, str], Policy]
    fallback: Policy

    def lookup(self, category_code: str, urgency: str) -> Policy:
        """Most specific first: category and urgency, category, urgency, the default row.

        A row written for one urgency applies as it is; a row for any urgency is
        scaled by ``SLA_URGENCY_FACTOR``, so "urgent" is quicker even where no
        one wrote an urgent row.
        """
        exact = self.rows.get((category_code, urgency))
        if exact is not None:
            return exact
        factor = settings.SLA_URGENCY_FACTOR.get(urgency, 1)
        if (category_code, "") in self.rows:
            return self.rows[(category_code, "")].scaled(factor)
        if ("", urgency) in self.rows:
            return self.rows[("", urgency)]
        return self.rows.get(("", ""), self.fallback).scaled(factor)


# --- the per-process cache of calendar and policies --------------------------

_lock = threading.Lock()
_cache: dict = {}


def invalidate() -> None:
    """Forget the cached calendar and policies (called when an admin saves a row)."""
    with _lock:
        _cache.clear()


def _cache_seconds() -> float:
    return float(getattr(settings, "SLA_CACHE_SECONDS", 60))


def _load():
    from .models import CalendarDay, SlaPolicy, WorkingHours

    config = WorkingHours.objects.filter(pk=1).first()
    time_zone = config.time_zone if config else getattr(settings, "TIME_ZONE", DEFAULT_TIME_ZONE)
    intervals = parse_hours(config.hours) if config and config.hours else DEFAULT_HOURS
    weekend = frozenset(config.weekend) if config else frozenset({5, 6})
    holidays, workdays = set(), set()
    for day, kind in CalendarDay.objects.values_list("date", "kind"):
        (workdays if kind == CalendarDay.Kind.WORKDAY else holidays).add(day)
    calendar = BusinessCalendar(
        time_zone=time_zone,
        hours=intervals,
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        weekend=weekend,
    )
    rows = {}
    for policy in SlaPolicy.objects.select_related("category"):
        key = (policy.category.code if policy.category_id else "", policy.urgency or "")
        rows[key] = policy.as_policy()
    return calendar, PolicyTable(rows=rows, fallback=_settings_policy())


def _loaded():
    now = _time.monotonic()
    with _lock:
        if _cache and now - _cache["at"] < _cache_seconds():
            return _cache["calendar"], _cache["policies"]
    calendar, policies = _load()
    with _lock:
        _cache.update(at=now, calendar=calendar, policies=policies)
    return calendar, policies


def current_calendar() -> BusinessCalendar:
    return _loaded()[0]


def policy_for(*, category_code: str, urgency: str) -> Policy:
    return _loaded()[1].lookup(category_code, urgency)


# --- clocks -------------------------------------------------------------------


def stage_duration(clock: str, *, category_code: str, urgency: str) -> timedelta:
    """How long a stage may take: business time for stages, calendar time for rating."""
    return policy_for(category_code=category_code, urgency=urgency).duration(clock)


def deadlines(
    policy: Policy, clock: str, start: datetime, calendar: BusinessCalendar
) -> tuple[datetime, datetime | None]:
    """(due, remind) for a stage started at ``start``; the rating window has no reminder."""
    if clock == RATING_CLOCK:
        return start + policy.rating_window, None
    duration = policy.duration(clock)
    due = calendar.add(start, duration)
    remind = calendar.add(start, duration * policy.reminder_fraction)
    return due, (remind if remind < due else None)


def due_after(case, clock: str, start: datetime) -> datetime:
    policy = policy_for(category_code=case.category.code, urgency=case.urgency)
    return deadlines(policy, clock, start, current_calendar())[0]


def restart_clock(case, now: datetime) -> None:
    """Start the clock of the case's current state afresh (new stage or new level)."""
    clock = clock_for(case.state)
    case.sla_paused_remaining = None
    case.sla_breached = False
    case.stage_reminded = False
    if clock is None:
        case.stage_due_at = None
        case.stage_started_at = None
        case.remind_at = None
        return
    policy = policy_for(category_code=case.category.code, urgency=case.urgency)
    case.stage_started_at = now
    case.stage_due_at, case.remind_at = deadlines(policy, clock, now, current_calendar())


def pause_clock(case, now: datetime) -> None:
    """Keep the working time left on the running clock; nothing falls due while paused."""
    if case.stage_due_at is not None:
        case.sla_paused_remaining = current_calendar().between(now, case.stage_due_at)
    case.stage_due_at = None
    case.remind_at = None


def resume_clock(case, now: datetime) -> None:
    """Restart a paused clock where it stopped: the same working time left, the same reminder.

    A reminder already sent for this stage and level is not sent again.
    """
    calendar = current_calendar()
    remaining = case.sla_paused_remaining
    case.stage_due_at = calendar.add(now, remaining)
    case.sla_paused_remaining = None
    case.remind_at = None
    if not case.stage_reminded:
        policy = policy_for(category_code=case.category.code, urgency=case.urgency)
        lead = policy.duration(clock_for(case.state)) * (1 - policy.reminder_fraction)
        case.remind_at = calendar.add(now, max(remaining - lead, timedelta(0)))


def apply_transition(case, from_state: str, now: datetime) -> None:
    """Move the case's SLA clock after a transition from ``from_state``.

    Entering awaiting_youth pauses the running clock and keeps the working time
    left; leaving it resumes from there. A new stage starts a fresh clock.
    """
    if case.state == CaseState.AWAITING_YOUTH:
        pause_clock(case, now)
        return
    resuming = from_state == CaseState.AWAITING_YOUTH and case.sla_paused_remaining is not None
    if resuming and clock_for(case.state) is not None:
        resume_clock(case, now)
        return
    # A state without a clock (withdrawn from awaiting_youth, say) also drops a paused rest.
    if clock_for(case.state) is None or clock_for(case.state) != clock_for(from_state):
        restart_clock(case, now)


# --- loading the calendar -------------------------------------------------------


def load_calendar(years, *, overwrite_admin: bool = False) -> dict[int, int | None]:
    """Load public holidays and adjusted working days of ``years`` from ``chinese_calendar``.

    Days an administrator entered are kept unless ``overwrite_admin``. Returns
    {year: rows written}, with None for a year the installed package does not
    cover yet.
    """
    from django.db import transaction

    from .calendar import package_days
    from .models import CalendarDay

    written: dict[int, int | None] = {}
    for year in years:
        try:
            days = package_days(year)
        except LookupError:
            written[year] = None
            continue
        count = 0
        with transaction.atomic():
            existing = {row.date: row for row in CalendarDay.objects.filter(date__year=year)}
            for day, kind, name in days:
                row = existing.get(day)
                is_admin = row is not None and row.source == CalendarDay.Source.ADMIN
                if is_admin and not overwrite_admin:
                    continue
                if row is not None and (row.kind, row.name, row.source) == (
                    kind,
                    name,
                    CalendarDay.Source.PACKAGE,
                ):
                    continue
                CalendarDay.objects.update_or_create(
                    date=day,
                    defaults={"kind": kind, "name": name, "source": CalendarDay.Source.PACKAGE},
                )
                count += 1
        written[year] = count
    invalidate()
    return written
