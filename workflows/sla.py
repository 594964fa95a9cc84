"""SLA stage clocks: which clock runs in which state, and when a stage is due.

Deadlines live on the case (``stage_due_at``, indexed for open cases) and are
acted on by the sweep; never by broker ETAs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from casework.states import CaseState

# Which SLA clock runs in each state; awaiting_youth pauses the clock it interrupted.
CLOCK_OF_STATE = {
    CaseState.SUBMITTED: "accept",
    CaseState.ACCEPTED: "verify",
    CaseState.VERIFYING: "verify",
    CaseState.COORDINATING: "resolve",
    CaseState.RESOLVED: "feedback",
    CaseState.FEEDBACK_GIVEN: "rating",
}


def clock_for(state: str) -> str | None:
    return CLOCK_OF_STATE.get(state)


def stage_duration(clock: str, *, category_code: str, urgency: str) -> timedelta:
    """How long a stage may take. Defaults come from settings.SLA_DEFAULT_HOURS."""
    if clock == "rating":
        return settings.CASEWORK_RATING_WINDOW
    hours = settings.SLA_DEFAULT_HOURS[clock]
    factor = settings.SLA_URGENCY_FACTOR.get(urgency, 1)
    return timedelta(hours=hours * factor)


def due_after(case, clock: str, start: datetime) -> datetime:
    return start + stage_duration(clock, category_code=case.category.code, urgency=case.urgency)


def restart_clock(case, now: datetime) -> None:
    """Start the clock of the case's current state afresh (new stage or new level)."""
    clock = clock_for(case.state)
    case.sla_paused_remaining = None
    case.sla_breached = False
    if clock is None:
        case.stage_due_at = None
        case.stage_started_at = None
        return
    case.stage_started_at = now
    case.stage_due_at = due_after(case, clock, now)


def apply_transition(case, from_state: str, now: datetime) -> None:
    """Move the case's SLA clock after a transition from ``from_state``.

    Entering awaiting_youth pauses the running clock and keeps what was left;
    leaving it resumes from there. A new stage starts a fresh clock.
    """
    if case.state == CaseState.AWAITING_YOUTH:
        if case.stage_due_at is not None:
            case.sla_paused_remaining = max(case.stage_due_at - now, timedelta(0))
        case.stage_due_at = None
        return
    resuming = from_state == CaseState.AWAITING_YOUTH and case.sla_paused_remaining is not None
    if resuming and clock_for(case.state) is not None:
        case.stage_due_at = now + case.sla_paused_remaining
        case.sla_paused_remaining = None
        return
    # A state without a clock (withdrawn from awaiting_youth, say) also drops a paused rest.
    if clock_for(case.state) is None or clock_for(case.state) != clock_for(from_state):
        restart_clock(case, now)
