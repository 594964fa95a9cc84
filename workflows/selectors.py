"""Reads of the human tasks: inboxes and task pages, each with a fixed number of queries."""

from __future__ import annotations

import functools

from django.db import connections, router
from django.db.models import BooleanField, F, Func, Q, QuerySet, Subquery

from casework import permissions
from casework.models import Case, Organisation

from .models import OPEN_TASK_STATUSES, CaseTask


def _scope(user) -> Q | None:
    """The tasks whose page this person may open, as one filter (None: none at all).

    Handlers see the handler steps held by their organisations, verifiers the
    verification steps held by theirs (a station, or the case's organisation),
    supervisors every human step held anywhere in their subtree.

    The task's holder (``org``) is not indexed, so that an escalation moves a task
    in place (workflows migration 0006). Each term also names the cases the task
    can belong to, by the case's organisation (``case_org_state_idx``) or station
    (``case_station_idx``), which is where PostgreSQL finds them; the open tasks
    of those cases come through ``casetask_case_status_idx``, and the holder is
    checked on the task row. An open task's holder is its case's organisation,
    or its station for the verification step, and its step is the one its case's
    state calls for (``workflows.engine`` keeps both in step with the case), so the
    case terms leave out no task the holder term takes; the states let
    ``case_org_state_idx`` skip an organisation's closed cases.
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
            query |= _subtree_scope(role.org_path, nodes)
            matched = True
            continue
        if role.role not in by_role:
            continue
        steps = by_role[role.role]
        cases = Q(case__org_id=role.org_id)
        if any(getattr(node, "at_station", False) for node in steps):
            cases |= Q(case__station_id=role.org_id)
        states = Q(case__state__in=_states_of(steps))
        query |= Q(org_id=role.org_id, flow_task__in=steps) & cases & states
        matched = True
    return query if matched else None


# Supervisors this deep or deeper (a district and below) see few organisations: their
# cases are listed first. Above (a province, a city) the open tasks of the subtree are
# a good share of all of them, which a scan of the task table reads faster.
_LISTED_CASES_DEPTH = 3


def _subtree_scope(org_path: str, nodes) -> Q:
    """Every human step held in the subtree at ``org_path`` (a supervisor's scope)."""
    held = Q(org__path__startswith=org_path, flow_task__in=nodes)
    if len(org_path) // Organisation.steplen < _LISTED_CASES_DEPTH:
        return held
    # The cases first, as one array (case_org_state_idx and case_station_idx), then
    # their open tasks (casetask_case_status_idx).
    subtree = Organisation.objects.filter(path__startswith=org_path).order_by().values("pk")
    states = _states_of(nodes)
    cases = Case.objects.filter(
        Q(_AnyOf("org_id", subtree), state__in=states)
        | Q(_AnyOf("station_id", subtree), state__in=states)
    ).values("pk")
    return held & Q(_AnyOf("case_id", cases))


class _AnyOf(Func):
    """``column = ANY(ARRAY(subquery))`` on PostgreSQL, ``column IN (subquery)`` elsewhere.

    PostgreSQL computes the array once and probes the column's index with it, also
    as one arm of an OR (a BitmapOr); an ``IN (subquery)`` inside an OR cannot
    become a join and is checked row by row.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, column: str, queryset):
        super().__init__(F(column), Subquery(queryset))

    def _parts(self, compiler):
        column, subquery = (compiler.compile(e) for e in self.get_source_expressions())
        return column[0], subquery[0], (*column[1], *subquery[1])

    def as_sql(self, compiler, connection, **extra):
        column, subquery, params = self._parts(compiler)
        return f"{column} IN {subquery}", params

    def as_postgresql(self, compiler, connection, **extra):
        column, subquery, params = self._parts(compiler)
        return f"{column} = ANY(ARRAY{subquery})", params


def _states_of(nodes) -> list[str]:
    """The case states whose open task is at one of ``nodes`` (``flows.NODE_FOR_STATE``)."""
    from .flows import NODE_FOR_STATE, CaseFlow

    return [
        str(state) for state, name in NODE_FOR_STATE.items() if getattr(CaseFlow, name) in nodes
    ]


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
    if _TaskRead.usable():
        return _TaskRead.get("task").find(user, task_id)
    scope = _scope(user)
    if scope is None:
        return None
    return _tasks().filter(scope, pk=task_id).first()


def open_task_of_case(user, case_id: int) -> CaseTask | None:
    """The open task of a case if it is in the user's scope, with its case loaded.

    What a step's page works on when it is reached from the case rather than
    from the inbox (and what ``bench task`` completes).
    """
    if _TaskRead.usable():
        return _TaskRead.get("case").find(user, case_id)
    scope = _scope(user)
    if scope is None:
        return None
    return _tasks().filter(scope, case_id=case_id, status__in=OPEN_TASK_STATUSES).first()


def _read_connection():
    """Where a read of the tasks goes (the primary unless the router says otherwise)."""
    return connections[router.db_for_read(CaseTask)]


def _scope_sql(user_param: str = "%s") -> str:
    """``_scope`` as SQL over the task row (``workflows_casetask``, its organisation
    ``casework_organisation``): the person's memberships, read in the same statement."""
    from casework.models import Membership, Organisation

    from .flows import CaseFlow

    task = f'"{CaseTask._meta.db_table}"'
    field = CaseTask._meta.get_field("flow_task")

    def listed(nodes) -> str:
        refs = [field.get_prep_value(n) for n in nodes]
        return ", ".join("'" + ref.replace("'", "''") + "'" for ref in refs) or "NULL"

    nodes = CaseFlow.human_nodes()
    handler = listed(n for n in nodes if n.role == permissions.HANDLER)
    verifier = listed(n for n in nodes if n.role == permissions.VERIFIER)
    return (
        f'EXISTS (SELECT 1 FROM "{Membership._meta.db_table}" sm '
        f'JOIN "{Organisation._meta.db_table}" so ON so.id = sm.organisation_id '
        f"WHERE sm.user_id = {user_param} AND ("
        f"(sm.role = '{permissions.SUPERVISOR}' AND {task}.flow_task IN ({listed(nodes)}) "
        '  AND starts_with("casework_organisation"."path", so.path))'
        f" OR (sm.role = '{permissions.HANDLER}' AND sm.organisation_id = {task}.org_id "
        f"  AND {task}.flow_task IN ({handler}))"
        f" OR (sm.role = '{permissions.VERIFIER}' AND sm.organisation_id = {task}.org_id "
        f"  AND {task}.flow_task IN ({verifier}))))"
    )


class _TaskRead:
    """``task_for`` / ``open_task_of_case`` in one statement on PostgreSQL: the task with
    its case, category and organisation, the scope checked in SQL against the person's
    memberships, which come back in the same row and are cached on the person
    (``permissions.roles_of``). Compiled once per process (``casework.prepared``)."""

    @staticmethod
    def usable() -> bool:
        return _read_connection().vendor == "postgresql"

    @classmethod
    @functools.cache
    def get(cls, by: str) -> _TaskRead:
        """The statement for ``by``, compiled once per process."""
        return cls(by)

    def __init__(self, by: str):
        from casework.locks import _roles_sql
        from casework.prepared import ModelRead

        task = f'"{CaseTask._meta.db_table}"'
        if by == "task":
            where = f"WHERE {task}.id = %s AND {_scope_sql()}"
        else:
            opened = ", ".join(f"'{status}'" for status in OPEN_TASK_STATUSES)
            where = (
                f"WHERE {task}.case_id = %s AND {task}.status IN ({opened}) AND {_scope_sql()} "
                f"ORDER BY {task}.id LIMIT 1"
            )
        self.read = ModelRead(
            _tasks().filter(pk=ModelRead.PROBE).order_by(), where=where, extra=_roles_sql()
        )

    def find(self, user, key: int) -> CaseTask | None:
        if user is None or not user.is_authenticated:
            return None
        found = self.read.run(_read_connection(), [user.pk, key, user.pk])
        if found is None:
            return None
        task, (roles,) = found
        permissions.remember_roles(
            user, tuple(permissions.Role(org, path, role) for org, path, role in roles or ())
        )
        return task
