"""Keeps each case's viewflow process in step with the case state (see sync_case_tasks).

The case row is the truth. Every casework service calls ``sync_case_tasks``
inside its transaction, after the case changed and while the case row is
locked; that lock is what serialises all work on one case's tasks. Nothing
here needs a request: pages, the API and Celery all come through the services.
"""

from __future__ import annotations

import functools
import logging

from django.db import connection
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models import Case as Choose
from django.db.models.functions import Coalesce
from django.utils import timezone
from viewflow.workflow.signals import task_finished
from viewflow.workflow.status import STATUS
from viewflow.workflow.token import Token

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


def sync_case_tasks(case, *, actor=None, from_state: str | None = None) -> None:
    """Make the case's open human task match its state and holding organisation.

    If the open task is the step the state calls for, only its holder may
    have changed (escalation, transfer, delegation, reassignment, pull-up):
    the task moves with one UPDATE. Otherwise the step is over: the task is
    completed and the flow's route creates the next step, or ends the
    process for a closed, rejected or withdrawn case. A case without an open
    task (between a rejection and the new process of its appeal) is left alone.

    ``from_state``, the state the caller found the case in under its lock,
    says which step the open task is at (the flow follows the case, and the
    case lock serialises every change to its tasks), so the common moves
    need no read first: see ``_follow_known_step``.
    """
    if from_state is not None and _follow_known_step(case, from_state, actor):
        return
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


class KnownStep:
    """The flow's part of a change when it is one of the two common moves (``known_step``).

    ``ctes``: CTE definitions (``name AS (…), …``) with ``%s`` placeholders, for
    the caller's ``WITH``; ``params``: their values, in order; ``ends``: the
    CTEs include ``ended`` (the tasks it ended, each one row), whose count the
    caller hands to ``after_known_step``.
    """

    __slots__ = ("ctes", "ends", "params")

    def __init__(self, ctes: str, params: list, ends: bool):
        self.ctes = ctes
        self.params = params
        self.ends = ends


def known_step(case, from_state: str, actor) -> KnownStep | None:
    """The two common moves of the flow as SQL, for a statement of the caller's
    (PostgreSQL; one per change); None: the general way (``sync_case_tasks``).

    - The state calls for the same step as before: only the holder may change,
      one conditional UPDATE (nothing at all for a state with no step).
    - One human step to another: one UPDATE ends the open task and returns it,
      one INSERT adds the route's record, one the next step's task, one the
      links between them: the same rows viewflow's activations write
      (``follow_case``, ``CaseSwitchActivation.create``,
      ``CaseTaskActivationMixin.create``), without reading the task first,
      without viewflow's process lock (the case row lock, held by the caller,
      already serialises the case's flow) and without the savepoint around it.

    The flow's own constants (the steps, their task types, the statuses) are
    literals of the SQL, so there is one text per pair of steps; the values are
    the moment, the actor, the case and the holder only (the new rows take the
    moment and the case from the task ended). The end of a process, a listener
    on ``task_finished`` and anything that does not fit (no open task at the
    step the state was at: ``after_known_step``) go through viewflow's own
    activations.
    """
    before = CaseFlow.node_for_state(from_state)
    node = CaseFlow.node_for_state(case.state)
    if before is node:
        if node is None:
            return KnownStep("", [], False)
        holder = node.holder_id(case)
        return KnownStep(_held_cte(node), [holder, case.pk, holder], False)
    if before is None or node is None or task_finished.has_listeners(CaseFlow):
        return None
    moment = timezone.now()
    actor_id = actor.pk if actor is not None else None
    return KnownStep(
        _follow_ctes(before, node), [moment, moment, actor_id, case.pk, node.holder_id(case)], True
    )


@functools.cache
def _held_cte(node) -> str:
    """Move the open task at ``node`` to another holder: (holder, case, holder)."""
    return (
        f'held AS (UPDATE "{CaseTask._meta.db_table}" SET org_id = %s::bigint '
        f"WHERE case_id = %s::bigint AND status IN ({_open_literals()}) "
        f"AND flow_task = {_literal(_node_ref(node))} AND org_id IS DISTINCT FROM %s::bigint)"
    )


def _literal(value: str) -> str:
    """A code constant (a step's reference, a task type, a status) as an SQL string literal
    in a statement that goes through psycopg2's ``%`` formatting."""
    return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"


def _open_literals() -> str:
    return ", ".join(_literal(status) for status in OPEN_TASK_STATUSES)


def after_known_step(case, step: KnownStep, ended: int | None, actor) -> None:
    """After the caller's statement ran ``step``: the general way when it ended no task."""
    if not step.ends:
        return
    if ended > 1:
        logger.error("case %s had %d open flow tasks; followed the newest", case.pk, ended)
    if ended == 0:
        sync_case_tasks(case, actor=actor)


def _follow_known_step(case, from_state: str, actor) -> bool:
    """``known_step`` on its own (``sync_case_tasks``); False: take the general way."""
    if connection.vendor != "postgresql":
        return _follow_step_by_step(case, from_state, actor)
    step = known_step(case, from_state, actor)
    if step is None:
        return False
    if not step.ctes:
        return True
    counted = "SELECT count(*) FROM ended" if step.ends else "SELECT 0"
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {step.ctes} {counted}", step.params)
        (ended,) = cursor.fetchone()
    if step.ends and ended > 1:
        logger.error("case %s had %d open flow tasks; followed the newest", case.pk, ended)
    return ended > 0 or not step.ends


def _node_ref(node) -> str:
    return CaseTask._meta.get_field("flow_task").get_prep_value(node)


def _open_in() -> str:
    return ", ".join(["%s"] * len(OPEN_TASK_STATUSES))


def _end_task_sql(typed: bool = True) -> str:
    """End the open task at a step: (done, moment, moment, actor, case, step, *open).

    ``typed``: the values cast for PostgreSQL (a prepared statement needs the types)."""
    ts, bigint, varchar = ("::timestamptz", "::bigint", "::varchar") if typed else ("", "", "")
    return (
        f'UPDATE "{CaseTask._meta.db_table}" SET status = %s, '
        f"started = COALESCE(started, %s{ts}), finished = %s{ts}, "
        f"owner_id = COALESCE(owner_id, %s{bigint}) "
        f"WHERE case_id = %s{bigint} AND flow_task = %s{varchar} AND status IN ({_open_in()})"
    )


@functools.cache
def _follow_ctes(before, node) -> str:
    """End the open task at ``before``, add the route record and the next task at ``node``
    (one INSERT, the route's row first), link them (PostgreSQL): (moment, moment, actor,
    case, holder). When no task is open at the expected step it writes nothing and
    ``ended`` is empty."""
    task = f'"{CaseTask._meta.db_table}"'
    link = f'"{CaseTask.previous.through._meta.db_table}"'
    route = CaseFlow.route
    done, new = _literal(STATUS.DONE), _literal(STATUS.NEW)
    route_ref, node_ref = _literal(_node_ref(route)), _literal(_node_ref(node))
    return f"""ended AS (
    UPDATE {task} SET status = {done}, started = COALESCE(started, %s::timestamptz),
        finished = %s::timestamptz, owner_id = COALESCE(owner_id, %s::bigint)
    WHERE case_id = %s::bigint AND flow_task = {_literal(_node_ref(before))}
        AND status IN ({_open_literals()})
    RETURNING id, process_id, token, finished, case_id
), last AS (
    SELECT id, process_id, token, finished, case_id FROM ended ORDER BY id DESC LIMIT 1
), made AS (
    INSERT INTO {task} (flow_task, flow_task_type, status, created, started, finished,
                        token, process_id, case_id, org_id)
    SELECT {route_ref}, {_literal(route.task_type)}, {done}, finished, finished, finished,
           token, process_id, case_id, NULL::bigint FROM last
    UNION ALL
    SELECT {node_ref}, {_literal(node.task_type)}, {new}, finished, NULL, NULL,
           token, process_id, case_id, %s::bigint FROM last
    RETURNING id, flow_task
), route AS (
    SELECT id FROM made WHERE flow_task = {route_ref}
), links AS (
    INSERT INTO {link} (from_casetask_id, to_casetask_id)
    SELECT route.id, last.id FROM route, last
    UNION ALL SELECT made.id, route.id FROM made, route WHERE made.flow_task = {node_ref}
)"""


def _follow_step_by_step(case, from_state: str, actor) -> bool:
    """The two common moves in three statements, for databases without writing CTEs
    (SQLite); False: take the general way."""
    before = CaseFlow.node_for_state(from_state)
    node = CaseFlow.node_for_state(case.state)
    if before is node:
        if node is not None:
            holder = node.holder_id(case)
            CaseTask.objects.filter(
                case_id=case.pk, status__in=OPEN_TASK_STATUSES, flow_task=node
            ).exclude(org_id=holder).update(org_id=holder)
        return True
    if before is None or node is None or task_finished.has_listeners(CaseFlow):
        return False
    moment = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_end_task_sql(typed=False)} RETURNING id, process_id, token",
            [
                STATUS.DONE, moment, moment, actor.pk if actor is not None else None,
                case.pk, _node_ref(before), *OPEN_TASK_STATUSES,
            ],
        )  # fmt: skip
        ended = cursor.fetchall()
    if not ended:
        return False
    if len(ended) > 1:
        logger.error("case %s had %d open flow tasks; followed the newest", case.pk, len(ended))
    done_id, process_id, token = max(ended)
    common = {"process_id": process_id, "case_id": case.pk, "token": Token(token)}
    made = CaseTask.objects.bulk_create(
        [
            CaseTask(
                flow_task=CaseFlow.route,
                flow_task_type=CaseFlow.route.task_type,
                status=STATUS.DONE,
                created=moment,
                started=moment,
                finished=moment,
                **common,
            ),
            CaseTask(
                flow_task=node,
                flow_task_type=node.task_type,
                status=STATUS.NEW,
                created=moment,
                org_id=node.holder_id(case),
                **common,
            ),
        ]
    )
    link = CaseTask.previous.through
    link.objects.bulk_create(
        [
            link(from_casetask_id=made[0].pk, to_casetask_id=done_id),
            link(from_casetask_id=made[1].pk, to_casetask_id=made[0].pk),
        ]
    )
    return True


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
