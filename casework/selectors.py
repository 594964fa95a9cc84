"""Reads that serve pages and the API, each with a fixed number of queries."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from . import permissions
from .models import Case, CoordinationTask


def cases_visible_to(user) -> QuerySet[Case]:
    """The one scoping rule for listing cases: what this person may see.

    A youth sees their own cases; handlers and verifiers those held by (or sent
    for verification to) their organisations; supervisors the whole subtree;
    partners the cases that gave their body a coordination task.
    """
    if user is None or not user.is_authenticated:
        return Case.objects.none()
    if user.is_superuser:
        query = Q()
    else:
        query = Q(youth=user)
        for role in permissions.roles_of(user):
            if role.role == permissions.SUPERVISOR:
                query |= Q(org__path__startswith=role.org_path)
            elif role.role in (permissions.HANDLER, permissions.VERIFIER):
                query |= Q(org_id=role.org_id) | Q(station_id=role.org_id)
            elif role.role == permissions.PARTNER:
                query |= Q(
                    pk__in=CoordinationTask.objects.filter(partner_id=role.org_id).values("case_id")
                )
    return (
        Case.objects.filter(query)
        .select_related("org", "category", "assignee")
        .order_by("-submitted_at")
    )
