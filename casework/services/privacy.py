"""Personal data of the youth: guardian consent, access logging, export, erasure, retention.

- A youth under ``PRIVACY_GUARDIAN_CONSENT_UNDER`` (14) needs a recorded guardian
  consent before a case can be submitted; ``case_submit`` checks it here.
- Every time a staff member opens a youth's personal data a row goes to
  ``AccessLog`` (who, when, which case, why: the task they hold or their role).
- Erasure replaces the personal free text of a youth's cases and their profile
  with a fixed marker. Timeline events are never touched: their payloads hold
  ids only, so the hash chain stays valid, and case counts, states and rating
  stars (what statistics and scores read) are unchanged.
- Retention: the beat job erases the case free text of cases closed longer ago
  than ``PRIVACY_RETENTION``, in batches.

No function here logs a personal value: log lines carry ids and counts only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..crypto import search_digest
from ..errors import InvalidTransition, NotPermitted, ValidationFailed
from ..models import (
    AccessLog,
    Case,
    CaseMessage,
    CoordinationTask,
    GuardianConsent,
    PrivacyRequest,
    Rating,
    User,
    Verification,
    VisitRating,
)
from ..states import OPEN_STATES, TERMINAL_STATES

logger = logging.getLogger(__name__)

# What erased text reads as; one fixed value, so nothing about the original survives.
ERASED = "[erased]"

# The personal fields a page may show, by who looks (docs/privacy.md has the table).
YOUTH_CONTACT_FIELDS = ("display_name", "phone", "email", "birth_date")
CASE_TEXT_FIELDS = ("title", "description", "messages", "verifications", "rating_comment")
PARTNER_FIELDS = ("instructions",)


# --- age and guardian consent --------------------------------------------------


def age_on(birth_date: date, today: date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def age_of(user: User, today: date | None = None) -> int | None:
    if user is None or user.birth_date is None:
        return None
    return age_on(user.birth_date, today or timezone.localdate())


def is_minor(user: User, today: date | None = None) -> bool | None:
    """Derived from the birth date; None when the youth gave none."""
    age = age_of(user, today)
    return None if age is None else age < settings.PRIVACY_MINOR_AGE


def needs_guardian_consent(user: User, today: date | None = None) -> bool:
    age = age_of(user, today)
    return age is not None and age < settings.PRIVACY_GUARDIAN_CONSENT_UNDER


def active_guardian_consent(user: User) -> GuardianConsent | None:
    return (
        GuardianConsent.objects.filter(youth=user, revoked_at__isnull=True)
        .order_by("-given_at")
        .first()
    )


def refresh_search_digests(*, batch_size: int = 500) -> int:
    """Recompute every person's search digests (after the digest key changed)."""
    done, last_pk = 0, 0
    fields = list(User.SEARCHABLE)
    while True:
        people = list(
            User.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", *fields)[:batch_size]
        )
        if not people:
            return done
        with transaction.atomic():
            for person in people:
                User.objects.filter(pk=person.pk).update(
                    **{d: search_digest(getattr(person, f)) for f, d in User.SEARCHABLE.items()}
                )
        done += len(people)
        last_pk = people[-1].pk


def find_people(term: str):
    """People whose name, e-mail or phone is exactly ``term`` (case and spaces ignored)."""
    digest = search_digest(term)
    if not digest:
        return User.objects.none()
    return User.objects.filter(
        Q(name_digest=digest) | Q(email_digest=digest) | Q(phone_digest=digest)
    )


def is_youth_account(user: User) -> bool:
    """A person who asks for help for themself: no staff role, no integration key."""
    from ..models import Open311Key

    if user.is_staff or user.is_superuser or permissions.roles_of(user):
        return False
    return not Open311Key.objects.filter(account=user).exists()


def birth_date_problem(born: date, today: date | None = None) -> str | None:
    """Why ``born`` cannot be a birth date, or None when it can."""
    today = today or timezone.localdate()
    if born > today:
        return str(_("A birth date cannot be in the future."))
    if born < today.replace(year=today.year - 120):
        return str(_("Enter a real birth date."))
    return None


def declare_birth_date(*, user: User, born: date) -> User:
    """Record the birth date of a person who has none yet.

    Giving the recorded date again is fine; a different one is refused: an
    administrator corrects a wrong date, so the consent rule cannot be talked around.
    """
    problem = birth_date_problem(born)
    if problem:
        raise ValidationFailed(field_errors={"birth_date": [problem]})
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.birth_date == born:
            return user
        if user.birth_date is not None:
            raise ValidationFailed(
                field_errors={
                    "birth_date": [str(_("A different birth date is already recorded for you."))]
                }
            )
        user.birth_date = born
        user.save(update_fields=["birth_date"])
    return user


def require_known_age(youth: User) -> None:
    """A youth must tell us their birth date before asking, so the consent rule can apply."""
    if youth.birth_date is None and is_youth_account(youth):
        raise ValidationFailed(
            _("Tell us your birth date before asking for help."),
            field_errors={
                "birth_date": [
                    str(
                        _(
                            "Your birth date is needed: people under %(age)d need a "
                            "guardian's consent first."
                        )
                        % {"age": settings.PRIVACY_GUARDIAN_CONSENT_UNDER}
                    )
                ]
            },
        )


def require_guardian_consent(youth: User) -> None:
    """Refuse a submission by a youth under the consent age with no guardian consent."""
    if needs_guardian_consent(youth) and active_guardian_consent(youth) is None:
        raise NotPermitted(
            _(
                "Young people under %(age)d need a parent's or guardian's consent before "
                "asking for help. Record the consent first."
            )
            % {"age": settings.PRIVACY_GUARDIAN_CONSENT_UNDER}
        )


def record_guardian_consent(
    *,
    youth: User,
    guardian_name: str,
    relationship: str,
    method: str,
    actor: User | None,
    given_at: datetime | None = None,
) -> GuardianConsent:
    """Record who consented for the youth, how and when (the youth, or staff for them)."""
    errors: dict[str, list[str]] = {}
    if not (guardian_name or "").strip():
        errors["guardian_name"] = [str(_("Who gave the consent?"))]
    if not (relationship or "").strip():
        errors["relationship"] = [str(_("Say how the guardian is related to the youth."))]
    if method not in GuardianConsent.Method.values:
        errors["method"] = [str(_("Choose how the consent was given."))]
    if errors:
        raise ValidationFailed(field_errors=errors)
    if actor is not None and actor.pk != youth.pk and not permissions.roles_of(actor):
        raise NotPermitted()
    consent = GuardianConsent.objects.create(
        youth=youth,
        guardian_name=guardian_name.strip(),
        relationship=relationship.strip()[:30],
        method=method,
        given_at=given_at or timezone.now(),
        recorded_by=actor,
    )
    logger.info("guardian consent %s recorded for user %s", consent.pk, youth.pk)
    return consent


def revoke_guardian_consent(*, consent: GuardianConsent, actor: User | None) -> GuardianConsent:
    """End a consent; cases already submitted go on, new ones need a new consent."""
    consent.revoked_at = timezone.now()
    consent.save(update_fields=["revoked_at"])
    return consent


# --- access logging ----------------------------------------------------------------


# ``open_task``: not read yet (the functions below read it).
_NOT_READ = object()


def _purpose_for(actor: User, case: Case, open_task=_NOT_READ):
    """The task the actor holds on the case, or else the role that lets them look.

    ``open_task``: that task (anything with ``pk``, ``org_id`` and ``flow_task``) or
    None, when the caller read it already (``casework.selectors.staff_case``).
    """
    from workflows.models import OPEN_TASK_STATUSES, CaseTask

    roles = permissions.roles_of(actor)
    org_ids = {r.org_id for r in roles if r.role != permissions.SUPERVISOR}
    if org_ids:
        task = open_task
        if task is _NOT_READ:
            task = (
                CaseTask.objects.filter(
                    case=case, org_id__in=org_ids, status__in=OPEN_TASK_STATUSES
                )
                .order_by("-created")
                .first()
            )
        if task is not None:
            name = getattr(task.flow_task, "name", "") or "task"
            return f"task:{name}", task, task.org_id
    for role in roles:
        if role.org_id in (case.org_id, case.station_id):
            return role.role, None, role.org_id
    for role in roles:
        if role.role == permissions.SUPERVISOR and case.org.path.startswith(role.org_path):
            return "supervision", None, role.org_id
    partner_orgs = {r.org_id for r in roles if r.role == permissions.PARTNER}
    if partner_orgs:
        partner = (
            CoordinationTask.objects.filter(case=case, partner_id__in=partner_orgs)
            .values_list("partner_id", flat=True)
            .first()
        )
        if partner is not None:
            return "coordination", None, partner
    if getattr(actor, "is_superuser", False):
        return "administration", None, None
    return "other", None, None


def record_personal_data_access(
    *,
    actor: User,
    case: Case,
    purpose: str | None = None,
    task=None,
    fields: tuple[str, ...] = ("youth", "case_text"),
    open_task=_NOT_READ,
) -> AccessLog | None:
    """Write who opened this case's personal data, when and why; the youth's own look is not.

    ``purpose`` defaults to the task the actor holds on the case (``task:<step>``),
    else their role there (handler, verifier, partner, supervision, administration).
    ``open_task``: that task (or None), when the caller read it with the case.
    """
    if actor is None or not actor.is_authenticated or actor.pk == case.youth_id:
        return None
    derived, held, org_id = _purpose_for(actor, case, open_task)
    if task is not None:
        held, org_id = task, task.org_id or org_id
    return _insert_access_log(
        AccessLog(
            actor=actor,
            case=case,
            org_id=org_id,
            purpose=(purpose or derived)[:60],
            task_id=None if held is None else held.pk,
            fields=list(fields),
        )
    )


_ACCESS_LOG_INSERT: list = []


def _insert_access_log(entry: AccessLog) -> AccessLog:
    """``entry.save()``, on PostgreSQL as one prepared ``INSERT`` (``casework.prepared``):
    staff pages write a row per view, and Django compiled the same ``INSERT`` each time."""
    from django.db import connections, router
    from django.db.models.signals import post_save, pre_save

    from ..prepared import Statement

    connection = connections[router.db_for_write(AccessLog)]
    if connection.vendor != "postgresql" or any(
        signal.has_listeners(AccessLog) for signal in (pre_save, post_save)
    ):
        entry.save(force_insert=True)
        return entry
    if not _ACCESS_LOG_INSERT:
        columns = ("actor_id", "case_id", "org_id", "purpose", "task_id", "fields", "at")
        _ACCESS_LOG_INSERT.append(
            Statement(
                f'INSERT INTO "{AccessLog._meta.db_table}" ({", ".join(columns)}) '
                f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id"
            )
        )
    fields = AccessLog._meta.get_field("fields")
    values = [
        entry.actor_id,
        entry.case_id,
        entry.org_id,
        entry.purpose,
        entry.task_id,
        fields.get_db_prep_save(entry.fields, connection),
        entry.at,
    ]
    with connection.cursor() as cursor:
        _ACCESS_LOG_INSERT[0].run(cursor, values)
        entry.pk = cursor.fetchone()[0]
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def access_log_for(*, case: Case, actor: User) -> list[AccessLog]:
    """The access log of one case, for the supervisors above it (and platform admins)."""
    if not (permissions.supervises_path(actor, case.org.path) or actor.is_superuser):
        raise NotPermitted()
    return list(case.access_logs.select_related("actor", "org").order_by("-at")[:500])


@dataclass(frozen=True)
class PartnerView:
    """What a partner body sees of a case: only what its task needs."""

    reference: str
    category: str
    region_code: str
    instructions: str
    due_at: datetime | None
    status: str


def partner_view(task: CoordinationTask) -> PartnerView:
    """A coordination task for its partner body: no name, contact or description."""
    case = task.case
    return PartnerView(
        reference=case.reference,
        category=str(case.category),
        region_code=case.region_code,
        instructions=task.instructions,
        due_at=task.due_at,
        status=task.status,
    )


# --- export ------------------------------------------------------------------------


def _iso(value):
    return value.isoformat() if value is not None else None


def export_personal_data(*, youth: User, actor: User) -> dict:
    """Everything the platform holds about the youth, as JSON-ready data (their own request)."""
    if actor is None or actor.pk != youth.pk:
        raise NotPermitted(_("Only the young person can export their own data."))
    cases = list(
        Case.objects.filter(youth=youth).select_related("category", "org").order_by("submitted_at")
    )
    messages = CaseMessage.objects.filter(case__in=cases, internal=False).order_by("created_at")
    by_case: dict[int, list] = {}
    for m in messages:
        by_case.setdefault(m.case_id, []).append(
            {"kind": m.kind, "body": m.body, "at": _iso(m.created_at)}
        )
    ratings = {r.case_id: r for r in Rating.objects.filter(case__in=cases)}
    data = {
        "exported_at": _iso(timezone.now()),
        "profile": {
            "username": youth.username,
            "display_name": youth.display_name,
            "email": youth.email,
            "phone": youth.phone,
            "birth_date": _iso(youth.birth_date),
            "region_code": youth.region_code,
            "date_joined": _iso(youth.date_joined),
        },
        "guardian_consents": [
            {
                "guardian": c.guardian_name,
                "relationship": c.relationship,
                "method": c.method,
                "given_at": _iso(c.given_at),
                "revoked_at": _iso(c.revoked_at),
            }
            for c in GuardianConsent.objects.filter(youth=youth).order_by("given_at")
        ],
        "cases": [
            {
                "reference": c.reference,
                "category": c.category.code,
                "region_code": c.region_code,
                "state": c.state,
                "title": c.title,
                "description": c.description,
                "submitted_at": _iso(c.submitted_at),
                "closed_at": _iso(c.closed_at),
                "handled_by": c.org.name,
                "messages": by_case.get(c.pk, []),
                "rating": (
                    {
                        "timeliness": ratings[c.pk].timeliness,
                        "attitude": ratings[c.pk].attitude,
                        "outcome": ratings[c.pk].outcome,
                        "solved": ratings[c.pk].solved,
                        "comment": ratings[c.pk].comment,
                    }
                    if c.pk in ratings
                    else None
                ),
            }
            for c in cases
        ],
    }
    PrivacyRequest.objects.create(
        youth=youth,
        kind=PrivacyRequest.Kind.EXPORT,
        status=PrivacyRequest.Status.DONE,
        requested_by=actor,
    )
    logger.info("personal data exported for user %s (%d cases)", youth.pk, len(cases))
    return data


# --- erasure -------------------------------------------------------------------------


@dataclass
class ErasureResult:
    cases: int = 0
    users: int = 0
    messages: int = 0
    files: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "cases": self.cases,
            "users": self.users,
            "messages": self.messages,
            "files": self.files,
        }


def _erase_cases(case_ids: list[int], now: datetime, result: ErasureResult) -> None:
    """Replace the personal free text of these cases; events and numbers stay as they are."""
    if not case_ids:
        return
    # Plain UPDATEs: no transition, no version bump, no timeline event, no save() hooks.
    Case.objects.filter(pk__in=case_ids).update(
        title=ERASED, description=ERASED, outcome_note="", personal_data_erased_at=now
    )
    result.messages += CaseMessage.objects.filter(case_id__in=case_ids).update(body=ERASED)
    Verification.objects.filter(case_id__in=case_ids).update(findings=ERASED)
    CoordinationTask.objects.filter(case_id__in=case_ids).update(instructions=ERASED, result=ERASED)
    Rating.objects.filter(case_id__in=case_ids).update(comment="")
    VisitRating.objects.filter(case_id__in=case_ids).update(comment="")
    result.files += _erase_files(case_ids)
    result.cases += len(case_ids)


def _erase_files(case_ids: list[int]) -> int:
    """Delete uploaded evidence files of the cases (the rows keep type, size and hash)."""
    try:
        from ..models import Evidence
    except ImportError:  # evidence uploads not installed
        return 0
    removed = 0
    for evidence in Evidence.objects.filter(case_id__in=case_ids).exclude(file=""):
        evidence.file.delete(save=False)
        Evidence.objects.filter(pk=evidence.pk).update(file="")
        removed += 1
    return removed


def _anonymise_user(user: User, now: datetime) -> None:
    User.objects.filter(pk=user.pk).update(
        username=f"erased-{user.pk}",
        display_name="",
        first_name="",
        last_name="",
        email="",
        phone="",
        name_digest="",
        email_digest="",
        phone_digest="",
        birth_date=None,
        password="!",  # unusable: nobody can sign in as an erased youth
        is_active=False,
        erased_at=now,
    )
    GuardianConsent.objects.filter(youth=user).update(guardian_name=ERASED)


def erase_personal_data(*, youth: User, actor: User, reason: str = "") -> ErasureResult:
    """Erase the youth's personal data at their request (or a platform admin's for them).

    Refused, with the reason, while any of their cases is still open: the people
    handling it need what the youth wrote. The refusal is recorded too.
    """
    if actor is None or not (actor.pk == youth.pk or actor.is_superuser):
        raise NotPermitted(_("Only the young person, or a platform administrator, can ask."))
    if youth.erased_at is not None:
        raise InvalidTransition(_("This person's data has already been erased."))
    now = timezone.now()
    result = ErasureResult()
    # One transaction: the check for open cases and the erasure see the same cases.
    with transaction.atomic():
        youth = User.objects.select_for_update().get(pk=youth.pk)
        cases = list(
            Case.objects.select_for_update()
            .filter(youth=youth)
            .order_by("submitted_at")
            .values_list("pk", "reference", "state")
        )
        open_refs = [ref for _pk, ref, state in cases if state in OPEN_STATES]
        if open_refs:
            PrivacyRequest.objects.create(
                youth=youth,
                kind=PrivacyRequest.Kind.ERASURE,
                status=PrivacyRequest.Status.REFUSED,
                reason="open cases",
                requested_by=actor,
            )
        else:
            _erase_cases([pk for pk, _ref, _state in cases], now, result)
            _anonymise_user(youth, now)
            result.users = 1
            PrivacyRequest.objects.create(
                youth=youth,
                kind=PrivacyRequest.Kind.ERASURE,
                status=PrivacyRequest.Status.DONE,
                reason=(reason or "")[:200],
                requested_by=actor,
            )
    if open_refs:
        # Raised after the block so that the refusal stays recorded.
        raise InvalidTransition(
            _(
                "Your data cannot be erased while a request is still open (%(refs)s). "
                "Withdraw it or wait until it is closed, then ask again."
            )
            % {"refs": ", ".join(open_refs)}
        )
    logger.info("personal data erased for user %s: %s", youth.pk, result.as_dict())
    return result


def retention_sweep(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> ErasureResult:
    """Erase the case free text of cases closed longer ago than the retention period.

    In batches, one transaction each, oldest first; a case is done once
    (``personal_data_erased_at``). Then anonymise youths whose every case is
    erased and who have not signed in within the retention period.
    """
    now = now or timezone.now()
    cutoff = now - settings.PRIVACY_RETENTION
    size = batch_size or settings.PRIVACY_RETENTION_BATCH
    limit = max_batches if max_batches is not None else settings.PRIVACY_RETENTION_MAX_BATCHES
    result = ErasureResult()
    batches = 0
    while batches < limit:
        with transaction.atomic():
            ids = list(
                Case.objects.select_for_update(skip_locked=True)
                .filter(
                    state__in=[s.value for s in TERMINAL_STATES],
                    closed_at__lt=cutoff,
                    personal_data_erased_at__isnull=True,
                )
                .order_by("closed_at", "pk")
                .values_list("pk", flat=True)[:size]
            )
            _erase_cases(ids, now, result)
        batches += 1
        if len(ids) < size:
            break
    # Youths with nothing left to handle and no sign-in within the period.
    idle = (
        User.objects.filter(
            erased_at__isnull=True, is_staff=False, memberships__isnull=True, cases__isnull=False
        )
        .exclude(cases__personal_data_erased_at__isnull=True)
        .filter(Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff))
        .distinct()[:size]
    )
    for user in idle:
        with transaction.atomic():
            _anonymise_user(user, now)
        result.users += 1
    if result.cases or result.users:
        logger.info("privacy retention: %s", result.as_dict())
    return result
