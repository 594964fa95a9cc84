"""Reads that serve the API, each a fixed number of queries, all scoped by cases_visible_to.

(Kept beside the API rather than in casework/selectors.py, which other surfaces
share; every case read starts from casework.selectors.cases_visible_to.)
"""

from __future__ import annotations

import functools
import re

from django.db import connections, router
from django.db.models import Q, QuerySet

from .. import permissions
from ..models import Case, CaseEvent, CaseMessage, CoordinationTask, Membership, Organisation
from ..selectors import PERSON_UNREAD, cases_visible_to

CASE_RELATED = ("org", "category", "assignee", "station", "requested_org", "youth")
# A case body shows its people as a reference (id and name): their password hash, contact
# details and birth date are not read (``PERSON_UNREAD``: those are encrypted, and each
# would be decrypted for every row of every page), nor the digests that find people by them.
CASE_UNREAD = tuple(f"{who}__{name}" for who in ("youth", "assignee") for name in PERSON_UNREAD)


def api_cases(user) -> QuerySet[Case]:
    """The cases a person may list, with everything the case body shows loaded up front."""
    return cases_visible_to(user).select_related(*CASE_RELATED).defer(*CASE_UNREAD)


def case_for(user, reference: str) -> Case | None:
    """One case by reference, or None when it does not exist or the person may not see it."""
    if _CaseRead.usable():
        found = _CaseRead.get("reference").find(user, reference)
        return found[0] if found else None
    return api_cases(user).filter(reference=reference).first()


def cases_by_ids(user, ids) -> dict[int, Case]:
    """The cases of these ids that the person may see, as ``api_cases`` loads them, by id.

    The rows of a list's page (``pagination.LeanPaginator``), whose ids were chosen
    from ``api_cases`` with the list's filters a moment before: the scope is checked
    again here, the filters are not (a case that changed state in between is shown
    as it is now, never one the person may not see).
    """
    ids = [int(pk) for pk in ids]
    if not ids:
        return {}
    if _CaseRead.usable():
        return {case.pk: case for case in _CaseRead.get("ids").find(user, ids)}
    return api_cases(user).order_by().filter(pk__in=ids).in_bulk()


def _scope_sql(org_alias: str) -> str:
    """``cases_visible_to`` as SQL over the case row and its organisation (``org_alias``:
    its name in the statement's joins), the person's memberships read in the same
    statement. Parameters: is superuser, the user's id twice."""
    case = f'"{Case._meta.db_table}"'
    membership = f'"{Membership._meta.db_table}"'
    organisation = f'"{Organisation._meta.db_table}"'
    task = f'"{CoordinationTask._meta.db_table}"'
    return (
        f"(%s OR {case}.youth_id = %s OR EXISTS (SELECT 1 FROM {membership} sm "
        f"JOIN {organisation} so ON so.id = sm.organisation_id "
        "WHERE sm.user_id = %s AND ("
        f"(sm.role = '{permissions.SUPERVISOR}' "
        f'AND starts_with({org_alias}."path", so.path))'
        f" OR (sm.role IN ('{permissions.HANDLER}', '{permissions.VERIFIER}') "
        f"AND sm.organisation_id IN ({case}.org_id, {case}.station_id))"
        f" OR (sm.role = '{permissions.PARTNER}' AND EXISTS (SELECT 1 FROM {task} ct "
        f"WHERE ct.case_id = {case}.id AND ct.partner_id = sm.organisation_id)))))"
    )


class _CaseRead:
    """``case_for`` and ``cases_by_ids`` in one statement on PostgreSQL: the case with
    the six joined rows of ``api_cases``, the scope of ``cases_visible_to`` checked in
    SQL against the person's memberships, which come back in the same row and are
    cached on the person (``permissions.roles_of``). Compiled once per process and
    prepared once per connection (``casework.prepared.ModelRead``): Django's
    compilation of that six-join SELECT and PostgreSQL's planning of it each cost more
    than running it (docs/performance.md)."""

    @staticmethod
    def usable() -> bool:
        return _read_connection().vendor == "postgresql"

    @classmethod
    @functools.cache
    def get(cls, by: str) -> _CaseRead:
        """The statement for ``by``, compiled once per process."""
        return cls(by)

    def __init__(self, by: str):
        from ..locks import _roles_sql
        from ..prepared import ModelRead

        self.by = by
        case = f'"{Case._meta.db_table}"'
        key = f"{case}.reference = %s" if by == "reference" else f"{case}.id = ANY(%s)"
        queryset = (
            Case.objects.select_related(*CASE_RELATED)
            .defer(*CASE_UNREAD)
            .filter(pk=ModelRead.PROBE)
            .order_by()
        )
        # The supervisor's test reads the path of the case's own organisation: its name
        # among the joins (the organisation table is joined three times).
        sql = str(queryset.query)
        joined = re.search(
            rf'JOIN "{Organisation._meta.db_table}"( T\d+)? ON \({case}\."org_id" = '
            rf'(T\d+|"{Organisation._meta.db_table}")\."id"\)',
            sql,
        )
        if joined is None:  # pragma: no cover - a Django change would show here
            raise RuntimeError("the case read's join of its organisation was not found")
        org_alias = joined.group(2)
        self.read = ModelRead(
            queryset, where=f"WHERE {key} AND {_scope_sql(org_alias)}", extra=_roles_sql()
        )

    def find(self, user, key):
        """By reference: (the case) or None; by ids: the cases found."""
        if user is None or not user.is_authenticated:
            return None if self.by == "reference" else []
        params = [user.pk, key, bool(user.is_superuser), user.pk, user.pk]
        rows = self.read.run_all(_read_connection(), params)
        if rows:
            _, (roles,) = rows[0]
            permissions.remember_roles(
                user, tuple(permissions.Role(org, path, role) for org, path, role in roles or ())
            )
        if self.by == "reference":
            return (rows[0][0],) if rows else None
        return [case for case, _extras in rows]


def _read_connection():
    """Where a read of the cases goes (the primary unless the router says otherwise)."""
    return connections[router.db_for_read(Case)]


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
