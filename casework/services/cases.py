"""The case lifecycle: one service per transition of the state machine.

Each takes keyword-only arguments and an ``actor`` (None for the system),
locks the case row, re-checks the state, transitions, appends the timeline
event and returns the case. Nothing else writes a case.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..errors import NotPermitted, ValidationFailed
from ..events import EventKind, append_event
from ..locks import lock_case
from ..models import Case, CaseMessage, Category, Organisation, User, Verification
from ..states import CaseState
from ._core import add_message, apply_transition, check_transition, finish_change
from .ratings import refuse_unratable, save_rating, validate_rating
from .routing import move_case
from .scores import record_events, record_rating


def _required_text(value: str | None, field: str, message=None) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(field_errors={field: [str(message or _("This field is required."))]})
    return text


_add_message = add_message


def _assign_if_unassigned(actor: User):
    def then(case: Case) -> None:
        if case.assignee_id is None:
            case.assignee = actor

    return then


def _forget_resume_state(case: Case) -> None:
    case.resume_state = ""


def case_submit(
    *,
    youth: User,
    category: Category,
    region_code: str,
    title: str,
    description: str,
    urgency: str = Case.Urgency.NORMAL,
    requested_org: Organisation | None = None,
    is_public: bool = True,
    channel: str = Case.Channel.ONLINE,
    entered_by: User | None = None,
) -> Case:
    """A youth asks for help ("找帮助"): create the case and route it to an organisation.

    ``channel`` and ``entered_by``: a case entered for the youth by staff or a partner
    service (casework.services.intake); the timeline names the channel and who entered it.
    """
    from notifications.services import notify_event
    from workflows import sla
    from workflows.engine import start_case_flow
    from workflows.routing import route_for

    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors["title"] = [str(_("This field is required."))]
    if not (description or "").strip():
        errors["description"] = [str(_("This field is required."))]
    if urgency not in Case.Urgency.values:
        errors["urgency"] = [str(_("Choose a valid urgency."))]
    if channel not in Case.Channel.values:
        errors["channel"] = [str(_("Choose how the request came in."))]
    if not (region_code or "").isdigit():
        errors["region_code"] = [str(_("Choose a region."))]
    if errors:
        raise ValidationFailed(field_errors=errors)
    if youth is None or not youth.is_authenticated:
        raise NotPermitted(_("Sign in to ask for help."))
    from .privacy import require_guardian_consent, require_known_age

    require_known_age(youth)  # the consent rule needs the youth's age
    require_guardian_consent(youth)  # under 14: a guardian's recorded consent first

    with transaction.atomic():
        try:
            decision = route_for(
                region=region_code,
                category=category.code,
                named_org_id=requested_org.pk if requested_org else None,
            )
        except LookupError:
            raise ValidationFailed(
                field_errors={"region_code": [str(_("No organisation serves this region yet."))]}
            ) from None
        now = timezone.now()
        case = Case(
            youth=youth,
            category=category,
            region_code=region_code,
            title=title.strip(),
            description=description.strip(),
            urgency=urgency,
            requested_org=requested_org,
            # Sensitive categories are private everywhere, whatever the youth chose.
            is_public=is_public and not category.sensitive,
            channel=channel,
            org_id=decision.org_id,
            submitted_at=now,
        )
        case.category = category
        sla.restart_clock(case, now)
        case.save(force_insert=True)
        payload = {"category": category.code, "urgency": urgency, "region": region_code}
        if channel != Case.Channel.ONLINE:
            payload["channel"] = channel
        submitted = append_event(
            case,
            kind=EventKind.SUBMITTED,
            actor=entered_by or youth,
            to_state=case.state,
            payload=payload,
            at=now,
        )
        routed = append_event(
            case, kind=EventKind.ROUTED, actor=None, payload=decision.as_payload(), at=now
        )
        record_events([(case.category_id, routed)])
        case.save(update_fields=["last_event_seq", "last_event_hash", "stage_due_at"])
        start_case_flow(case)
        notify_event(case, submitted)
    return case


def case_accept(*, case: Case | int, actor: User, expected_version: int | None = None) -> Case:
    """Intake review accepts the case; offline verification comes next."""
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        apply_transition(
            case, "accept", actor=actor, kind=EventKind.ACCEPTED, then=_assign_if_unassigned(actor)
        )
    return case


def case_reject(
    *,
    case: Case | int,
    actor: User,
    reason: str,
    note: str = "",
    expected_version: int | None = None,
) -> Case:
    """Decline the case with one of the fixed reasons (duplicate, out of scope, abuse, ...)."""
    if reason not in Case.RejectReason.values:
        raise ValidationFailed(
            _("A rejection needs a reason."),
            field_errors={"reason": [str(_("Choose a reason for the rejection."))]},
        )
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        check_transition(case, "reject", actor)
        payload = {"reason": reason}
        if note.strip():
            msg = _add_message(case, actor, CaseMessage.Kind.FEEDBACK, note.strip())
            payload["message"] = msg.pk
        apply_transition(
            case, "reject", actor=actor, kind=EventKind.REJECTED, payload=payload, args=(reason,)
        )
    return case


def case_appeal(
    *, case: Case | int, actor: User, statement: str = "", expected_version: int | None = None
) -> Case:
    """The youth appeals a rejection: the case starts again at the parent organisation."""
    from workflows.engine import start_case_flow

    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        payload = {}
        if statement.strip():
            payload["message"] = _add_message(
                case, actor, CaseMessage.Kind.DISPUTE, statement.strip()
            ).pk
        apply_transition(case, "appeal", actor=actor, kind=EventKind.APPEALED, payload=payload)
        parent = case.org.parent_org()
        if parent is not None:
            move_case(case, to_org=parent, actor=actor, kind=EventKind.ESCALATED, reason="appeal")
        start_case_flow(case)
    return case


def case_schedule_verification(
    *,
    case: Case | int,
    actor: User,
    station: Organisation | None = None,
    expected_version: int | None = None,
) -> Case:
    """Send the case offline for verification ("一键转至线下").

    The verification is done by a station, or by the holding organisation's own verifiers.
    """
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        if station is not None and (
            station.kind != Organisation.Kind.STATION
            or not station.is_active
            or not station.path.startswith(case.org.parent_path() or case.org.path)
        ):
            raise ValidationFailed(
                field_errors={"station": [str(_("Choose an active service station."))]}
            )
        apply_transition(
            case,
            "schedule_verification",
            actor=actor,
            kind=EventKind.VERIFICATION_SCHEDULED,
            payload={"station": station.pk if station else None},
            args=(station,),
        )
    return case


def case_record_verification(
    *,
    case: Case | int,
    actor: User,
    confirmed: bool,
    findings: str,
    expected_version: int | None = None,
) -> Case:
    """The verifier records what was found in person; a disconfirmation rejects the case."""
    findings = _required_text(findings, "findings")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        # Findings either way come from a verifier of a case under verification: the
        # disconfirming outcome must not let anyone who may reject record "findings".
        check_transition(case, "confirm", actor)
        verification = Verification.objects.create(
            case=case, verifier=actor, station=case.station, confirmed=confirmed, findings=findings
        )
        payload = {"verification": verification.pk, "confirmed": confirmed}
        if confirmed:
            apply_transition(
                case, "confirm", actor=actor, kind=EventKind.VERIFICATION_CONFIRMED, payload=payload
            )
        else:
            payload["reason"] = Case.RejectReason.NOT_CONFIRMED
            apply_transition(
                case,
                "reject",
                actor=actor,
                kind=EventKind.REJECTED,
                payload=payload,
                args=(Case.RejectReason.NOT_CONFIRMED,),
            )
    return case


def case_request_info(
    *, case: Case | int, actor: User, question: str, expected_version: int | None = None
) -> Case:
    """Ask the youth for information; the SLA clock pauses until they answer."""
    question = _required_text(question, "question")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor, message=True)
        check_transition(case, "request_info", actor)
        msg = _add_message(case, actor, CaseMessage.Kind.QUESTION, question)
        apply_transition(
            case,
            "request_info",
            actor=actor,
            kind=EventKind.INFO_REQUESTED,
            payload={"message": msg.pk},
        )
    return case


def case_provide_info(
    *, case: Case | int, actor: User, answer: str, expected_version: int | None = None
) -> Case:
    """The youth answers; the case returns to where it was and its clock resumes."""
    answer = _required_text(answer, "answer")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor, message=True)
        check_transition(case, "provide_info", actor)
        msg = _add_message(case, actor, CaseMessage.Kind.ANSWER, answer)
        apply_transition(
            case,
            "provide_info",
            actor=actor,
            kind=EventKind.INFO_PROVIDED,
            payload={"message": msg.pk},
            then=_forget_resume_state,
        )
    return case


def case_resolve(
    *,
    case: Case | int,
    actor: User,
    outcome: str,
    note: str,
    expected_version: int | None = None,
) -> Case:
    """Record the outcome (solved, partly, not solvable, with reasons)."""
    if outcome not in Case.Outcome.values:
        raise ValidationFailed(field_errors={"outcome": [str(_("Choose an outcome."))]})
    note = _required_text(note, "note")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)

        def record_note(case: Case) -> None:
            case.outcome_note = note

        apply_transition(
            case,
            "resolve",
            actor=actor,
            kind=EventKind.RESOLVED,
            payload={"outcome": outcome},
            args=(outcome,),
            then=record_note,
        )
    return case


def case_give_feedback(
    *, case: Case | int, actor: User, message: str, expected_version: int | None = None
) -> Case:
    """Tell the youth the outcome ("及时反馈结果"); the rating window opens."""
    message = _required_text(message, "message")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor, message=True)
        check_transition(case, "give_feedback", actor)
        msg = _add_message(case, actor, CaseMessage.Kind.FEEDBACK, message)
        apply_transition(
            case,
            "give_feedback",
            actor=actor,
            kind=EventKind.FEEDBACK_GIVEN,
            payload={"message": msg.pk},
        )
    return case


def _stars(value, field: str, errors: dict) -> int:
    try:
        stars = int(value)
    except (TypeError, ValueError):
        stars = 0
    if not 1 <= stars <= 5:
        errors[field] = [str(_("Give 1 to 5 stars."))]
    return stars


def case_rate(
    *,
    case: Case | int,
    actor: User,
    timeliness: int,
    attitude: int,
    outcome: int,
    solved: str,
    comment: str = "",
    expected_version: int | None = None,
) -> Case:
    """The youth rates the handling ("接受青年评价"); the case closes and the scores move.

    A case rated again after a reopen replaces its earlier rating (docs/scores.md).
    """
    values = validate_rating(
        timeliness=timeliness, attitude=attitude, outcome=outcome, solved=solved
    )
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        refuse_unratable(case)
        check_transition(case, "rate", actor)
        rating, previous = save_rating(case, values=values, comment=(comment or "").strip())
        stars = {f: values[f] for f in ("timeliness", "attitude", "outcome")}
        apply_transition(
            case,
            "rate",
            actor=actor,
            kind=EventKind.RATED,
            payload={"rating": rating.pk, "solved": solved, **stars},
        )
        record_rating(case, rating, previous=previous)
    return case


def case_dispute(
    *, case: Case | int, actor: User, reason: str, expected_version: int | None = None
) -> Case:
    """The youth disputes the outcome: the case reopens; a second reopen escalates it.

    Possible while feedback is given, and after the youth's own low or "not solved"
    rating closed the case, within the rating window (the rating stays counted until
    a new one replaces it).
    """
    from workflows.engine import start_case_flow

    reason = _required_text(reason, "reason")
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        check_transition(case, "dispute", actor)
        reopening_closed = case.state == CaseState.CLOSED
        msg = _add_message(case, actor, CaseMessage.Kind.DISPUTE, reason)
        disputed = apply_transition(
            case,
            "dispute",
            actor=actor,
            kind=EventKind.DISPUTED,
            payload={"message": msg.pk, "reopen": case.reopen_count + 1},
        )
        record_events([(case.category_id, disputed)])
        if reopening_closed:
            # The closing ended the case's flow: a new one starts at coordination.
            start_case_flow(case)
        if case.reopen_count > settings.CASEWORK_REOPENS_BEFORE_ESCALATION:
            parent = case.org.parent_org()
            if parent is not None:
                move_case(
                    case, to_org=parent, actor=None, kind=EventKind.ESCALATED, reason="reopened"
                )
    return case


def case_auto_close(*, case: Case | int) -> Case:
    """The system closes a case whose rating window ended without a rating."""
    with transaction.atomic():
        case = lock_case(case)
        apply_transition(case, "auto_close", actor=None, kind=EventKind.AUTO_CLOSED)
    return case


def case_withdraw(
    *, case: Case | int, actor: User, reason: str = "", expected_version: int | None = None
) -> Case:
    """The youth withdraws an open case."""
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version, actor=actor)
        check_transition(case, "withdraw", actor)
        payload = {}
        if reason.strip():
            payload["message"] = _add_message(case, actor, CaseMessage.Kind.NOTE, reason.strip()).pk
        apply_transition(case, "withdraw", actor=actor, kind=EventKind.WITHDRAWN, payload=payload)
    return case


def case_comment(*, case: Case | int, actor: User, body: str, internal: bool = True) -> Case:
    """Add a note to the case (internal to staff by default; a youth's note never is)."""
    from .. import permissions

    body = _required_text(body, "body")
    with transaction.atomic():
        case = lock_case(case)
        # Partners see only their task, so they do not write on the case itself.
        access = permissions.case_access(case, actor)
        if access not in (permissions.ACCESS_STAFF, permissions.ACCESS_YOUTH):
            raise NotPermitted()
        if access == permissions.ACCESS_YOUTH:
            internal = False
        msg = _add_message(case, actor, CaseMessage.Kind.NOTE, body, internal=internal)
        finish_change(
            case,
            kind=EventKind.COMMENT,
            actor=actor,
            from_state=case.state,
            payload={"message": msg.pk, "internal": internal},
        )
    return case


__all__ = [
    "case_accept",
    "case_appeal",
    "case_auto_close",
    "case_comment",
    "case_dispute",
    "case_give_feedback",
    "case_provide_info",
    "case_rate",
    "case_record_verification",
    "case_reject",
    "case_request_info",
    "case_resolve",
    "case_schedule_verification",
    "case_submit",
    "case_withdraw",
]
