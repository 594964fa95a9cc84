"""Who may do what to a case: one place, used by the FSM transitions and the selectors.

Authority flows down the organisation tree: a handler acts for the organisation
holding the case, a supervisor for that organisation and every descendant.
Memberships are loaded once per user object and cached on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from .models import Case, User

HANDLER = "handler"
VERIFIER = "verifier"
PARTNER = "partner"
SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Role:
    org_id: int
    org_path: str
    role: str


def roles_of(user: User | None) -> tuple[Role, ...]:
    """The user's memberships, one query per user object, then cached on it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ()
    cached = getattr(user, "_casework_roles", None)
    if cached is None:
        from .models import Membership

        cached = tuple(
            Role(org_id, path, role)
            for org_id, path, role in Membership.objects.filter(user=user).values_list(
                "organisation_id", "organisation__path", "role"
            )
        )
        user._casework_roles = cached
    return cached


def remember_roles(user: User, roles: tuple[Role, ...]) -> None:
    """Cache memberships read elsewhere (``casework.locks.lock_case`` reads them with the case)."""
    user._casework_roles = roles


def forget_roles(user: User) -> None:
    """Drop the cached memberships (after memberships change)."""
    user.__dict__.pop("_casework_roles", None)


def has_role_at(user: User | None, org_id: int | None, *roles: str) -> bool:
    return org_id is not None and any(
        r.org_id == org_id and r.role in roles for r in roles_of(user)
    )


def supervises_path(user: User | None, path: str) -> bool:
    """True when the user supervises the organisation at ``path`` or one of its ancestors."""
    return any(r.role == SUPERVISOR and path.startswith(r.org_path) for r in roles_of(user))


# --- FSM permission callables: (case, user) -> bool ------------------------


def is_system(case: Case, user: User | None) -> bool:
    return user is None


def is_case_youth(case: Case, user: User | None) -> bool:
    return user is not None and case.youth_id == user.pk


def is_case_handler(case: Case, user: User | None) -> bool:
    """A handler of the holding organisation, or a supervisor above it (override)."""
    return has_role_at(user, case.org_id, HANDLER) or supervises_path(user, case.org.path)


def is_case_verifier(case: Case, user: User | None) -> bool:
    """A verifier of the station doing the verification, or of the holding organisation."""
    return (
        has_role_at(user, case.station_id, VERIFIER)
        or has_role_at(user, case.org_id, VERIFIER)
        or supervises_path(user, case.org.path)
    )


def is_case_handler_or_verifier(case: Case, user: User | None) -> bool:
    return is_case_handler(case, user) or is_case_verifier(case, user)


def may_reject(case: Case, user: User | None) -> bool:
    """Handlers reject; a verifier's disconfirmation rejects a case under verification."""
    if is_case_handler(case, user):
        return True
    return case.state == "verifying" and is_case_verifier(case, user)


# How much of one case a person may see (the per-object twin of
# casework.selectors.cases_visible_to: the two must agree, tests/casework/test_api_authz_matrix.py).
ACCESS_STAFF = "staff"  # holding org's handlers/verifiers, the verifying station, supervisors above
ACCESS_YOUTH = "youth"  # the youth who asked: everything but internal notes
ACCESS_PARTNER = "partner"  # a partner body with a coordination task: reference, category, its task


def case_access(case: Case, user: User | None, *, partner_case_ids=None) -> str | None:
    """The view a person gets of ``case``, or None when they may not see it at all.

    ``partner_case_ids``: the cases on which the person's partner bodies have a
    task, when the caller already loaded them (lists), to save a query per case.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser or supervises_path(user, case.org.path):
        return ACCESS_STAFF
    roles = roles_of(user)
    if any(
        r.org_id in (case.org_id, case.station_id) and r.role in (HANDLER, VERIFIER) for r in roles
    ):
        return ACCESS_STAFF
    if is_case_youth(case, user):
        return ACCESS_YOUTH
    partner_orgs = [r.org_id for r in roles if r.role == PARTNER]
    if not partner_orgs:
        return None
    if partner_case_ids is not None:
        return ACCESS_PARTNER if case.pk in partner_case_ids else None
    if case.coordination_tasks.filter(partner_id__in=partner_orgs).exists():
        return ACCESS_PARTNER
    return None


def may_view_case(case: Case, user: User | None) -> bool:
    """Reading a case at all: whoever ``case_access`` gives a view (see there)."""
    return case_access(case, user) is not None


# --- FSM conditions: (case) -> bool -----------------------------------------


def appeal_available(case: Case) -> bool:
    """One appeal per case, within the appeal window after the rejection."""
    from django.conf import settings

    if case.appealed or case.closed_at is None:
        return False
    return timezone.now() - case.closed_at <= settings.CASEWORK_APPEAL_WINDOW


def coordination_complete(case: Case) -> bool:
    """Every required coordination task is done or waived.

    A transition asks twice (``casework.services._core.apply_transition``'s check,
    then django-fsm's own before it moves the state): within that one call, on
    the locked case, the answer of the first is kept for the second
    (``case._conditions``, which only ``apply_transition`` sets and clears).
    """
    kept = case.__dict__.get("_conditions")
    if kept is not None and "coordination_complete" in kept:
        return kept["coordination_complete"]
    complete = not _open_required_referral(case.pk)
    if kept is not None:
        kept["coordination_complete"] = complete
    return complete


_REFERRAL_PROBE = []


def _open_required_referral(case_id) -> bool:
    """Whether the case has a required coordination task still open (one index probe)."""
    from django.db import connection

    from .models import CoordinationTask

    if not _REFERRAL_PROBE:
        from .prepared import Statement

        table = CoordinationTask._meta.db_table
        _REFERRAL_PROBE.append(
            Statement(
                f'SELECT 1 FROM "{table}" WHERE case_id = %s AND required '
                f"AND status = '{CoordinationTask.Status.OPEN}' LIMIT 1"
            )
        )
    with connection.cursor() as cursor:
        _REFERRAL_PROBE[0].run(cursor, [case_id])
        return cursor.fetchone() is not None


def dispute_available(case: Case) -> bool:
    """A dispute reopens the case: while the rating window is open (feedback given), or
    after the youth's own low or "not solved" rating closed it, within the rating window.

    A case the rating window closed (auto-close) cannot be disputed any more.
    """
    if case.state == "feedback_given":
        return True
    from django.conf import settings

    from .events import EventKind
    from .models import CaseEvent, Rating
    from .scores import is_low_rating

    rating = Rating.objects.filter(case_id=case.pk).first()
    if rating is None or timezone.now() - rating.created_at > settings.CASEWORK_RATING_WINDOW:
        return False
    if not is_low_rating(
        timeliness=rating.timeliness,
        attitude=rating.attitude,
        outcome=rating.outcome,
        solved=rating.solved,
        low=settings.CASEWORK_LOW_RATING_AVERAGE,
    ):
        return False
    # Closed by this rating, not by the window after a later reopen.
    last = (
        CaseEvent.objects.filter(
            case_id=case.pk,
            kind__in=[EventKind.RATED, EventKind.AUTO_CLOSED, EventKind.DISPUTED],
        )
        .order_by("-seq")
        .values_list("kind", flat=True)
        .first()
    )
    return last == EventKind.RATED
