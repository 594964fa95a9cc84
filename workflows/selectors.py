"""Reads of the human tasks: inboxes and task pages, each with a fixed number of queries."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from casework import permissions

from .models import OPEN_TASK_STATUSES, CaseTask


def _scope(user) -> Q | None:
    """The tasks whose page this person may open, as one filter (None: none at all).

    Handlers see the handler steps held by their organisations, verifiers the
    verification steps held by theirs (a station, or the case's organisation),
    supervisors every human step held anywhere in their subtree.
    """
    from .flows import CaseFlow

    if user is None or not user.is_authenticated:
        return None
    nodes = CaseFlow.human_nodes()
    by_role = {
        role: [n for n in nodes if n.role == role]
        for role in (permissions.HANDLER, permissions.VERIFIER)
    }
    query = Q()
    matched = False
    for role in permissions.roles_of(user):
        if role.role == permissions.SUPERVISOR:
            query |= Q(org__path__startswith=role.org_path, flow_task__in=nodes)
        elif role.role in by_role:
            query |= Q(org_id=role.org_id, flow_task__in=by_role[role.role])
        else:
            continue
        matched = True
    return query if matched else None


def _tasks() -> QuerySet[CaseTask]:
    return CaseTask.objects.select_related("case", "case__category", "org")


def inbox_for(user, *, limit: int = 50) -> list[CaseTask]:
    """The open tasks waiting in the inboxes of the user's organisations, most urgent first.

    Case, category and holding organisation come in the same query; with the
    user's memberships (cached on the user) that is two queries at most.
    """
    scope = _scope(user)
    if scope is None:
        return []
    return list(
        _tasks()
        .filter(scope, status__in=OPEN_TASK_STATUSES)
        .order_by(F("case__stage_due_at").asc(nulls_last=True), "created", "pk")[:limit]
    )


def inbox_queryset(user) -> QuerySet[CaseTask]:
    """``inbox_for`` as a queryset, for pages that filter and paginate it (same order)."""
    scope = _scope(user)
    if scope is None:
        return CaseTask.objects.none()
    return (
        _tasks()
        .filter(scope, status__in=OPEN_TASK_STATUSES)
        .order_by(F("case__stage_due_at").asc(nulls_last=True), "created", "pk")
    )


def task_for(user, task_id: int) -> CaseTask | None:
    """One task (open or finished) if it is in the user's scope, with its case loaded."""
    scope = _scope(user)
    if scope is None:
        return None
    return _tasks().filter(scope, pk=task_id).first()
