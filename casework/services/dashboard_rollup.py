"""Rebuild the supervisor dashboard's rollup (``casework.models_dashboard``), set-based.

One transaction deletes every rollup row and inserts them again from two
statements: the open cases by (subtree, category, state, channel) and the cases
and escalation events of the last 53 weeks by (subtree, category, week,
channel). Each statement aggregates the rows once per holding organisation
(one pass over the cases, one over the escalation events by their partial
index) and then adds each organisation's aggregate to itself and to every
ancestor (the prefixes of its materialised path), once per category and, for
organisations with children, once for all categories together (``category``
NULL). Readers keep seeing the
previous rows until the commit.

Nothing on the case write path touches the rollup: the figures are as of the
last rebuild (``DashboardRollup.as_of``), run every minute by Celery beat
(``casework.refresh_dashboard``) and by ``manage.py refresh_dashboard``. Two
rebuilds never run together: on PostgreSQL each takes a transaction-level
advisory lock and one that finds it taken returns at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, DateField, F, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from ..models import (
    Case,
    CaseEvent,
    DashboardOpenStats,
    DashboardRollup,
    DashboardWeekStats,
    Organisation,
)
from ..states import OPEN_STATES

# pg_try_advisory_xact_lock key: "dashboard rollup".
ADVISORY_LOCK = 0x59560D45
# The longest period the dashboard offers is 52 weeks; its first week may be partial.
WINDOW_WEEKS = 52
FINISHED_STATES = ("resolved", "feedback_given", "closed")


@dataclass(frozen=True)
class RefreshResult:
    as_of: datetime
    open_rows: int
    week_rows: int
    seconds: float


def week_start(moment: datetime) -> date:
    """The Monday of ``moment``'s week in the platform time zone (pure)."""
    day = timezone.localtime(moment).date()
    return day - timedelta(days=day.weekday())


def period_start(now: datetime, weeks: int) -> datetime:
    """The start of a dashboard period: midnight on the Monday ``weeks`` weeks before now."""
    monday = week_start(now - timedelta(weeks=weeks))
    return timezone.make_aware(datetime(monday.year, monday.month, monday.day))


def breached_case_ids():
    """The cases that ever missed a deadline: a sweep escalation or the top-level alert."""
    return CaseEvent.objects.filter(
        Q(kind="sla_breach") | Q(kind="escalated", payload__reason="sla_breach")
    ).values("case_id")


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _open_select(as_of: datetime) -> tuple[str, tuple]:
    open_values = [s.value for s in OPEN_STATES]
    return _sql(
        Case.objects.filter(state__in=open_values)
        .values("org_id", "category_id", "state", "channel")
        .annotate(
            cases=Count("pk"),
            overdue=Count("pk", filter=Q(stage_due_at__lt=as_of)),
            on_time=Count("pk", filter=~Q(pk__in=breached_case_ids())),
            reopened=Count("pk", filter=Q(reopen_count__gt=0)),
        )
        .order_by()
    )


def _week_selects(window: datetime) -> list[tuple[str, tuple]]:
    open_values = [s.value for s in OPEN_STATES]
    done = ~Q(state__in=open_values)
    finished = done & Q(state__in=FINISHED_STATES)
    submitted = (
        Case.objects.filter(submitted_at__gte=window)
        .annotate(week=TruncWeek("submitted_at", output_field=DateField()))
        .values("org_id", "category_id", "week", "channel")
        .annotate(
            submitted=Count("pk"),
            done=Count("pk", filter=done),
            finished=Count("pk", filter=finished),
            on_time=Count("pk", filter=finished & ~Q(pk__in=breached_case_ids())),
            reopened=Count("pk", filter=finished & Q(reopen_count__gt=0)),
        )
        .order_by()
    )
    closed = (
        Case.objects.filter(closed_at__gte=window)
        .annotate(week=TruncWeek("closed_at", output_field=DateField()))
        .values("org_id", "category_id", "week", "channel")
        .annotate(closed=Count("pk"))
        .order_by()
    )
    escalated = (
        CaseEvent.objects.filter(kind="escalated", at__gte=window, org__isnull=False)
        .annotate(
            week=TruncWeek("at", output_field=DateField()),
            category_id=F("case__category_id"),
            channel=F("case__channel"),
        )
        .values("org_id", "category_id", "week", "channel")
        .annotate(
            escalated=Count("pk"),
            escalated_sla=Count("pk", filter=Q(payload__reason="sla_breach")),
        )
        .order_by()
    )
    return [_sql(submitted), _sql(closed), _sql(escalated)]


def _ancestors_sql() -> str:
    """(org_id, anc_id) for every organisation and each of its ancestors, itself included."""
    org = Organisation._meta.db_table
    return f"""
        depths(k) AS (
            SELECT 1 UNION ALL SELECT k + 1 FROM depths WHERE k < (SELECT MAX(depth) FROM {org})
        ),
        ancestors(org_id, anc_id) AS (
            SELECT o.id, a.id FROM {org} o
            JOIN depths d ON d.k <= o.depth
            JOIN {org} a ON a.path = substr(o.path, 1, d.k * {Organisation.steplen})
        )"""


def _rollup_insert(table: str, keys: list[str], measures: list[str], own_sql: str) -> str:
    """INSERT the subtree sums of ``own`` rows (per holding organisation) into ``table``.

    ``per_category`` adds each organisation's rows to itself and its ancestors; the
    rows for all categories together (category NULL) are summed from those, for
    organisations with children only: a leaf's all-category figures are the sum of
    its few per-category rows, which the dashboard adds up itself (the leaves hold
    most rows, and this saves about a fifth of them).
    """
    org = Organisation._meta.db_table
    other_keys = [k for k in keys if k != "category_id"]
    by_key = ", ".join(f"own.{k}" for k in other_keys)
    plain_keys = ", ".join(other_keys)
    own_sums = ", ".join(f"SUM(own.{m}) AS {m}" for m in measures)
    sums = ", ".join(f"SUM({m})" for m in measures)
    columns = ", ".join(["org_id", "category_id", *other_keys, *measures])
    return f"""
        INSERT INTO {table} ({columns})
        WITH RECURSIVE {_ancestors_sql()},
        own AS ({own_sql}),
        per_category AS (
            SELECT a.anc_id AS org_id, own.category_id, {by_key}, {own_sums}
            FROM own JOIN ancestors a ON a.org_id = own.org_id
            GROUP BY a.anc_id, own.category_id, {by_key}
        )
        SELECT org_id, category_id, {plain_keys}, {", ".join(measures)} FROM per_category
        UNION ALL
        SELECT org_id, NULL, {plain_keys}, {sums}
        FROM per_category
        WHERE org_id IN (SELECT id FROM {org} WHERE numchild > 0)
        GROUP BY org_id, {plain_keys}
    """


OPEN_MEASURES = ["cases", "overdue", "on_time", "reopened"]
WEEK_MEASURES = [
    "submitted",
    "done",
    "finished",
    "on_time",
    "reopened",
    "closed",
    "escalated",
    "escalated_sla",
]


def refresh_dashboard_rollup(*, now: datetime | None = None) -> RefreshResult | None:
    """Rebuild the rollup as of ``now``; None when another rebuild holds the lock."""
    started = time.perf_counter()
    as_of = now or timezone.now()
    window = period_start(as_of, WINDOW_WEEKS)

    open_sql, open_params = _open_select(as_of)
    open_own = (
        "SELECT q.org_id, q.category_id, q.state, q.channel, "
        f"q.cases, q.overdue, q.on_time, q.reopened FROM ({open_sql}) q"
    )
    selects = _week_selects(window)
    zero = {m: "0" for m in WEEK_MEASURES}
    parts, week_params = [], []
    columns = [
        ["submitted", "done", "finished", "on_time", "reopened"],
        ["closed"],
        ["escalated", "escalated_sla"],
    ]
    for (sql, params), present in zip(selects, columns, strict=True):
        values = ", ".join(f"q.{m}" if m in present else f"{zero[m]} AS {m}" for m in WEEK_MEASURES)
        parts.append(f"SELECT q.org_id, q.category_id, q.week, q.channel, {values} FROM ({sql}) q")
        week_params.extend(params)
    week_own = " UNION ALL ".join(parts)

    open_table = DashboardOpenStats._meta.db_table
    week_table = DashboardWeekStats._meta.db_table
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK])
                if not cursor.fetchone()[0]:
                    return None
                # Each statement aggregates a million rows: no JIT compile for it, and
                # memory enough to hash its groups without spilling to disk.
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute(f"DELETE FROM {open_table}")
            cursor.execute(f"DELETE FROM {week_table}")
            cursor.execute(
                _rollup_insert(
                    open_table, ["category_id", "state", "channel"], OPEN_MEASURES, open_own
                ),
                open_params,
            )
            open_rows = cursor.rowcount
            cursor.execute(
                _rollup_insert(
                    week_table, ["category_id", "week", "channel"], WEEK_MEASURES, week_own
                ),
                week_params,
            )
            week_rows = cursor.rowcount
        seconds = time.perf_counter() - started
        DashboardRollup.objects.update_or_create(
            pk=1,
            defaults={
                "as_of": as_of,
                "window_start": window.date(),
                "seconds": round(seconds, 3),
                "rows": open_rows + week_rows,
            },
        )
    return RefreshResult(as_of=as_of, open_rows=open_rows, week_rows=week_rows, seconds=seconds)
