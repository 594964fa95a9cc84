"""The SLA sweep: reminders, breaches and ended rating windows, in bulk.

Deadlines live on the case rows (``stage_due_at``, ``remind_at``) behind
partial indexes of open cases; the sweep reads them in batches, oldest first,
with ``SELECT … FOR UPDATE SKIP LOCKED`` and commits once per batch. A case
locked by another sweep (or by a person acting on it) is skipped and picked up
by the next batch or the next run, and a case a sweep has handled no longer
matches, so two sweeps at once act on each case exactly once.

Per batch the work is set-based. Breaches on PostgreSQL: one statement locks
the batch, computes each case's new holder, deadlines, event payload and hash
(lookup tables built in Python once per sweep), updates the cases and inserts
the events, their outbox rows and score queue rows; one ``move_open_tasks``
UPDATE moves the open human tasks. Breach batches run on two connections at
once (``SLA_SWEEP_WORKERS``). Reminders, side deadlines and breaches on SQLite
build their events in Python (``build_event`` / ``_event_row``). No flow
activation runs per case: that would cost tens of milliseconds a case.

Only the rating window's end (a handful of cases at a time) goes through the
per-case service ``case_auto_close``, because closing ends the case's flow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from hashlib import sha256

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.utils import timezone

from ..errors import CaseworkError
from ..events import EventKind, build_event, canonical_time
from ..models import Case, Category, Complaint, CoordinationTask, Organisation
from ..pgarrays import array_literal
from ..states import SLA_STAGE_STATES as STAGE_STATES
from ..states import CaseState
from .cases import case_auto_close
from .score_queue import enqueue_events as enqueue_scores

logger = logging.getLogger(__name__)
_dumps = json.dumps

HOLDING_KINDS = (Organisation.Kind.LEAGUE, Organisation.Kind.STATION, Organisation.Kind.SOCIAL)
DEFAULT_BATCH_SIZE = 1000
# Breach batches run on this many connections at once on PostgreSQL (the calling one and
# threads with their own; SLA_SWEEP_WORKERS); 1 = one loop. See docs/performance.md.
DEFAULT_WORKERS = 2
CLOSING_BATCH_SIZE = 50


@dataclass
class SweepResult:
    escalated: int = 0
    critical: int = 0
    reminded: int = 0
    auto_closed: int = 0
    task_reminded: int = 0
    task_overdue: int = 0
    complaint_overdue: int = 0
    batches: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# The partial indexes that the sweep's queries use (casework migration 0005). The
# filters below repeat their conditions so the planner can prove the index applies.
def breach_candidates(now: datetime):
    return Case.objects.filter(
        state__in=STAGE_STATES, stage_due_at__isnull=False, sla_breached=False
    ).filter(stage_due_at__lte=now)


def reminder_candidates(now: datetime):
    return Case.objects.filter(state__in=STAGE_STATES, remind_at__isnull=False).filter(
        remind_at__lte=now
    )


def rating_candidates(now: datetime):
    return Case.objects.filter(
        state=CaseState.FEEDBACK_GIVEN, stage_due_at__isnull=False, stage_due_at__lte=now
    )


# Coordination tasks and complaints have deadlines of their own (docs/sla.md, section 4);
# their partial indexes are in casework migration 0013.
def task_reminder_candidates(now: datetime):
    return CoordinationTask.objects.filter(
        status=CoordinationTask.Status.OPEN, remind_at__isnull=False
    ).filter(remind_at__lte=now)


def task_overdue_candidates(now: datetime):
    return CoordinationTask.objects.filter(
        status=CoordinationTask.Status.OPEN, overdue_notified=False, due_at__isnull=False
    ).filter(due_at__lte=now)


def complaint_overdue_candidates(now: datetime):
    return Complaint.objects.filter(
        status=Complaint.Status.OPEN, overdue_notified_at__isnull=True
    ).filter(due_at__lte=now)


# What this module and the notification writer read; a field left out would cost one
# query per case when read, so the list errs on the side of more.
LOADED_FIELDS = (
    "id",
    "reference",
    "state",
    "org",
    "category",
    "urgency",
    "youth",
    "station",
    "assignee",
    "version",
    "escalation_count",
    "stage_started_at",
    "stage_due_at",
    "remind_at",
    "stage_reminded",
    "sla_breached",
    "last_event_seq",
    "last_event_hash",
    "is_public",
    "region_code",
)


def _lock_batch(queryset, order_field: str, size: int) -> list[Case]:
    return list(
        queryset.order_by(order_field, "pk")
        .select_for_update(skip_locked=True, of=("self",))
        .only(*LOADED_FIELDS)[:size]
    )


class _Deadlines:
    """New (due, remind) per category, urgency and clock: one calendar walk each per sweep."""

    def __init__(self, now: datetime):
        from workflows import sla

        self.now = now
        self.sla = sla
        self.calendar = sla.current_calendar()
        self.codes = dict(Category.objects.values_list("pk", "code"))
        self.cache: dict[tuple, tuple] = {}
        self._targets: dict[int, tuple[int | None, int]] = {}
        self._maps: list[str] | None = None

    def targets(self, org_ids: set[int]) -> dict[int, tuple[int | None, int]]:
        """``_escalation_targets``, remembered for the rest of this sweep."""
        missing = org_ids - self._targets.keys()
        if missing:
            self._targets.update(_escalation_targets(missing))
        return self._targets

    def pg_maps(self) -> list[str]:
        """The lookup tables of ``_breach_batch_pg`` as array literals, built once per
        sweep: every organisation's escalation target and level, the new deadlines of
        every category, urgency and stage clock, and the clock of each stage state."""
        if self._maps is None:
            targets = _all_escalation_targets()
            self._targets.update(targets)
            clocks = {str(state): self.sla.clock_for(state) for state in STAGE_STATES}
            restarts = [
                (category_id, urgency, clock, *self.restart_for(category_id, urgency, clock))
                for category_id in self.codes
                for urgency in Case.Urgency.values
                for clock in set(clocks.values())
            ]
            columns = [
                list(targets),
                [target for target, _level in targets.values()],
                [level for _target, level in targets.values()],
                *(list(column) for column in zip(*restarts, strict=True)),
                list(clocks),
                list(clocks.values()),
            ]
            self._maps = [array_literal(column) for column in columns]
        return self._maps

    def restart(self, case: Case) -> tuple[datetime, datetime | None]:
        return self.restart_for(case.category_id, case.urgency, self.sla.clock_for(case.state))

    def restart_for(self, category_id: int, urgency: str, clock: str | None) -> tuple:
        key = (category_id, urgency, clock)
        if key not in self.cache:
            policy = self.sla.policy_for(
                category_code=self.codes.get(category_id, ""), urgency=urgency
            )
            # Most categories share a policy: one calendar walk per policy and clock.
            walk = (policy, clock)
            if walk not in self.cache:
                self.cache[walk] = self.sla.deadlines(policy, clock, self.now, self.calendar)
            self.cache[key] = self.cache[walk]
        return self.cache[key]


def _escalation_targets(org_ids: set[int]) -> dict[int, tuple[int | None, int]]:
    """For each organisation: (the nearest active ancestor that holds cases, its own level).

    Two queries for the whole batch: the organisations, then all their ancestors
    by materialised path (a parent's path is the child's minus one step).
    """
    steplen = Organisation.steplen
    own = dict(_organisations("id", org_ids, "id", "path"))
    ancestor_paths = {path[:i] for path in own.values() for i in range(steplen, len(path), steplen)}
    ancestors = {
        path: (pk, active and kind in HOLDING_KINDS)
        for pk, path, active, kind in _organisations(
            "path", ancestor_paths, "id", "path", "is_active", "kind"
        )
    }
    targets = {}
    for org_id, path in own.items():
        target = None
        for i in range(len(path) - steplen, 0, -steplen):
            pk, usable = ancestors.get(path[:i], (None, False))
            if usable:
                target = pk
                break
        targets[org_id] = (target, len(path) // steplen)
    return targets


def _all_escalation_targets() -> dict[int, tuple[int | None, int]]:
    """``_escalation_targets`` of every organisation: one query."""
    steplen = Organisation.steplen
    rows = Organisation.objects.values_list("pk", "path", "is_active", "kind")
    by_path = {path: (pk, active and kind in HOLDING_KINDS) for pk, path, active, kind in rows}
    targets = {}
    for path, (org_id, _usable) in by_path.items():
        target = None
        for i in range(len(path) - steplen, 0, -steplen):
            pk, usable = by_path.get(path[:i], (None, False))
            if usable:
                target = pk
                break
        targets[org_id] = (target, len(path) // steplen)
    return targets


def _organisations(key: str, values, *columns: str) -> list[tuple]:
    """Rows of organisations whose ``key`` column is in ``values``. On PostgreSQL the
    values go as one array: an ``__in`` lookup of a thousand values costs more Python
    than the query."""
    if connection.vendor != "postgresql":
        return list(Organisation.objects.filter(**{f"{key}__in": values}).values_list(*columns))
    cast = "bigint" if key == "id" else "text"
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {", ".join(columns)} FROM "{Organisation._meta.db_table}" '
            f"WHERE {key} = ANY(%s::{cast}[])",
            [array_literal(list(values))],
        )
        return cursor.fetchall()


def _save_cases(cases: list[Case], fields: list[str], now: datetime) -> None:
    """One UPDATE for the whole batch: one array per column on PostgreSQL, else bulk_update."""
    for case in cases:
        case.updated_at = now
    fields = [*fields, "updated_at"]
    if connection.vendor != "postgresql":
        Case.objects.bulk_update(cases, fields)
        return
    columns = [Case._meta.get_field(name) for name in fields]
    # Plain Python values (ints, strings, aware datetimes, None) adapt to arrays as they are.
    arrays = [[case.pk for case in cases]]
    arrays += [[getattr(case, field.attname) for case in cases] for field in columns]
    casts = ["bigint", *(_array_type(field) for field in columns)]
    names = ", ".join(f'"{c}"' for c in ["id", *(field.column for field in columns)])
    assignments = ", ".join(f'"{field.column}" = v."{field.column}"' for field in columns)
    sources = ", ".join(f"%s::{cast}[]" for cast in casts)
    sql = (
        f'UPDATE "{Case._meta.db_table}" AS c SET {assignments} '
        f"FROM unnest({sources}) AS v({names}) "
        'WHERE c."id" = v."id"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [array_literal(values) for values in arrays])


def _array_type(field) -> str:
    if field.is_relation:
        return field.target_field.rel_db_type(connection)
    db_type = field.db_type(connection)
    return db_type.split("(")[0] if db_type.startswith("varchar") else db_type


def _insert_events(events: list) -> None:
    """Insert the batch's events in one statement and give each its id.

    On PostgreSQL the rows go in as one array per column: Django's
    ``bulk_create`` would spend more time preparing each value than the
    database spends storing it.
    """
    from casework.models import CaseEvent

    if connection.vendor != "postgresql":
        CaseEvent.objects.bulk_create(events)
        return
    table = CaseEvent._meta.db_table
    sql = (
        f'INSERT INTO "{table}" (case_id, seq, kind, from_state, to_state, actor_id, org_id, '
        "at, payload, prev_hash, hash) "
        "SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::varchar[], %s::varchar[], "
        "%s::varchar[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::jsonb[], "
        "%s::varchar[], %s::varchar[]) RETURNING id, case_id, seq"
    )
    params = [
        [e.case_id for e in events],
        [e.seq for e in events],
        [e.kind for e in events],
        [e.from_state for e in events],
        [e.to_state for e in events],
        [e.actor_id for e in events],
        [e.org_id for e in events],
        [e.at for e in events],
        [json.dumps(e.payload, ensure_ascii=False) for e in events],
        [e.prev_hash for e in events],
        [e.hash for e in events],
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [array_literal(values) for values in params])
        ids = {(case_id, seq): pk for pk, case_id, seq in cursor.fetchall()}
    for event in events:
        event.pk = ids[(event.case_id, event.seq)]
        event._state.adding = False
        event._state.db = connection.alias


def _after_write(pairs: list, moved_case_ids: list[int]) -> None:
    from notifications.services import write_outbox
    from workflows.engine import move_open_tasks

    if pairs:
        # One outbox row per event in one INSERT; one fan-out message per batch.
        write_outbox(pairs)
    if moved_case_ids:
        move_open_tasks(moved_case_ids)


# The columns a breach batch reads of each locked case, in this order.
_BREACH_FIELDS = (
    "id",
    "state",
    "org_id",
    "category_id",
    "urgency",
    "stage_due_at",
    "last_event_seq",
    "last_event_hash",
)


def _breach_lock(now: datetime, size: int):
    """The locking query of one breach batch: the oldest deadlines first, SKIP LOCKED.

    Ordered by the deadline alone, the order of ``case_sla_breach_idx``: the scan
    stops after ``size`` rows it could lock. With a second key (the id) every
    batch read and sorted every due case that shares the oldest deadline (all of
    them when many cases got the same business-hours deadline, as in the
    benchmark), and the batches of a sweep read ever more rows. Cases with the same
    deadline come in index order; which batch takes which of them does not matter.
    """
    return (
        breach_candidates(now)
        .order_by("stage_due_at")
        .select_for_update(skip_locked=True, of=("self",))
        .values_list(*_BREACH_FIELDS)[:size]
    )


def _breached_sets(v: dict[str, str], now: str, false: str) -> str:
    """The SET list of ``_update_breached``; ``v`` names where each new value comes from."""
    return (
        f"org_id = {v['org']}, "
        f"assignee_id = CASE WHEN {v['moved']} THEN NULL ELSE assignee_id END, "
        "version = version + 1, "
        f"escalation_count = escalation_count + CASE WHEN {v['moved']} THEN 1 ELSE 0 END, "
        f"stage_started_at = CASE WHEN {v['moved']} THEN {now} ELSE stage_started_at END, "
        f"stage_due_at = {v['due']}, remind_at = {v['remind']}, "
        f"stage_reminded = CASE WHEN {v['moved']} THEN {false} ELSE stage_reminded END, "
        f"sla_breached = NOT {v['moved']}, "
        f"last_event_seq = {v['seq']}, last_event_hash = {v['hash']}, updated_at = {now}"
    )


_BREACHED_VALUES = ("id", "moved", "org", "due", "remind", "seq", "hash")


def _update_breached(rows: list[tuple], now: datetime) -> None:
    """The batch's case updates (SQLite; on PostgreSQL ``_breach_batch_pg`` does them).

    Each row is (id, moved, org, due, remind, seq, hash). A moved case goes to
    ``org`` with a fresh stage clock and no assignee; a case that stays (the
    top level) gets the critical flag. Both lose their reminder point.
    """
    table = Case._meta.db_table
    sets = _breached_sets({n: f"%({n})s" for n in _BREACHED_VALUES}, "%(now)s", "0")
    sql = f'UPDATE "{table}" SET {sets} WHERE id = %(id)s'
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores them
    params = []
    for row in rows:
        values = dict(zip(_BREACHED_VALUES, row, strict=True))
        values.update(due=adapt(values["due"]), remind=adapt(values["remind"]), now=adapt(now))
        params.append(values)
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _insert_event_rows(rows: list[tuple], now: datetime) -> list[int]:
    """Insert (case_id, seq, kind, state, org_id, payload json, prev_hash, hash) rows as
    events at ``now`` by the system (no actor); their ids (SQLite)."""
    from casework.models import CaseEvent

    created = CaseEvent.objects.bulk_create(
        [
            CaseEvent(
                case_id=case_id,
                seq=seq,
                kind=kind,
                from_state=state,
                to_state=state,
                actor_id=None,
                org_id=org_id,
                at=now,
                payload=json.loads(payload),
                prev_hash=prev,
                hash=digest,
            )
            for case_id, seq, kind, state, org_id, payload, prev, digest in rows
        ]
    )
    return [event.pk for event in created]


def _event_row(case_id, seq, kind, state, org_id, payload, prev, at_text) -> tuple:
    """One event row with its hash (``casework.events.compute_hash``'s canonical form)."""
    blob = _dumps(
        {
            "case": case_id,
            "seq": seq,
            "kind": kind,
            "from": state,
            "to": state,
            "actor": None,
            "org": org_id,
            "at": at_text,
            "payload": payload,
            "prev": prev,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = sha256(blob.encode()).hexdigest()
    return (
        case_id,
        seq,
        kind,
        state,
        org_id,
        _dumps(payload, ensure_ascii=False),
        prev,
        digest,
    )


# ``datetime.isoformat`` of a UTC time, as ``_event_row`` hashes the missed deadline.
_ISO_UTC = (
    "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
    "CASE WHEN date_trunc('second', {0}) = {0} THEN '' "
    "ELSE to_char({0} AT TIME ZONE 'UTC', '.US') END || '+00:00'"
)
# The canonical JSON of ``casework.events.compute_hash`` (keys sorted, no spaces) of a
# system event whose strings need no escaping (states, kinds, clocks, times, hashes).
_PAYLOAD_SQL = (
    "CASE WHEN o.parent IS NULL "
    """THEN '{{"clock":"' || k.clock || '","level":' || COALESCE(o.level, 0) """
    """|| ',"missed":"' || {missed} || '"}}' """
    """ELSE '{{"clock":"' || k.clock || '","from_org":' || l.org_id || ',"missed":"' """
    """|| {missed} || '","reason":"sla_breach","to_org":' || o.parent || '}}' END"""
).format(missed=_ISO_UTC.format("l.stage_due_at"))
_BLOB_SQL = (
    """'{"actor":null,"at":"' || %s || '","case":' || calc.id || ',"from":"' || calc.state """
    """|| '","kind":"' || calc.kind || '","org":' || calc.org || ',"payload":' """
    """|| calc.payload || ',"prev":"' || calc.prev || '","seq":' || calc.seq """
    """|| ',"to":"' || calc.state || '"}'"""
)


def _breach_batch_pg(now: datetime, size: int, deadlines: _Deadlines, result: SweepResult) -> int:
    """``_breach_batch`` on PostgreSQL: one statement for the whole batch.

    It locks the batch (SKIP LOCKED), looks up each case's escalation target and
    new deadlines in tables Python built once per sweep (``_Deadlines.pg_maps``),
    computes each event's payload and hash (the canonical form of
    ``casework.events.compute_hash``: the tests' ``verify_case`` and
    ``verify_timeline`` check them), updates the cases, and inserts the events,
    their outbox rows and score queue rows. Only the ids of the moved cases come
    back to Python, for the one ``move_open_tasks`` UPDATE that follows.
    """
    from casework.models import CaseEvent
    from notifications.services import outbox_insert_from, outbox_written
    from workflows.engine import move_open_tasks

    from . import score_queue

    with transaction.atomic():
        score_queue.hold_for_enqueue()
        lock_sql, lock_params = _breach_lock(now, size).query.sql_with_params()
        maps = deadlines.pg_maps()
        sets = _breached_sets({n: f"v.{n}" for n in _BREACHED_VALUES}, "%s", "false")
        outbox_sql, outbox_params = outbox_insert_from("ev", cases="cu")
        pending_sql, pending_params = score_queue.pending_insert_from("ev")

        table = Case._meta.db_table
        sql = (
            "WITH o AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::integer[]) "
            "AS o(id, parent, level)), "
            "d AS (SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], "
            "%s::timestamptz[], %s::timestamptz[]) "
            "AS d(category_id, urgency, clock, due, remind)), "
            "k AS (SELECT * FROM unnest(%s::varchar[], %s::varchar[]) AS k(state, clock)), "
            f"l AS MATERIALIZED ({lock_sql}), "
            "calc AS MATERIALIZED (SELECT l.id, l.state, l.category_id, "
            "l.last_event_seq + 1 AS seq, l.last_event_hash AS prev, "
            "o.parent IS NOT NULL AS moved, COALESCE(o.parent, l.org_id) AS org, "
            "CASE WHEN o.parent IS NULL THEN l.stage_due_at ELSE d.due END AS due, "
            "CASE WHEN o.parent IS NULL THEN NULL ELSE d.remind END AS remind, "
            "CASE WHEN o.parent IS NULL THEN %s ELSE %s END AS kind, "
            f"{_PAYLOAD_SQL} AS payload "
            "FROM l LEFT JOIN o ON o.id = l.org_id LEFT JOIN k ON k.state = l.state "
            "LEFT JOIN d ON d.category_id = l.category_id AND d.urgency = l.urgency "
            "AND d.clock = k.clock), "
            "v AS MATERIALIZED (SELECT calc.*, "
            f"encode(sha256(convert_to({_BLOB_SQL}, 'UTF8')), 'hex') "
            "AS hash FROM calc), "
            f'cu AS (UPDATE "{table}" SET {sets} FROM v WHERE "{table}".id = v.id '
            f'AND "{table}".id = ANY(ARRAY(SELECT id FROM v)) '
            f'RETURNING "{table}".id, "{table}".org_id, "{table}".station_id, '
            f'"{table}".youth_id, "{table}".reference, "{table}".category_id, '
            f'"{table}".state, "{table}".stage_due_at, v.moved), '
            f'ev AS (INSERT INTO "{CaseEvent._meta.db_table}" (case_id, seq, kind, from_state, '
            "to_state, actor_id, org_id, at, payload, prev_hash, hash) "
            "SELECT id, seq, kind, state, state, NULL, org, %s, payload::jsonb, prev, hash "
            "FROM v RETURNING id, case_id, seq, kind, org_id, actor_id, payload), "
            f"ob AS ({outbox_sql}), "
            f"sp AS ({pending_sql}) "
            "SELECT (SELECT count(*) FROM v), (SELECT array_agg(id) FROM v WHERE moved), "
            "(SELECT count(*) FROM v WHERE moved AND due IS NULL), "
            "(SELECT array_agg(id) FROM ob)"
        )
        params = [
            *maps,
            *lock_params,
            EventKind.SLA_BREACH.value,
            EventKind.ESCALATED.value,
            canonical_time(now),
            now,
            now,
            now,
            *outbox_params,
            *pending_params,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            handled, moved, undated, outbox_ids = cursor.fetchone()
        if undated:
            # A category or urgency the deadline table lacks: undo rather than lose a clock.
            raise RuntimeError(f"sla sweep: {undated} escalated cases without a new deadline")
        moved = moved or []
        if moved:
            # A statement of its own: the tasks are found by the ids, as one array, through
            # their (case, status) index; inside the statement above the planner cannot
            # know how many rows a CTE holds and probes the index once per case.
            move_open_tasks(moved)
        outbox_written(outbox_ids or [])
        if handled:
            score_queue.enqueued()
    result.escalated += len(moved)
    result.critical += handled - len(moved)
    return handled


def _breach_batch(now: datetime, size: int, deadlines: _Deadlines, result: SweepResult) -> int:
    """Escalate one batch of breached cases one level up (or raise the critical flag).

    Set-based: one locking SELECT (plain tuples, no model objects), one UPDATE of
    the cases, one INSERT of the events (their hash chain computed here), one
    INSERT of the outbox rows and one of the score queue (both from the new
    events, in the database), one UPDATE of the open tasks.
    """
    if connection.vendor == "postgresql":
        return _breach_batch_pg(now, size, deadlines, result)
    from notifications.services import write_outbox_for_events
    from workflows.engine import move_open_tasks

    with transaction.atomic():
        locked = list(_breach_lock(now, size))
        if not locked:
            return 0
        targets = deadlines.targets({row[2] for row in locked})
        at_text = canonical_time(now)
        clock_of = deadlines.sla.clock_for
        case_rows, event_rows, moved, scored = [], [], [], []
        for case_id, state, org_id, category_id, urgency, due, seq, prev in locked:
            clock = clock_of(state)
            missed = due.isoformat()
            parent_id, level = targets.get(org_id, (None, 0))
            seq += 1
            if parent_id is None:
                # Nowhere to go: the supervisors of the top level get a critical alert,
                # once (the flag takes the case out of the breach index).
                kind = EventKind.SLA_BREACH.value
                payload = {"clock": clock, "level": level, "missed": missed}
                new_org, new_due, new_remind = org_id, due, None
                result.critical += 1
            else:
                kind = EventKind.ESCALATED.value
                payload = {
                    "clock": clock,
                    "from_org": org_id,
                    "missed": missed,
                    "reason": "sla_breach",
                    "to_org": parent_id,
                }
                new_org = parent_id
                new_due, new_remind = deadlines.restart_for(category_id, urgency, clock)
                moved.append(case_id)
                result.escalated += 1
            event = _event_row(case_id, seq, kind, state, new_org, payload, prev, at_text)
            event_rows.append(event)
            scored.append((category_id, kind))
            case_rows.append(
                (case_id, parent_id is not None, new_org, new_due, new_remind, seq, event[7])
            )
        _update_breached(case_rows, now)
        # The outbox rows and the score queue rows come from the new events in the database.
        event_ids = _insert_event_rows(event_rows, now)
        write_outbox_for_events(event_ids)
        enqueue_scores(event_ids)
        if moved:
            move_open_tasks(moved)
    return len(locked)


def _reminder_batch(now: datetime, size: int, result: SweepResult) -> int:
    """Remind the holders of one batch of cases whose reminder point has passed."""
    with transaction.atomic():
        cases = _lock_batch(reminder_candidates(now), "remind_at", size)
        if not cases:
            return 0
        from workflows.sla import clock_for

        events = []
        for case in cases:
            events.append(
                build_event(
                    case,
                    kind=EventKind.SLA_REMINDER,
                    from_state=case.state,
                    to_state=case.state,
                    payload={"clock": clock_for(case.state), "due": case.stage_due_at.isoformat()},
                    at=now,
                )
            )
            # Once per stage and level: a restarted clock sets a new reminder point.
            case.remind_at = None
            case.stage_reminded = True
        _insert_events(events)
        _save_cases(
            cases, ["remind_at", "stage_reminded", "last_event_seq", "last_event_hash"], now
        )
        _after_write(list(zip(cases, events, strict=True)), [])
        result.reminded += len(cases)
    return len(cases)


def _rating_batch(now: datetime, size: int, result: SweepResult) -> int:
    """Close the cases whose rating window ended without a rating."""
    with transaction.atomic():
        ids = list(
            rating_candidates(now)
            .order_by("stage_due_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:size]
        )
        for case_id in ids:
            # The row is already locked by this transaction; the service re-checks it.
            try:
                with transaction.atomic():
                    case_auto_close(case=case_id)
            except CaseworkError:
                logger.exception("sla sweep: could not auto-close case %s", case_id)
                continue
            result.auto_closed += 1
    return len(ids)


def _task_reminder(task: CoordinationTask, now: datetime) -> tuple[str, dict]:
    return EventKind.REFERRAL_REMINDER, {
        "task": task.pk,
        "partner": task.partner_id,
        "due": task.due_at.isoformat() if task.due_at else None,
    }


def _task_overdue(task: CoordinationTask, now: datetime) -> tuple[str, dict]:
    return EventKind.REFERRAL_OVERDUE, {
        "task": task.pk,
        "partner": task.partner_id,
        "missed": task.due_at.isoformat(),
    }


def _complaint_overdue(complaint: Complaint, now: datetime) -> tuple[str, dict]:
    # The organisation complained about hears, wherever the case is now.
    return EventKind.COMPLAINT_OVERDUE, {
        "complaint": complaint.pk,
        "notify_org": complaint.org_id,
        "missed": complaint.due_at.isoformat(),
    }


def _side_deadline_batch(now: datetime, size: int, candidates, order_field, describe, mark):
    """One batch of coordination-task or complaint deadlines: a timeline event on each
    item's case and its notifications, then the item is marked so it is acted on once.

    The items and then their cases are locked with SKIP LOCKED; an item whose case
    another transaction holds waits for the next run. Returns (locked, acted on).
    """
    with transaction.atomic():
        items = list(
            candidates(now)
            .order_by(order_field, "pk")
            .select_for_update(skip_locked=True, of=("self",))[:size]
        )
        if not items:
            return 0, 0
        cases = {
            case.pk: case
            for case in Case.objects.filter(pk__in={item.case_id for item in items})
            .select_for_update(skip_locked=True)
            .only(*LOADED_FIELDS)
        }
        pairs, done = [], []
        for item in items:
            case = cases.get(item.case_id)
            if case is None:
                continue
            kind, payload = describe(item, now)
            event = build_event(
                case, kind=kind, from_state=case.state, to_state=case.state, payload=payload, at=now
            )
            pairs.append((case, event))
            done.append(item.pk)
        if pairs:
            _insert_events([event for _case, event in pairs])
            touched = list({case.pk: case for case, _event in pairs}.values())
            _save_cases(touched, ["last_event_seq", "last_event_hash"], now)
            _after_write(pairs, [])
            mark(done, now)
    return len(items), len(done)


def _mark_task_reminded(ids, now):
    CoordinationTask.objects.filter(pk__in=ids).update(remind_at=None)


def _mark_task_overdue(ids, now):
    CoordinationTask.objects.filter(pk__in=ids).update(overdue_notified=True, remind_at=None)


def _mark_complaint_overdue(ids, now):
    Complaint.objects.filter(pk__in=ids).update(overdue_notified_at=now)


BREACH, REMIND, RATING = "breach", "remind", "rating"
TASK_REMIND, TASK_OVERDUE, COMPLAINT_OVERDUE = "task_remind", "task_overdue", "complaint_overdue"
# phase: (candidates, order field, describe, mark, result counter)
SIDE_PHASES = {
    TASK_OVERDUE: (
        task_overdue_candidates,
        "due_at",
        _task_overdue,
        _mark_task_overdue,
        "task_overdue",
    ),
    TASK_REMIND: (
        task_reminder_candidates,
        "remind_at",
        _task_reminder,
        _mark_task_reminded,
        "task_reminded",
    ),
    COMPLAINT_OVERDUE: (
        complaint_overdue_candidates,
        "due_at",
        _complaint_overdue,
        _mark_complaint_overdue,
        "complaint_overdue",
    ),
}


def _due_phases(now: datetime) -> set[str]:
    """Which of the deadline kinds have anything due: one query, one index probe each.

    Most runs find nothing; then the sweep costs this one round trip and no transaction.
    """
    kinds = (
        (BREACH, breach_candidates),
        (REMIND, reminder_candidates),
        (RATING, rating_candidates),
        *((name, phase[0]) for name, phase in SIDE_PHASES.items()),
    )
    if not connection.features.supports_slicing_ordering_in_compound:  # SQLite: a probe each
        return {name for name, candidates in kinds if candidates(now).exists()}
    # The statement is compiled once per process (compiling six querysets costs more
    # than running the probes): ``now`` goes in where the placeholder time was.
    compiled = _PROBE_SQL.get(connection.alias)
    if compiled is None:
        probes = [
            candidates(_PROBE_TIME).annotate(phase=Value(name)).values_list("phase").order_by()[:1]
            for name, candidates in kinds
        ]
        compiled = probes[0].union(*probes[1:], all=True).query.sql_with_params()
        _PROBE_SQL[connection.alias] = compiled
    sql, params = compiled
    with connection.cursor() as cursor:
        cursor.execute(sql, [now if value is _PROBE_TIME else value for value in params])
        return {phase for (phase,) in cursor.fetchall()}


_PROBE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_PROBE_SQL: dict[str, tuple[str, tuple]] = {}


def _may_run_in_threads() -> bool:
    """Threads use connections of their own: only on PostgreSQL, and never inside a caller's
    transaction (they could not see its rows)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _tickets(max_batches: int | None, used: int):
    """A thread-safe budget of batches: ``take()`` is False once ``max_batches`` ran."""
    if max_batches is None:
        return lambda: True
    import threading

    lock = threading.Lock()
    left = [max_batches - used]

    def take() -> bool:
        with lock:
            if left[0] <= 0:
                return False
            left[0] -= 1
            return True

    return take


def _breach_in_threads(
    now: datetime, size: int, deadlines: _Deadlines, result: SweepResult, workers: int, take
) -> None:
    """The breach batches on the calling connection and ``workers - 1`` threads, each
    thread with a connection of its own.

    The same guarantees as one loop: every batch locks its rows with SKIP
    LOCKED and commits on its own, so two batches never take the same case,
    and a loop stops at its first short batch (the rows it could not lock
    belong to a batch another loop is finishing). While one connection's
    statements run in the database, the other loop builds its batch in Python,
    and the database works on two batches at once.
    """
    import threading

    results = [SweepResult() for _ in range(workers)]
    errors: list[BaseException] = []

    def loop(own: SweepResult) -> None:
        while not errors and take():
            own.batches += 1
            if _breach_batch(now, size, deadlines, own) < size:
                break

    def run(own: SweepResult) -> None:
        try:
            loop(own)
        except BaseException as error:  # re-raised in the calling thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(own,)) for own in results[1:]]
    for thread in threads:
        thread.start()
    try:
        loop(results[0])
    except BaseException as error:
        errors.append(error)
    finally:
        for thread in threads:
            thread.join()
    for own in results:
        result.escalated += own.escalated
        result.critical += own.critical
        result.batches += own.batches
    if errors:
        raise errors[0]


def _more_than_a_batch_due(now: datetime, size: int) -> bool:
    """Whether more than ``size`` cases are due: one index scan of at most ``size + 1``
    entries of ``case_sla_breach_idx`` (locked rows count too: a guess, not a promise)."""
    return breach_candidates(now).order_by()[: size + 1].count() > size


def _breach_phase(
    now: datetime, size: int, deadlines: _Deadlines, result: SweepResult, max_batches
) -> None:
    """Every breach batch of this run.

    When more than one batch is due (and the budget allows two), both connections
    start at once; otherwise the first batch runs alone on the calling connection, so
    a run with less than a full batch due starts no thread and opens no connection,
    and the threads start only if that batch came back full.
    """
    take = _tickets(max_batches, result.batches)
    workers = getattr(settings, "SLA_SWEEP_WORKERS", DEFAULT_WORKERS)
    threads = workers > 1 and _may_run_in_threads()
    if (
        threads
        and (max_batches is None or max_batches - result.batches > 1)
        and _more_than_a_batch_due(now, size)
    ):
        deadlines.pg_maps()  # built once, before the threads share it
        _breach_in_threads(now, size, deadlines, result, workers, take)
        return
    if not take():
        return
    result.batches += 1
    if _breach_batch(now, size, deadlines, result) < size:
        return
    if threads:
        _breach_in_threads(now, size, deadlines, result, workers, take)
        return
    while take():
        result.batches += 1
        if _breach_batch(now, size, deadlines, result) < size:
            break


def sla_sweep(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int | None = None
) -> SweepResult:
    """Act on every deadline that has passed: escalate breaches, send reminders, close ratings,
    and tell of coordination tasks and complaints that are due soon or overdue.

    Safe to run at any time and from several processes at once: each batch
    commits on its own, skips rows another transaction holds, and leaves every
    case it handled out of the due set, so each deadline is acted on once.
    ``max_batches`` bounds one run (the next run carries on).
    """
    now = now or timezone.now()
    size = batch_size or getattr(settings, "SLA_SWEEP_BATCH_SIZE", DEFAULT_BATCH_SIZE)
    result = SweepResult()
    deadlines = None

    def budget_left() -> bool:
        return max_batches is None or result.batches < max_batches

    due = _due_phases(now)
    if BREACH in due:
        deadlines = _Deadlines(now)
        _breach_phase(now, size, deadlines, result, max_batches)
    while REMIND in due and budget_left():
        result.batches += 1
        if _reminder_batch(now, size, result) < size:
            break
    # Closing runs the flow per case (tens of milliseconds each): small batches keep
    # each transaction, and the row locks it holds, short.
    closing_size = min(size, CLOSING_BATCH_SIZE)
    while RATING in due and budget_left():
        result.batches += 1
        if _rating_batch(now, closing_size, result) < closing_size:
            break
    for name, (candidates, order_field, describe, mark, counter) in SIDE_PHASES.items():
        while name in due and budget_left():
            result.batches += 1
            locked, done = _side_deadline_batch(now, size, candidates, order_field, describe, mark)
            setattr(result, counter, getattr(result, counter) + done)
            if locked < size or not done:
                break
    if any(result.as_dict()[name] for name in result.as_dict() if name != "batches"):
        logger.info("sla sweep: %s", result.as_dict())
    return result


__all__ = ["SweepResult", "sla_sweep"]
