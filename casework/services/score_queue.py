"""Score updates for the SLA sweep's escalations, after the sweep's commit.

Adding an escalation's deltas to the score rows (``scores.record_events``)
costs an upsert per batch that the sweep need not wait for. So a sweep batch
only writes one ``ScorePending`` row per counted event, in its own
transaction (one narrow insert), and asks for ``apply_pending`` after commit
(the Celery task ``workflows.apply_pending_scores``; beat runs it every
minute as well, so a lost message costs a minute at most).

``apply_pending`` locks pending rows with SKIP LOCKED, adds their events'
deltas through ``scores.record_events`` and deletes the rows, in one
transaction: two runs never count the same event, and a crash counts nothing.

The nightly recompute counts every event from the timeline itself and calls
``forget_pending`` under its exclusive scores lock. The sweep holds the
shared side of that lock (``_hold_scores_shared``) while it writes pending rows, so no batch can
commit between the recompute's aggregate and its ``forget_pending``: each
event is counted by the recompute or by ``apply_pending``, never both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import connection, transaction

from ..models import Case, CaseEvent, ScorePending
from ..pgarrays import array_literal
from . import scores

logger = logging.getLogger(__name__)

APPLY_BATCH = 5000


def _hold_scores_shared() -> None:
    """The shared side of the scores lock the recompute takes exclusively
    (``scores.hold_scores``): sweeps never wait for each other; the recompute waits for
    the batches in flight and they wait for it."""
    scores.hold_scores()


def enqueue(items: Iterable[tuple[int, CaseEvent]]) -> int:
    """Queue the score update of (category id, event) pairs; inside the writer's transaction."""
    counted = [
        (category_id, event.pk)
        for category_id, event in items
        if str(event.kind) in scores.COUNTED_EVENT_KINDS
    ]
    if not counted:
        return 0
    _hold_scores_shared()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{ScorePending._meta.db_table}" (category_id, event_id) '
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
                [
                    array_literal([c for c, _e in counted]),
                    array_literal([e for _c, e in counted]),
                ],
            )
    else:
        ScorePending.objects.bulk_create(
            [ScorePending(category_id=c, event_id=e) for c, e in counted]
        )
    transaction.on_commit(publish)
    return len(counted)


def enqueue_events(event_ids: list[int]) -> int:
    """``enqueue`` for events already inserted in this transaction, by id: one
    ``INSERT … SELECT`` from the events and their cases."""
    if not event_ids:
        return 0
    _hold_scores_shared()
    table = ScorePending._meta.db_table
    events = CaseEvent._meta.db_table
    cases = Case._meta.db_table
    kinds = list(scores.COUNTED_EVENT_KINDS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f'INSERT INTO "{table}" (event_id, category_id) SELECT e.id, c.category_id '
                f'FROM "{events}" e JOIN "{cases}" c ON c.id = e.case_id '
                "WHERE e.id = ANY(%s::bigint[]) AND e.kind = ANY(%s)",
                [array_literal(event_ids), kinds],
            )
        else:
            marks = ", ".join(["%s"] * len(event_ids))
            kind_marks = ", ".join(["%s"] * len(kinds))
            cursor.execute(
                f'INSERT INTO "{table}" (event_id, category_id) SELECT e.id, c.category_id '
                f'FROM "{events}" e JOIN "{cases}" c ON c.id = e.case_id '
                f"WHERE e.id IN ({marks}) AND e.kind IN ({kind_marks})",
                [*event_ids, *kinds],
            )
        count = cursor.rowcount
    if count:
        transaction.on_commit(publish)
    return count


def pending_insert_from(source: str) -> tuple[str, list]:
    """``INSERT`` of the queue rows for the counted events of ``source`` (a table or CTE
    with the event columns), for a caller's statement (PostgreSQL). The caller first
    calls ``hold_for_enqueue`` and afterwards ``enqueued``."""
    sql = (
        f'INSERT INTO "{ScorePending._meta.db_table}" (event_id, category_id) '
        f'SELECT e.id, c.category_id FROM {source} e JOIN "{Case._meta.db_table}" c '
        "ON c.id = e.case_id WHERE e.kind = ANY(%s)"
    )
    return sql, [list(scores.COUNTED_EVENT_KINDS)]


def hold_for_enqueue() -> None:
    _hold_scores_shared()


def enqueued() -> None:
    transaction.on_commit(publish)


def publish() -> None:
    """Ask a worker to apply the pending updates (after commit; beat covers a failure)."""
    from workflows.tasks import apply_pending_scores_task

    try:
        apply_pending_scores_task.apply_async()
    except Exception:
        logger.warning("could not publish the score follow-up; beat will run it", exc_info=True)


def apply_pending(*, limit: int = APPLY_BATCH) -> int:
    """Add the deltas of up to ``limit`` pending events and forget them; how many."""
    with transaction.atomic():
        rows = list(
            ScorePending.objects.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "event_id", "category_id")[:limit]
        )
        if not rows:
            return 0
        events = CaseEvent.objects.only("id", "kind", "at", "org_id", "payload").in_bulk(
            [event_id for _pk, event_id, _c in rows]
        )
        scores.record_events(
            (category_id, events[event_id])
            for _pk, event_id, category_id in rows
            if event_id in events
        )
        ScorePending.objects.filter(pk__in=[pk for pk, _e, _c in rows]).delete()
    return len(rows)


def apply_all() -> int:
    """Apply every pending update now, here (the beat task, tests)."""
    done = 0
    while True:
        n = apply_pending()
        done += n
        if n < APPLY_BATCH:
            return done


def forget_pending() -> int:
    """The recompute counted every committed event: drop the pending rows (under its lock)."""
    deleted, _ = ScorePending.objects.all().delete()
    return deleted
