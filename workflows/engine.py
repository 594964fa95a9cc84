"""Keeps each case's viewflow process in step with the case state (see sync_case_tasks).

The case row is the truth. Every casework service calls ``sync_case_tasks``
inside its transaction, after the case changed and while the case row is
locked; that lock is what serialises all work on one case's tasks. Nothing
here needs a request: pages, the API and Celery all come through the services.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models import Case as Choose
from django.db.models.functions import Coalesce

from casework.models import Case
from casework.pgarrays import array_literal

from .flows import CaseFlow
from .models import OPEN_TASK_STATUSES, CaseProcess, CaseTask

logger = logging.getLogger(__name__)


def start_case_flow(case) -> CaseProcess:
    """Start the human-task process of a newly submitted (or appealed) case.

    Runs in the caller's transaction. A case has at most one unfinished
    process: an appeal starts a new one only after the rejection ended the old.
    """
    if CaseProcess.objects.filter(case_id=case.pk, finished__isnull=True).exists():
        raise RuntimeError(f"case {case.pk} already has an unfinished process")
    return CaseFlow.start.run(case=case)


def sync_case_tasks(case, *, actor=None) -> None:
    """Make the case's open human task match its state and holding organisation.

    If the open task is the step the state calls for, only its holder may
    have changed (escalation, transfer, delegation, reassignment, pull-up):
    the task moves with one UPDATE. Otherwise the step is over: the task is
    completed and the flow's route creates the next step, or ends the
    process for a closed, rejected or withdrawn case. A case without an open
    task (between a rejection and the new process of its appeal) is left alone.
    """
    tasks = list(
        CaseTask.objects.filter(case_id=case.pk, status__in=OPEN_TASK_STATUSES)
        .select_related("process")
        .order_by("-pk")
    )
    if not tasks:
        return
    if len(tasks) > 1:
        logger.error("case %s has %d open flow tasks; syncing the newest", case.pk, len(tasks))
    task = tasks[0]
    node = task.flow_task
    if node is CaseFlow.node_for_state(case.state):
        holder = node.holder_id(case)
        if task.org_id != holder:
            CaseTask.objects.filter(pk=task.pk).update(org_id=holder)
            task.org_id = holder
        return
    process = task.process
    # The route reads the state from this very object: the caller's fresh,
    # not yet committed case, never a stale copy from the database.
    process.case = case
    with CaseFlow.lock(process.pk):
        node.activation_class(task).follow_case(actor=actor)


def holder_expression():
    """SQL for the organisation that should hold an open task, from its case row.

    The verification step is held by the case's station when it has one;
    every other step by the case's organisation.
    """
    case_row = Case.objects.filter(pk=OuterRef("case_id"))
    org = Subquery(case_row.values("org_id")[:1])
    station_or_org = Subquery(
        case_row.annotate(holder=Coalesce(F("station_id"), F("org_id"))).values("holder")[:1]
    )
    return Choose(
        When(flow_task=CaseFlow.verification, then=station_or_org),
        default=org,
        output_field=BigIntegerField(),
    )


def move_open_tasks(case_ids) -> int:
    """Move the open tasks of many cases to their cases' current holders, in one UPDATE.

    For sweeps that re-home thousands of cases at once (escalation): no
    activation, no per-case query. ``case_ids`` is an iterable of ids or a
    queryset of ids. Returns how many tasks moved.
    """
    if connection.vendor == "postgresql" and not isinstance(case_ids, QuerySet):
        return _move_open_tasks_joined([int(pk) for pk in case_ids])
    holder = holder_expression()
    return (
        CaseTask.objects.filter(case_id__in=case_ids, status__in=OPEN_TASK_STATUSES)
        .filter(~Q(org_id=holder) | Q(org_id__isnull=True))
        .update(org_id=holder)
    )


def _move_open_tasks_joined(case_ids: list[int]) -> int:
    """``move_open_tasks`` as one UPDATE … FROM the case table (PostgreSQL).

    The ORM form reads the holder with a correlated subquery per task row;
    joining the case rows once is several times cheaper for a sweep batch.
    """
    if not case_ids:
        return 0
    verification = CaseTask._meta.get_field("flow_task").get_prep_value(CaseFlow.verification)
    holder = "CASE WHEN t.flow_task = %s THEN COALESCE(c.station_id, c.org_id) ELSE c.org_id END"
    sql = (
        f'UPDATE "{CaseTask._meta.db_table}" AS t SET org_id = {holder} '
        f'FROM "{Case._meta.db_table}" AS c '
        "WHERE c.id = t.case_id AND t.case_id = ANY(%s::bigint[]) AND t.status = ANY(%s) "
        f"AND t.org_id IS DISTINCT FROM {holder}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [verification, array_literal(case_ids), list(OPEN_TASK_STATUSES), verification],
        )
        return cursor.rowcount
