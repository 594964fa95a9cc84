"""What every case service does: lock, re-check, change, record, sync, save."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import can_proceed

from ..errors import InvalidTransition, NotPermitted
from ..events import append_event
from ..locks import save_case
from ..models import Case, User
from ..states import CaseState

# The states in which a station visit stays arranged (casework.services.stations).
VISIT_STATES = (CaseState.VERIFYING, CaseState.AWAITING_YOUTH)

# Why a transition whose source state fits may still be refused (its FSM condition).
CONDITION_MESSAGES = {
    "appeal": _("A rejection can be appealed once, within the appeal window."),
    "resolve": _("Every required coordination task must be done or waived first."),
    "dispute": _(
        "A closed case can be disputed only after your own low or “not solved” rating, "
        "within the rating window."
    ),
}


def check_transition(case: Case, action: str, actor: User | None) -> Callable:
    """Return the bound transition method, or raise the domain error that explains why not."""
    method = getattr(case, action)
    if not can_proceed(method, check_conditions=False):
        raise InvalidTransition(
            _("“%(action)s” is not possible while the case is %(state)s.")
            % {"action": action.replace("_", " "), "state": case.get_state_display()}
        )
    # Who comes before when: a person without the role learns nothing about the
    # conditions (an appeal window, open coordination tasks) of someone else's case.
    meta = method._django_fsm
    if not meta.has_transition_perm(case, meta.field.get_state(case), actor):
        raise NotPermitted()
    if not can_proceed(method):
        raise InvalidTransition(CONDITION_MESSAGES.get(action))
    return method


def finish_change(case: Case, *, kind: str, actor: User | None, from_state: str = "", **kw):
    """Record the change on the timeline, bump the version, sync the human tasks, save.

    Called inside the transaction that holds the case lock.
    """
    from notifications.services import notify_event
    from workflows.engine import sync_case_tasks

    case.version += 1
    event = append_event(
        case, kind=kind, actor=actor, from_state=from_state, to_state=case.state, **kw
    )
    save_case(case)
    sync_case_tasks(case, actor=actor, from_state=from_state)
    notify_event(case, event)
    if case.station_id and _left_verification(case, from_state):
        # A station case left verification: its visit was made or is cancelled.
        from .stations import settle_appointment

        settle_appointment(case, event)
    return event


def _left_verification(case: Case, from_state: str) -> bool:
    """The change took the case out of verification, where a station visit may be arranged
    (also from a pause that would have returned to verification)."""
    if case.state in VISIT_STATES:
        return False
    return from_state == CaseState.VERIFYING or (
        from_state == CaseState.AWAITING_YOUTH and case.resume_state == CaseState.VERIFYING
    )


def apply_transition(
    case: Case,
    action: str,
    *,
    actor: User | None,
    kind: str,
    payload: dict | None = None,
    args: tuple = (),
    then: Callable[[Case], None] | None = None,
):
    """Run the FSM transition ``action`` on a locked case and record it.

    ``then(case)`` makes the service's own further changes to the case after the
    transition, so that they are saved with it in the same UPDATE.
    """
    from workflows import sla

    method = check_transition(case, action, actor)
    from_state = case.state
    method(*args)
    now = timezone.now()
    sla.apply_transition(case, from_state, now)
    if then is not None:
        then(case)
    return finish_change(case, kind=kind, actor=actor, from_state=from_state, payload=payload)
