"""Every way in besides the youth's own form (docs/stations.md, "Intake channels").

- **Staff-entered intake** (``intake_enter``): staff at a station desk or the 12355
  line enter a case for a youth, walk-in or by phone. The youth gets a placeholder
  account holding only what is needed to reach them (a name, a phone number, the
  birth date for the under-14 rule); their consent, or a guardian's for a youth
  under ``PRIVACY_GUARDIAN_CONSENT_UNDER``, is recorded with who gave it and how.
- **Hand-off** (``handoff_receive``): another platform service hands over a
  question it could not solve. Idempotent by the caller's external id: the
  ``Handoff`` row is inserted before the case, so a repeat finds it, and a
  concurrent repeat waits on the unique index and then gets the same case.
- **Claim** (``case_claim``): the youth takes the case into their own account
  with a code sent by SMS to the number given. Only an HMAC of the code is kept,
  with an expiry and a limit on wrong tries; the outbox row holds the code
  encrypted until it is sent.
- **Station visits** (``visit_rate``): the youth rates a station's verification
  visit once; the rating counts into the station's scores (docs/scores.md).

Every case goes through ``case_submit`` and routes like any other; each step is a
timeline event naming the channel and who acted, never a personal value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import date, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..apikeys import check_key, key_hash, new_key
from ..crypto import encrypt
from ..errors import InvalidTransition, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import (
    Case,
    Category,
    GuardianConsent,
    Handoff,
    Intake,
    IntakeService,
    Organisation,
    User,
    Verification,
    VisitRating,
)
from ._core import finish_change
from .cases import case_submit
from .privacy import needs_guardian_consent, record_guardian_consent

logger = logging.getLogger(__name__)

STAFF_CHANNELS = (Case.Channel.WALK_IN, Case.Channel.PHONE)
# How the youth's own consent is given on each channel.
CONSENT_METHOD = {
    Case.Channel.WALK_IN: GuardianConsent.Method.IN_PERSON,
    Case.Channel.PHONE: GuardianConsent.Method.PHONE,
    Case.Channel.HANDOFF: GuardianConsent.Method.ONLINE,
}
CODE_DIGITS = 8
PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{5,30}$")
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,100}$")
# --- who may enter ---------------------------------------------------------------------


def intake_desks(user: User | None) -> QuerySet[Organisation]:
    """The desks where ``user`` may enter cases: the active league committees, stations and
    service centres (social organisations such as the 12355 desk) they are a member of.

    Partner bodies (bureaus and the like) take coordination tasks, not requests.
    """
    org_ids = [r.org_id for r in permissions.roles_of(user)]
    return (
        Organisation.objects.filter(pk__in=org_ids, is_active=True)
        .exclude(kind=Organisation.Kind.PARTNER)
        .order_by("path")
    )


def may_enter_intake(user: User | None) -> bool:
    return intake_desks(user).exists()


# --- checking what was typed -------------------------------------------------------------


def _clean_phone(value: str | None) -> str:
    return re.sub(r"[ -]", "", (value or "").strip())


def _check_youth(
    errors: dict, *, name: str, phone: str, birth_date: date | None, contact_required: bool
) -> None:
    if contact_required and not (name or "").strip():
        errors["youth_name"] = [str(_("How should the youth be called? A nickname is fine."))]
    elif len((name or "").strip()) > 60:
        errors["youth_name"] = [str(_("60 characters at most."))]
    if (phone or contact_required) and not PHONE_RE.match((phone or "").strip()):
        errors["youth_phone"] = [
            str(_("Give a phone number the claim code can be sent to (digits only)."))
        ]
    today = timezone.localdate()
    if birth_date is None:
        errors["birth_date"] = [
            str(_("The birth date is needed: under 14, a guardian must consent."))
        ]
    elif birth_date > today or birth_date.year < today.year - 120:
        errors["birth_date"] = [str(_("Give a real birth date."))]


def _check_consent(
    errors: dict,
    *,
    youth: User,
    consent_by: str,
    guardian_name: str,
    relationship: str,
    method: str,
) -> None:
    if consent_by not in Intake.ConsentBy.values:
        errors["consent_by"] = [str(_("Say who consented to asking for help."))]
        return
    if method not in GuardianConsent.Method.values:
        errors["consent_method"] = [str(_("Choose how the consent was given."))]
    if consent_by == Intake.ConsentBy.GUARDIAN:
        if not (guardian_name or "").strip():
            errors["guardian_name"] = [str(_("Who gave the consent?"))]
        if not (relationship or "").strip():
            errors["guardian_relationship"] = [
                str(_("Say how the guardian is related to the youth."))
            ]
    elif youth.birth_date is not None and needs_guardian_consent(youth):
        errors["consent_by"] = [
            str(
                _(
                    "Young people under %(age)d need a parent's or guardian's consent: "
                    "record the guardian's."
                )
                % {"age": settings.PRIVACY_GUARDIAN_CONSENT_UNDER}
            )
        ]


def _placeholder_youth(*, name: str, phone: str, birth_date: date | None, region_code: str) -> User:
    """An account for the youth until they claim the case: no password, minimal data."""
    youth = User(
        username=f"intake-{get_random_string(12).lower()}",
        display_name=(name or "").strip()[:60],
        phone=_clean_phone(phone),
        birth_date=birth_date,
        region_code=(region_code or "")[:12],
    )
    youth.set_unusable_password()
    youth.save()
    return youth


def _enter(
    *,
    actor: User,
    desk: Organisation | None,
    channel: str,
    youth_name: str,
    youth_phone: str,
    birth_date: date | None,
    consent_by: str,
    consent_method: str,
    guardian_name: str,
    guardian_relationship: str,
    category: Category,
    region_code: str,
    title: str,
    description: str,
    urgency: str,
    is_public: bool,
    requested_org: Organisation | None,
    contact_required: bool,
) -> Case:
    """Check, create the placeholder youth and the consent, submit, record, send the code."""
    errors: dict[str, list[str]] = {}
    _check_youth(
        errors,
        name=youth_name,
        phone=youth_phone,
        birth_date=birth_date,
        contact_required=contact_required,
    )
    if category is None:
        errors["category"] = [str(_("Choose a category."))]
    probe = User(birth_date=birth_date if "birth_date" not in errors else None)
    _check_consent(
        errors,
        youth=probe,
        consent_by=consent_by,
        guardian_name=guardian_name,
        relationship=guardian_relationship,
        method=consent_method,
    )
    for field, value in (("title", title), ("description", description)):
        if not (value or "").strip():
            errors[field] = [str(_("This field is required."))]
    if errors:
        raise ValidationFailed(field_errors=errors)
    with transaction.atomic():
        youth = _placeholder_youth(
            name=youth_name, phone=youth_phone, birth_date=birth_date, region_code=region_code
        )
        guardian = None
        if consent_by == Intake.ConsentBy.GUARDIAN:
            staff = bool(permissions.roles_of(actor))
            guardian = record_guardian_consent(
                youth=youth,
                guardian_name=guardian_name,
                relationship=guardian_relationship,
                method=consent_method,
                actor=actor if staff else None,
            )
            if not staff:  # a hand-off service's account: it recorded what its user said
                guardian.recorded_by = actor
                guardian.save(update_fields=["recorded_by"])
        case = case_submit(
            youth=youth,
            category=category,
            region_code=region_code,
            title=title,
            description=description,
            urgency=urgency,
            requested_org=requested_org,
            is_public=is_public,
            channel=channel,
            entered_by=actor,
        )
        intake = Intake.objects.create(
            case=case,
            channel=channel,
            entered_by=actor,
            desk=desk,
            consent_by=consent_by,
            consent_method=consent_method,
            guardian_consent=guardian,
        )
        if youth.phone:
            locked = lock_case(case.pk)
            _issue_code(locked, intake, actor=actor)
            case = locked
    logger.info("case %s entered via %s by user %s", case.pk, channel, actor.pk)
    return case


# --- staff-entered intake -----------------------------------------------------------------


def intake_enter(
    *,
    actor: User,
    channel: str,
    desk: Organisation | None = None,
    youth_name: str,
    youth_phone: str,
    birth_date: date | None,
    consent_by: str,
    consent_method: str = "",
    guardian_name: str = "",
    guardian_relationship: str = "",
    category: Category,
    region_code: str,
    title: str,
    description: str,
    urgency: str = Case.Urgency.NORMAL,
    is_public: bool = False,
    requested_org: Organisation | None = None,
) -> Case:
    """Staff at a desk or the 12355 line enter a case for a youth (walk-in or phone).

    ``desk``: the organisation the staff member works for here (one of
    ``intake_desks``; None picks their only one). The youth's consent is by default
    given the channel's way (in person, by phone).
    """
    desks = intake_desks(actor)
    if actor is None or not desks.exists():
        raise NotPermitted(_("Only staff of a station or organisation can enter cases."))
    if desk is None:
        desk = desks.first() if desks.count() == 1 else None
        if desk is None:
            raise ValidationFailed(field_errors={"desk": [str(_("Choose your desk."))]})
    elif not desks.filter(pk=desk.pk).exists():
        raise ValidationFailed(field_errors={"desk": [str(_("You do not work at this desk."))]})
    if channel not in STAFF_CHANNELS:
        raise ValidationFailed(
            field_errors={"channel": [str(_("Staff enter walk-in or phone requests."))]}
        )
    return _enter(
        actor=actor,
        desk=desk,
        channel=channel,
        youth_name=youth_name,
        youth_phone=youth_phone,
        birth_date=birth_date,
        consent_by=consent_by,
        consent_method=consent_method or CONSENT_METHOD[channel],
        guardian_name=guardian_name,
        guardian_relationship=guardian_relationship,
        category=category,
        region_code=region_code,
        title=title,
        description=description,
        urgency=urgency,
        is_public=is_public,
        requested_org=requested_org,
        contact_required=True,
    )


# --- hand-off from another platform service -------------------------------------------------


def handoff_receive(
    *,
    service: IntakeService,
    external_id: str,
    category: Category,
    region_code: str,
    title: str,
    description: str,
    birth_date: date | None,
    consent_by: str,
    youth_name: str = "",
    youth_phone: str = "",
    guardian_name: str = "",
    guardian_relationship: str = "",
    urgency: str = Case.Urgency.NORMAL,
) -> tuple[Case, bool]:
    """A question another service could not solve becomes a case: (case, created).

    The same ``external_id`` from the same service gives the same case, whether the
    repeat comes later or at the same time (the unique index decides).
    """
    if service is None or not service.is_active:
        raise NotPermitted()
    external_id = (external_id or "").strip()
    if not EXTERNAL_ID_RE.match(external_id):
        raise ValidationFailed(
            field_errors={
                "external_id": [
                    str(_("Up to 100 letters, digits and . _ : / - identify the hand-off."))
                ]
            }
        )
    existing = _handed_off(service, external_id)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            # The idempotency key first: a concurrent repeat blocks here until this commits.
            handoff = Handoff.objects.create(service=service, external_id=external_id)
            case = _enter(
                actor=service.account,
                desk=None,
                channel=Case.Channel.HANDOFF,
                youth_name=youth_name,
                youth_phone=youth_phone,
                birth_date=birth_date,
                consent_by=consent_by,
                consent_method=GuardianConsent.Method.ONLINE,
                guardian_name=guardian_name,
                guardian_relationship=guardian_relationship,
                category=category,
                region_code=region_code,
                title=title,
                description=description,
                urgency=urgency,
                is_public=False,
                requested_org=None,
                contact_required=False,
            )
            handoff.case = case
            handoff.save(update_fields=["case"])
    except IntegrityError:
        existing = _handed_off(service, external_id)
        if existing is None:
            raise
        return existing, False
    return case, True


def _handed_off(service: IntakeService, external_id: str) -> Case | None:
    row = (
        Handoff.objects.filter(service=service, external_id=external_id, case__isnull=False)
        .select_related("case")
        .first()
    )
    return row.case if row else None


# --- hand-off service keys (``manage.py intake_services``) ------------------------------------

KEY_TAG = "yvh"


def intake_service_create(*, name: str) -> tuple[IntakeService, str]:
    """A new calling service with its own password-less account; returns the raw key once."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed(
            field_errors={"name": [str(_("Give the service a name (60 characters at most)."))]}
        )
    if IntakeService.objects.filter(name=name).exists():
        raise ValidationFailed(field_errors={"name": [str(_("A service with this name exists."))]})
    prefix, raw = new_key(KEY_TAG)
    with transaction.atomic():
        account = User(
            username=f"handoff-{slugify(name)[:40] or 'service'}-{prefix}",
            display_name=f"{name}"[:60],
        )
        account.set_unusable_password()
        account.save()
        service = IntakeService.objects.create(
            name=name, prefix=prefix, key_hash=key_hash(raw), account=account
        )
    return service, raw


def intake_service_check(raw: str | None) -> IntakeService | None:
    """The active calling service whose key is ``raw``, or None."""
    return check_key(raw, KEY_TAG, IntakeService.objects.select_related("account"))


def intake_service_revoke(*, name: str) -> IntakeService:
    """Revoke a calling service's key: it stops working at once; its cases stay."""
    service = IntakeService.objects.filter(name=name).first()
    if service is None:
        raise ValidationFailed(field_errors={"name": [str(_("No service with this name."))]})
    if service.revoked_at is None:
        service.revoked_at = timezone.now()
        service.save(update_fields=["revoked_at"])
    return service


# --- the claim code ---------------------------------------------------------------------


def _code_hash(intake_id: int, code: str) -> str:
    message = f"yv-claim:{intake_id}:{code}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _issue_code(case: Case, intake: Intake, *, actor: User | None) -> str:
    """A new code replaces any earlier one; it goes out by SMS through the outbox.

    Called with the case locked. Returns the code (for the caller's tests only).
    """
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    now = timezone.now()
    intake.claim_code_hash = _code_hash(intake.pk, code)
    intake.claim_expires_at = now + settings.INTAKE_CLAIM_CODE_TTL
    intake.claim_attempts = 0
    intake.save(update_fields=["claim_code_hash", "claim_expires_at", "claim_attempts"])
    event = finish_change(
        case,
        kind=EventKind.CLAIM_CODE_SENT,
        actor=actor,
        from_state=case.state,
        payload={"intake": intake.pk, "channel": "sms"},
    )
    _send_code(case, event, code, expires=intake.claim_expires_at)
    return code


def _send_code(case: Case, event, code: str, *, expires) -> None:
    """One SMS outbox row to the youth's placeholder account (the number given)."""
    from notifications.models import Audience, Notification
    from notifications.models import Channel as NotificationChannel
    from notifications.services import publish

    now = timezone.now()
    row = Notification.objects.create(
        key=hashlib.sha256(f"yv:claim:{case.pk}:{event.seq}".encode()).hexdigest(),
        event=event,
        case=case,
        recipient_id=case.youth_id,
        kind="claim_code",
        channel=NotificationChannel.SMS,
        audience=Audience.YOUTH,
        # The code travels encrypted (casework.crypto) and is decrypted to render the text.
        context={
            "ref": case.reference,
            "category": case.category.code,
            "code": encrypt(code),
            "due": expires.isoformat(),
        },
        next_attempt_at=now,
        relay_after=now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS),
        created_at=now,
    )
    transaction.on_commit(partial(publish, [row.pk]))


def intake_resend_code(*, case: Case | int, actor: User) -> Case:
    """Staff send a new claim code (the old one expired or was locked by wrong tries)."""
    with transaction.atomic():
        case = lock_case(case)
        intake = Intake.objects.select_for_update().filter(case=case).first()
        if intake is None:
            raise InvalidTransition(_("Only a case entered for a youth has a claim code."))
        if not (
            permissions.is_case_handler(case, actor)
            or intake_desks(actor).filter(pk=intake.desk_id).exists()
        ):
            raise NotPermitted()
        if intake.claimed_at is not None:
            raise InvalidTransition(_("This case has already been claimed."))
        if not case.youth.phone:
            raise InvalidTransition(_("No phone number was given for this youth."))
        _issue_code(case, intake, actor=actor)
    return case


def _claim_error(message) -> ValidationFailed:
    return ValidationFailed(message, field_errors={"code": [str(message)]})


def case_claim(*, actor: User, reference: str, code: str) -> Case:
    """The youth takes a staff-entered or handed-over case into their own account.

    A wrong code counts against ``INTAKE_CLAIM_MAX_ATTEMPTS`` (the count is kept even
    though the call fails); an expired or locked code needs a new one from staff.
    """
    if actor is None or not actor.is_authenticated:
        raise NotPermitted(_("Sign in to claim a case."))
    if permissions.roles_of(actor) or actor.username.startswith("intake-"):
        raise NotPermitted(_("Only a young person's own account can claim a case."))
    reference = (reference or "").strip().upper()
    code = re.sub(r"\s", "", code or "")
    errors = {}
    if not reference:
        errors["reference"] = [str(_("Give the case reference from the message."))]
    if not code.isdigit() or len(code) != CODE_DIGITS:
        errors["code"] = [str(_("The code has %(n)d digits.") % {"n": CODE_DIGITS})]
    if errors:
        raise ValidationFailed(field_errors=errors)
    intake = Intake.objects.filter(case__reference=reference).only("pk", "case_id").first()
    if intake is None:
        raise ValidationFailed(
            field_errors={"reference": [str(_("No case with this reference waits to be claimed."))]}
        )
    wrong_left = None
    with transaction.atomic():
        case = lock_case(intake.case_id)
        intake = Intake.objects.select_for_update().get(pk=intake.pk)
        if intake.claimed_at is not None:
            raise InvalidTransition(_("This case has already been claimed."))
        if not intake.claim_code_hash:
            raise ValidationFailed(
                field_errors={
                    "reference": [str(_("No case with this reference waits to be claimed."))]
                }
            )
        if intake.claim_attempts >= settings.INTAKE_CLAIM_MAX_ATTEMPTS:
            raise _claim_error(
                _("Too many wrong codes. Ask the desk or the 12355 line for a new code.")
            )
        if intake.claim_expires_at is None or intake.claim_expires_at <= timezone.now():
            raise _claim_error(
                _("This code has expired. Ask the desk or the 12355 line for a new code.")
            )
        if not hmac.compare_digest(intake.claim_code_hash, _code_hash(intake.pk, code)):
            intake.claim_attempts += 1
            intake.save(update_fields=["claim_attempts"])
            wrong_left = settings.INTAKE_CLAIM_MAX_ATTEMPTS - intake.claim_attempts
        else:
            _take_over(case, intake, actor)
    if wrong_left is not None:  # after the commit: the wrong try stays counted
        logger.info("wrong claim code for case %s", intake.case_id)
        raise _claim_error(
            _("The code is not right. %(left)d tries left.") % {"left": wrong_left}
            if wrong_left
            else _("The code is not right. Ask the desk or the 12355 line for a new code.")
        )
    return case


def _take_over(case: Case, intake: Intake, actor: User) -> None:
    placeholder = case.youth
    now = timezone.now()
    case.youth = actor
    # The guardian's consent was given for this young person: it goes with them.
    GuardianConsent.objects.filter(youth=placeholder).update(youth=actor)
    intake.claimed_at = now
    intake.claimed_by = actor
    intake.claim_code_hash = ""
    intake.save(update_fields=["claimed_at", "claimed_by", "claim_code_hash"])
    # The placeholder's contact details are not needed any more: the account has its own.
    placeholder.display_name = ""
    placeholder.phone = ""
    placeholder.is_active = False
    placeholder.save(update_fields=["display_name", "phone", "is_active"])
    finish_change(
        case,
        kind=EventKind.CLAIMED,
        actor=actor,
        from_state=case.state,
        payload={"intake": intake.pk, "channel": intake.channel},
    )


# --- rating the station visit ------------------------------------------------------------------


def visit_to_rate(case: Case) -> Verification | None:
    """The case's latest station visit that is not rated yet (None when there is none)."""
    return (
        Verification.objects.filter(case=case, station__isnull=False, visit_rating__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )


def visit_rate(
    *,
    case: Case | int,
    actor: User,
    stars,
    comment: str = "",
    expected_version: int | None = None,
) -> VisitRating:
    """The youth rates the station visit (stars 1–5, an optional comment), once per visit.

    The rating is a timeline event and counts into the station's scores.
    """
    from .scores import record_visit_rating

    try:
        stars = int(stars)
    except (TypeError, ValueError):
        stars = 0
    if not 1 <= stars <= 5:
        raise ValidationFailed(field_errors={"stars": [str(_("Give 1 to 5 stars."))]})
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise ValidationFailed(field_errors={"comment": [str(_("2000 characters at most."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if not permissions.is_case_youth(case, actor):
            raise NotPermitted()
        visit = visit_to_rate(case)
        if visit is None:
            if VisitRating.objects.filter(case=case).exists():
                raise InvalidTransition(_("You have already rated this visit."))
            raise InvalidTransition(_("There is no station visit to rate yet."))
        rating = VisitRating.objects.create(
            verification=visit, case=case, station_id=visit.station_id, stars=stars, comment=comment
        )
        finish_change(
            case,
            kind=EventKind.VISIT_RATED,
            actor=actor,
            from_state=case.state,
            payload={"visit_rating": rating.pk, "station": visit.station_id, "stars": stars},
        )
        record_visit_rating(rating, category_id=case.category_id)
    return rating


def visit_ratable(case: Case, user: User | None) -> bool:
    """Whether to offer the youth the visit-rating form on this case."""
    return (
        user is not None
        and case.youth_id == getattr(user, "pk", None)
        and case.station_id is not None
        and visit_to_rate(case) is not None
    )


__all__ = [
    "case_claim",
    "handoff_receive",
    "intake_desks",
    "intake_enter",
    "intake_resend_code",
    "intake_service_check",
    "intake_service_create",
    "intake_service_revoke",
    "may_enter_intake",
    "visit_ratable",
    "visit_rate",
]
