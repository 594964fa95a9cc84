"""Reads that serve the API, each a fixed number of queries, all scoped by cases_visible_to.

(Kept beside the API rather than in casework/selectors.py, which other surfaces
share; every case read starts from casework.selectors.cases_visible_to.)
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .. import permissions
from ..models import Case, CaseEvent, CaseMessage, CoordinationTask
from ..selectors import cases_visible_to

CASE_RELATED = ("org", "category", "assignee", "station", "requested_org", "youth")
# A case body shows its people as a reference (id and name): their password hash, contact
# details and birth date are not read (those are encrypted: each would be decrypted for
# every row of every page), nor the digests that find people by them.
PERSON_UNREAD = (
    "password",
    "email",
    "phone",
    "birth_date",
    "name_digest",
    "email_digest",
    "phone_digest",
)
CASE_UNREAD = tuple(f"{who}__{name}" for who in ("youth", "assignee") for name in PERSON_UNREAD)


def api_cases(user) -> QuerySet[Case]:
    """The cases a person may list, with everything the case body shows loaded up front."""
    return cases_visible_to(user).select_related(*CASE_RELATED).defer(*CASE_UNREAD)


def case_for(user, reference: str) -> Case | None:
    """One case by reference, or None when it does not exist or the person may not see it."""
    return api_cases(user).filter(reference=reference).first()


def partner_org_ids(user) -> list[int]:
    return [r.org_id for r in permissions.roles_of(user) if r.role == permissions.PARTNER]


def partner_tasks(user, case_ids) -> dict[int, list[CoordinationTask]]:
    """The coordination tasks of the person's partner bodies on these cases (one query)."""
    orgs = partner_org_ids(user)
    if not orgs or not case_ids:
        return {}
    tasks: dict[int, list[CoordinationTask]] = {}
    for task in (
        CoordinationTask.objects.filter(case_id__in=list(case_ids), partner_id__in=orgs)
        .select_related("partner", "case")
        .order_by("created_at", "pk")
    ):
        tasks.setdefault(task.case_id, []).append(task)
    return tasks


def access_for(user, cases) -> tuple[dict[int, str | None], dict[int, list]]:
    """Each case's view for this person and the partner tasks it shows: two queries at most."""
    cases = list(cases)
    tasks = partner_tasks(user, [c.pk for c in cases])
    access = {c.pk: permissions.case_access(c, user, partner_case_ids=tasks.keys()) for c in cases}
    return access, tasks


def tasks_visible_to(user) -> QuerySet[CoordinationTask]:
    """Coordination tasks: a partner body's own, and every task of a case the person handles."""
    if user is None or not user.is_authenticated:
        return CoordinationTask.objects.none()
    if user.is_superuser:
        query = Q()
    else:
        query = Q(partner_id__in=partner_org_ids(user))
        for role in permissions.roles_of(user):
            if role.role == permissions.SUPERVISOR:
                query |= Q(case__org__path__startswith=role.org_path)
            elif role.role in (permissions.HANDLER, permissions.VERIFIER):
                query |= Q(case__org_id=role.org_id) | Q(case__station_id=role.org_id)
    return (
        CoordinationTask.objects.filter(query)
        .select_related("partner", "case")
        .order_by("-created_at", "-pk")
    )


def case_events(case: Case) -> QuerySet[CaseEvent]:
    return case.events.select_related("actor", "org", "case").order_by("seq")


def case_messages(case: Case, *, include_internal: bool) -> QuerySet[CaseMessage]:
    messages = case.messages.select_related("author", "case").order_by("created_at", "pk")
    return messages if include_internal else messages.filter(internal=False)
