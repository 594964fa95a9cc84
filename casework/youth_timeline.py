"""The case in plain words for the young person who asked for help.

Pure functions: they read a case and its events (already loaded) and an
``org_names`` mapping, and return sentences. Internal entries (comments,
reminders, evidence, staff names, notes) never reach the youth: only the kinds
listed in ``SENTENCES`` are told, everything else is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext_lazy as _

from .models import Case, CaseEvent, Rating
from .states import CaseState

# One sentence per timeline kind; {org} is the organisation the event concerns,
# {to_org} the one the case moved to.
SENTENCES = {
    "submitted": _("You sent your request."),
    "routed": _("Your request was received by {org}."),
    "accepted": _("{org} accepted your request and will check the facts."),
    "rejected": _("{org} declined your request ({reason})."),
    "appealed": _("You appealed the decision."),
    "verification_scheduled": _("{station} was asked to check the facts with you in person."),
    "verification_confirmed": _(
        "The in-person check confirmed the facts; work on a solution has started."
    ),
    "info_requested": _("{org} asked you for more information."),
    "info_provided": _("You answered the question."),
    "resolved": _("{org} recorded the result: {outcome}."),
    "feedback_given": _("{org} told you the result."),
    "rated": _("You rated how your request was handled."),
    "disputed": _("You said the result was not right; your request was reopened."),
    "auto_closed": _("Your request was closed because the time to rate it ended."),
    "withdrawn": _("You withdrew your request."),
    "assigned": _("A staff member of {org} is now looking after your request."),
    "escalated": _("Your request was passed up to {to_org} ({reason})."),
    "transferred": _("Your request was transferred to {to_org}."),
    "delegated": _("Your request was passed to {to_org}, which works closer to you."),
    "referred": _("{org} asked a partner body to help with part of the solution."),
    "referral_done": _("A partner body finished its part of the work."),
    "referral_waived": _("A planned step with a partner body is no longer needed."),
    "rating_edited": _("You changed your rating."),
    "complaint": _("You complained about how your request was handled."),
    "complaint_answered": _("The supervisors answered your complaint."),
    # Station visits (casework.services.stations); {visit} is the visit's local time.
    "visit_booked": _("You booked a visit at {station} for {visit}."),
    "visit_proposed": _("{station} proposed a visit at {visit}; please confirm it."),
    "visit_confirmed": _("You confirmed the visit at {station} for {visit}."),
    "visit_rescheduled": _("The visit at {station} was moved to {visit}."),
    "visit_cancelled": _("The visit at {station} on {visit} was cancelled."),
    "visit_no_show": _("You did not come to the visit at {station} on {visit}."),
    "visit_rebook": _("Please book another visit at {station}."),
    "claimed": _("You took this request into your account."),
    "visit_rated": _("You rated your visit to the station."),
}

# The first line of a case someone entered for the youth (casework.services.intake).
ENTERED_FOR_YOU = {
    "walk_in": _("Staff at a service desk entered your request for you."),
    "phone": _("Your request was taken on the 12355 line and entered for you."),
    "handoff": _("Another platform service passed your question on as a request."),
}

ESCALATION_REASONS = {
    "sla_breach": _("the deadline had passed"),
    "beyond_capacity": _("the previous organisation was too busy"),
    "manual": _("to get more help"),
    "reopened": _("because it was reopened again"),
    "appeal": _("because you appealed"),
}

SOMEONE = _("the organisation")


@dataclass(frozen=True)
class Line:
    at: datetime
    text: str


def org_name(org) -> str:
    """An organisation's name in the current language (English name when there is one)."""
    from django.utils.translation import get_language

    if org is None:
        return ""
    if (get_language() or "").startswith("en") and getattr(org, "name_en", ""):
        return org.name_en
    return org.name


def org_ids_in(events: Iterable[CaseEvent]) -> set[int]:
    """Every organisation an event names, to load their names in one query."""
    ids: set[int] = set()
    for event in events:
        if event.org_id:
            ids.add(event.org_id)
        payload = event.payload or {}
        for key in ("org", "to_org", "station"):
            if isinstance(payload.get(key), int):
                ids.add(payload[key])
    return ids


def _choice_label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value or "")


def sentence(event: CaseEvent, org_names: Mapping[int, str]) -> str | None:
    """The event told to the youth, or None when it is internal."""
    template = SENTENCES.get(event.kind)
    if template is None:
        return None
    payload = event.payload or {}
    if event.kind == "submitted" and payload.get("channel") in ENTERED_FOR_YOU:
        template = ENTERED_FOR_YOU[payload["channel"]]

    def name(org_id) -> str:
        return org_names.get(org_id, "") or str(SOMEONE)

    org = name(payload.get("org") if event.kind == "routed" else event.org_id)
    to_org = name(payload.get("to_org"))
    station = name(payload.get("station") or event.org_id)
    reason = payload.get("reason", "")
    if event.kind == "rejected":
        reason_text = _choice_label(Case.RejectReason, reason)
    else:
        reason_text = str(ESCALATION_REASONS.get(reason, _("to get more help")))
    outcome = _choice_label(Case.Outcome, payload.get("outcome", ""))
    return str(template).format(
        org=org,
        to_org=to_org,
        station=station,
        reason=reason_text,
        outcome=outcome,
        visit=_local_time(payload.get("visit")),
    )


def _local_time(value) -> str:
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    try:
        moment = parse_datetime(str(value or ""))
    except ValueError:
        moment = None
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def plain_timeline(events: Iterable[CaseEvent], org_names: Mapping[int, str]) -> list[Line]:
    """The youth's timeline, oldest first, internal entries left out."""
    lines = []
    for event in sorted(events, key=lambda e: e.seq):
        text = sentence(event, org_names)
        if text:
            lines.append(Line(at=event.at, text=text))
    return lines


# --- where the case stands ---------------------------------------------------

# The five public steps ("线上接收诉求 → 线下核实分析 → 协调解决问题 → 及时反馈结果 →
# 接受青年评价"), and the step each state belongs to.
STEPS = (
    ("intake", _("Online intake")),
    ("verification", _("Offline verification")),
    ("coordination", _("Coordination")),
    ("feedback", _("Feedback")),
    ("rating", _("Your rating")),
)
STEP_OF_STATE = {
    CaseState.SUBMITTED: "intake",
    CaseState.ACCEPTED: "verification",
    CaseState.VERIFYING: "verification",
    CaseState.COORDINATING: "coordination",
    CaseState.RESOLVED: "feedback",
    CaseState.FEEDBACK_GIVEN: "rating",
}

NEXT_STEPS = {
    CaseState.SUBMITTED: _("{org} reviews your request and decides whether to take it on."),
    CaseState.ACCEPTED: _("{org} arranges for someone to check the facts with you in person."),
    CaseState.VERIFYING: _("{station} checks the facts with you in person."),
    CaseState.COORDINATING: _("{org} works on a solution, with partner bodies where needed."),
    CaseState.AWAITING_YOUTH: _(
        "Your turn: answer the question below. The deadline is paused until you answer."
    ),
    CaseState.RESOLVED: _("{org} tells you the result."),
    CaseState.FEEDBACK_GIVEN: _(
        "Your turn: rate how your request was handled, or say if the result is not right."
    ),
    CaseState.CLOSED: _("Nothing more to do: your request is closed."),
    CaseState.REJECTED: _("Your request was declined. You may appeal once, within the window."),
    CaseState.WITHDRAWN: _("Nothing more to do: you withdrew this request."),
}


def steps_for(case: Case) -> list[dict]:
    """The five steps with ``done`` / ``current`` marks for the progress bar."""
    state = case.state
    if state == CaseState.AWAITING_YOUTH:
        state = case.resume_state or CaseState.COORDINATING
    current = STEP_OF_STATE.get(state)
    finished = case.state == CaseState.CLOSED
    keys = [key for key, _label in STEPS]
    index = keys.index(current) if current in keys else (len(keys) if finished else -1)
    return [
        {
            "key": key,
            "label": label,
            "done": i < index or finished,
            "current": i == index and not finished,
        }
        for i, (key, label) in enumerate(STEPS)
    ]


def next_step(case: Case, *, appeal_open: bool = True) -> str:
    """What happens next, and who must act, in one sentence."""
    if case.state == CaseState.REJECTED and not appeal_open:
        return str(_("Your request was declined. The time to appeal has passed."))
    template = NEXT_STEPS.get(case.state, "")
    return str(template).format(org=org_name(case.org), station=org_name(case.station) or SOMEONE)


def solved_label(value: str) -> str:
    return _choice_label(Rating.Solved, value)
