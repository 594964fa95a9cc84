"""Ratings after the fact, complaints (吐槽), reports and their review (docs/scores.md).

The rating itself is given by ``case_rate`` (it closes the case); here it may be
changed within the rating window. Complaints go to the supervisors of the
organisation holding the case, with a deadline. Reports from distinct people
past a threshold hide a case from public pages until a supervisor reviews it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import can_proceed

from .. import permissions
from ..errors import InvalidTransition, NotFound, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import Case, Complaint, Rating, Report, Review, User
from ..scores import is_low_rating
from ..states import CaseState
from ._core import finish_change
from .scores import rating_values, record_rating

STAR_FIELDS = ("timeliness", "attitude", "outcome")
NEGATIVE_REPORTS = (Report.Kind.FAKE, Report.Kind.ABUSIVE, Report.Kind.UNTRUE)


def validate_rating(*, timeliness, attitude, outcome, solved) -> dict:
    """The stars (1..5 each) and the solved answer, or a ValidationFailed naming each field."""
    errors: dict[str, list[str]] = {}
    values = {}
    for name, raw in zip(STAR_FIELDS, (timeliness, attitude, outcome), strict=True):
        try:
            stars = int(raw)
        except (TypeError, ValueError):
            stars = 0
        if not 1 <= stars <= 5:
            errors[name] = [str(_("Give 1 to 5 stars."))]
        values[name] = stars
    if solved not in Rating.Solved.values:
        errors["solved"] = [str(_("Say whether the problem was solved."))]
    if errors:
        raise ValidationFailed(field_errors=errors)
    values["solved"] = solved
    return values


def refuse_unratable(case: Case) -> None:
    """A clear error for cases that never reached an outcome."""
    if case.state in (CaseState.WITHDRAWN, CaseState.REJECTED):
        raise InvalidTransition(
            _("A withdrawn or rejected case cannot be rated: it never reached an outcome.")
        )


def save_rating(case: Case, *, values: dict, comment: str) -> tuple[Rating, dict | None]:
    """Store the case's rating; after a reopen the new rating replaces the earlier one.

    Returns the rating and the replaced values (with ``rated_at``), or None.
    """
    now = timezone.now()
    rating = Rating.objects.filter(case_id=case.pk).first()
    if rating is None:
        return Rating.objects.create(case=case, comment=comment, created_at=now, **values), None
    previous = {**rating_values(rating), "rated_at": rating.created_at}
    for name, value in values.items():
        setattr(rating, name, value)
    rating.comment = comment
    rating.created_at = now
    rating.save()
    return rating, previous


def rating_is_low(rating: Rating) -> bool:
    return is_low_rating(**rating_values(rating), low=float(settings.CASEWORK_LOW_RATING_AVERAGE))


def dispute_offered(case: Case, user: User | None) -> bool:
    """Whether the case's youth may dispute now (pages show the button when True).

    While feedback is given, always; after their own low or "not solved" rating,
    within the rating window.
    """
    return permissions.is_case_youth(case, user) and can_proceed(case.dispute)


def rating_edit(
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
    """The youth changes their rating, within the rating window after giving it.

    The window (``CASEWORK_RATING_WINDOW``) counts from when the rating was given;
    the scores move by the difference, at once.
    """
    values = validate_rating(
        timeliness=timeliness, attitude=attitude, outcome=outcome, solved=solved
    )
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not permissions.is_case_youth(case, actor):
            raise NotPermitted()
        refuse_unratable(case)
        rating = Rating.objects.filter(case_id=case.pk).first()
        if rating is None or case.state != CaseState.CLOSED:
            raise InvalidTransition(_("Only the rating of a closed case can be changed."))
        if timezone.now() - rating.created_at > settings.CASEWORK_RATING_WINDOW:
            raise InvalidTransition(
                _("The rating can be changed only within %(days)d days of giving it.")
                % {"days": settings.CASEWORK_RATING_WINDOW.days}
            )
        previous = {**rating_values(rating), "rated_at": rating.created_at}
        for name, value in values.items():
            setattr(rating, name, value)
        rating.comment = (comment or "").strip()
        rating.save()
        finish_change(
            case,
            kind=EventKind.RATING_EDITED,
            actor=actor,
            from_state=case.state,
            payload={"rating": rating.pk, **values},
        )
        record_rating(case, rating, previous=previous, reattribute=False)
    return case


# --- complaints -----------------------------------------------------------------------------


def complaint_submit(*, case: Case | int, actor: User, body: str) -> Complaint:
    """The youth complains about how their case was handled ("吐槽").

    The complaint is addressed to the supervisors of the organisation holding the
    case, is due within ``CASEWORK_COMPLAINT_RESPONSE_TIME`` and shows on the timeline
    (by id: the words stay out of the payload).
    """
    body = (body or "").strip()
    if not body:
        raise ValidationFailed(field_errors={"body": [str(_("Say what went wrong."))]})
    with transaction.atomic():
        case = lock_case(case)
        if not permissions.is_case_youth(case, actor):
            raise NotPermitted()
        now = timezone.now()
        complaint = Complaint.objects.create(
            case=case,
            author=actor,
            org_id=case.org_id,
            body=body,
            due_at=now + settings.CASEWORK_COMPLAINT_RESPONSE_TIME,
            created_at=now,
        )
        finish_change(
            case,
            kind=EventKind.COMPLAINT,
            actor=actor,
            from_state=case.state,
            payload={"complaint": complaint.pk, "due": complaint.due_at.isoformat()},
        )
    return complaint


def complaint_answer(*, complaint: Complaint | int, actor: User, answer: str) -> Complaint:
    """A supervisor of the organisation complained about answers the complaint."""
    answer = (answer or "").strip()
    if not answer:
        raise ValidationFailed(field_errors={"answer": [str(_("This field is required."))]})
    complaint_id = complaint.pk if isinstance(complaint, Complaint) else complaint
    with transaction.atomic():
        found = Complaint.objects.select_related("org").filter(pk=complaint_id).first()
        if found is None:
            raise NotFound(_("No such complaint."))
        if not permissions.supervises_path(actor, found.org.path):
            raise NotPermitted()
        case = lock_case(found.case_id)
        complaint = Complaint.objects.select_for_update().get(pk=complaint_id)
        if complaint.status != Complaint.Status.OPEN:
            raise InvalidTransition(_("This complaint has already been answered."))
        now = timezone.now()
        complaint.status = Complaint.Status.ANSWERED
        complaint.answer = answer
        complaint.answered_by = actor
        complaint.answered_at = now
        complaint.save()
        finish_change(
            case,
            kind=EventKind.COMPLAINT_ANSWERED,
            actor=actor,
            from_state=case.state,
            payload={"complaint": complaint.pk, "late": now > complaint.due_at},
        )
    return complaint


# --- reports and review ---------------------------------------------------------------------


def _pending_negative(case: Case) -> int:
    return (
        Report.objects.filter(case=case, kind__in=NEGATIVE_REPORTS, review__isnull=True)
        .values("reporter_id")
        .distinct()
        .count()
    )


def report_submit(*, case: Case | int, actor: User, kind: str) -> Report:
    """Someone reports a case as fake or abusive, or says whether its help information is true.

    One report per person and case. When ``CASEWORK_REPORTS_TO_HIDE`` distinct
    people have reported it (fake, abusive or untrue) since its last review, the
    case leaves public pages until a supervisor reviews it; that goes on the
    timeline, the reports themselves (from third parties) do not.
    """
    if kind not in Report.Kind.values:
        raise ValidationFailed(field_errors={"kind": [str(_("Choose what is wrong."))]})
    if actor is None or not actor.is_authenticated:
        raise NotPermitted(_("Sign in to report."))
    with transaction.atomic():
        case = lock_case(case)
        if case.youth_id == actor.pk:
            raise NotPermitted(_("You cannot report your own case; you may complain instead."))
        if not (case.is_public or permissions.may_view_case(case, actor)):
            raise NotFound()
        try:
            with transaction.atomic():
                report = Report.objects.create(case=case, reporter=actor, kind=kind)
        except IntegrityError:
            raise ValidationFailed(_("You have already reported this case.")) from None
        if kind in NEGATIVE_REPORTS and not case.hidden_from_public:
            count = _pending_negative(case)
            if count >= settings.CASEWORK_REPORTS_TO_HIDE:
                case.hidden_from_public = True
                finish_change(
                    case,
                    kind=EventKind.HIDDEN_PENDING_REVIEW,
                    actor=None,
                    from_state=case.state,
                    payload={"reports": count},
                )
    return report


def review_decide(*, case: Case | int, actor: User, decision: str, note: str = "") -> Review:
    """A supervisor of the holding organisation decides on the pending reports.

    ``restore`` shows the case again (the reports are closed); ``keep_hidden``
    upholds them. The decision goes on the timeline; the note stays on the review.
    """
    if decision not in Review.Decision.values:
        raise ValidationFailed(field_errors={"decision": [str(_("Choose a decision."))]})
    with transaction.atomic():
        case = lock_case(case)
        if not permissions.supervises_path(actor, case.org.path):
            raise NotPermitted()
        pending = Report.objects.filter(case=case, review__isnull=True)
        if not case.hidden_from_public and not pending.exists():
            raise InvalidTransition(_("There are no reports to review on this case."))
        review = Review.objects.create(
            case=case, reviewer=actor, decision=decision, note=(note or "").strip()
        )
        count = pending.update(review=review)
        case.hidden_from_public = decision == Review.Decision.KEEP_HIDDEN
        finish_change(
            case,
            kind=EventKind.REVIEWED,
            actor=actor,
            from_state=case.state,
            payload={"review": review.pk, "decision": decision, "reports": count},
        )
    return review


__all__ = [
    "complaint_answer",
    "complaint_submit",
    "dispute_offered",
    "rating_edit",
    "report_submit",
    "review_decide",
]
