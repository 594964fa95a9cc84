"""Notifications: an outbox row written in the same transaction as the change it reports.

The path of one notification:

1. ``notify_event`` (or ``write_outbox`` for a sweep's batch) writes one
   ``OutboxEvent`` row per event inside the caller's transaction, whatever
   the number of recipients, and asks for ``publish_fan_out`` after commit.
2. The task ``notifications.tasks.fan_out`` runs ``fan_out`` on a worker: it
   resolves the recipients and writes one ``Notification`` (delivery) row per
   recipient and channel, unique on (event, recipient, channel), marks the
   event fanned out in the same transaction, and publishes the new rows.
3. ``publish`` hands row ids to ``notifications.tasks.deliver``. If the
   process dies between commit and publish, or the broker is down, nothing is
   lost: ``relay_pending`` (run by beat) publishes every event not fanned out
   and every row not done once its grace period is over.
4. ``deliver_many`` delivers. In-app: the inbox item and the "sent" mark are one
   transaction, and the inbox item is unique on the row's key, so an in-app
   message exists exactly once. External channels: the row is claimed
   (status ``sending`` + a lease) before the send and marked after it; a
   second worker cannot claim it meanwhile, and the key travels with the
   message so the receiver can drop the repeat that a crash between "sent"
   and "marked" can cause.
5. A failed send is retried with exponential backoff; after
   ``NOTIFICATIONS_MAX_ATTEMPTS`` failures the row is a dead letter that an
   admin can retry (``retry_notifications``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from casework.pgarrays import array_literal

from .channels import NoAddress, PermanentError, get_sender
from .models import Audience, Channel, InboxItem, Notification, OutboxEvent, Preference
from .recipients import RECIPIENTS, resolve_recipients
from .rendering import language_of, preference_of, render

log = logging.getLogger(__name__)
Status = Notification.Status
CLAIMABLE = (Status.PENDING, Status.FAILED)
OPEN_STATUSES = (Status.PENDING, Status.FAILED, Status.SENDING)


# --- writing the outbox ----------------------------------------------------------


def notification_key(case_id: int, seq: int, channel: str, user_id: int) -> str:
    """The idempotency key over (event, channel, recipient); an event is (case, seq)."""
    return hashlib.sha256(f"yv:{case_id}:{seq}:{channel}:{user_id}".encode()).hexdigest()


_CHANNELS = frozenset(Channel.values)  # ``Channel.values`` builds a new list on every access


def channels_for(user) -> list[str]:
    """The channels this person wants and has an address for (the address is not stored)."""
    pref = preference_of(user)
    wanted = pref.channels() if pref else list(settings.NOTIFICATIONS_DEFAULT_CHANNELS)
    usable = []
    # ``has_email``/``has_phone`` come annotated from the recipient lookup (no decryption).
    has_email = getattr(user, "has_email", None)
    has_phone = getattr(user, "has_phone", None)
    for channel in wanted:
        if channel == Channel.EMAIL and not (user.email if has_email is None else has_email):
            continue
        if channel == Channel.SMS and not (user.phone if has_phone is None else has_phone):
            continue
        if channel == Channel.WEBHOOK and not settings.NOTIFICATIONS_WEBHOOK_URL:
            continue
        if channel in _CHANNELS:
            usable.append(channel)
    return usable


_category_codes: dict[int, str] = {}


def _category_code(category_id: int) -> str:
    if category_id not in _category_codes:
        from casework.models import Category

        _category_codes.update(dict(Category.objects.values_list("pk", "code")))
    return _category_codes.get(category_id, "")


def _int_or_none(value):
    return value if isinstance(value, int) else None


# Payload keys the fan-out reads (recipients: partner, notify_org; messages: reason, task).
_PAYLOAD_KEYS = ("reason", "task", "partner", "notify_org")


def _facts(case, event) -> dict:
    """What the fan-out needs of one (case, event), as it is at the change. No personal data."""
    payload = event.payload or {}
    return {
        "seq": event.seq,
        "org": event.org_id or case.org_id,
        "youth": case.youth_id,
        "station": case.station_id,
        "actor": event.actor_id,
        "ref": case.reference,
        "category": case.category_id,
        "state": case.state,
        # In UTC, as the database writes it for the sweep (``_FACTS_SQL``).
        "due": case.stage_due_at.astimezone(UTC).isoformat() if case.stage_due_at else None,
        "payload": {key: payload[key] for key in _PAYLOAD_KEYS if key in payload},
    }


class _CaseFacts:
    """The case as the outbox row saw it (what ``resolve_recipients`` and ``_context`` read)."""

    __slots__ = (
        "category_id",
        "due",
        "org_id",
        "pk",
        "reference",
        "state",
        "station_id",
        "youth_id",
    )

    def __init__(self, case_id: int, facts: dict):
        self.pk = case_id
        self.org_id = facts.get("org")
        self.youth_id = facts.get("youth")
        self.station_id = facts.get("station")
        self.reference = facts.get("ref", "")
        self.category_id = facts.get("category")
        self.state = facts.get("state", "")
        self.due = facts.get("due")


class _EventFacts:
    __slots__ = ("actor_id", "kind", "org_id", "payload", "pk", "seq")

    def __init__(self, event_id: int, kind: str, facts: dict):
        self.pk = event_id
        self.seq = facts.get("seq")
        self.kind = kind
        self.org_id = facts.get("org")
        self.actor_id = facts.get("actor")
        self.payload = facts.get("payload") or {}


def _context(case: _CaseFacts, event: _EventFacts, org, audience: str) -> dict:
    """What the message may say: facts about the case, never about the person."""
    payload = event.payload
    facts = {"ref": case.reference, "category": _category_code(case.category_id)}
    if audience == Audience.PARTNER:
        facts["task"] = _int_or_none(payload.get("task"))
        return facts
    facts.update(
        state=case.state,
        org=org[2] if org else "",
        org_en=org[3] if org else "",
        level=org[4] if org else None,
        due=case.due,
        reason=str(payload.get("reason", ""))[:40],
    )
    if payload.get("visit"):  # a station visit's start (casework.services.stations)
        facts["visit"] = str(payload["visit"])[:40]
    return facts


# The columns a delivery row is written with, in the order ``_outbox_rows`` yields them.
_ROW_COLUMNS = (
    "key",
    "event_id",
    "case_id",
    "recipient_id",
    "kind",
    "channel",
    "audience",
    "context",
    "next_attempt_at",
    "relay_after",
    "created_at",
)
_ROW_CASTS = (
    "varchar",
    "bigint",
    "bigint",
    "bigint",
    "varchar",
    "varchar",
    "varchar",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "timestamptz",
)


def _outbox_rows(pairs, now: datetime) -> list[tuple]:
    """One tuple per (event, recipient, channel), in ``_ROW_COLUMNS`` order.

    ``pairs`` are (``_CaseFacts``, ``_EventFacts``). Recipients are resolved
    for all the events together (a fixed number of queries); each person's
    channels are worked out once per call, and each message context once per
    event and audience.
    """
    resolved, users = resolve_recipients(pairs)
    relay_after = now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    channels_of: dict[int, list[str]] = {}
    rows: list[tuple] = []
    for (case, event), found in zip(pairs, resolved, strict=True):
        contexts: dict[str, dict] = {}
        kind = str(event.kind)
        for user_id, audience in found.recipients.items():
            channels = channels_of.get(user_id)
            if channels is None:
                user = users.get(user_id)
                channels = channels_of[user_id] = channels_for(user) if user is not None else []
            for channel in channels:
                context = contexts.get(audience)
                if context is None:
                    context = contexts[audience] = _context(case, event, found.org, audience)
                rows.append(
                    (
                        notification_key(case.pk, event.seq, channel, user_id),
                        event.pk,
                        case.pk,
                        user_id,
                        kind,
                        channel,
                        audience,
                        context,
                        now,
                        relay_after,
                        now,
                    )
                )
    return rows


def _insert_rows(rows: list[tuple]) -> list[int]:
    """Insert delivery rows, skipping any whose key exists already; the new rows' ids.

    On PostgreSQL one statement over one array per column (``ON CONFLICT
    (key) DO NOTHING``): a second fan-out of the same event adds nothing.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        keys = [row[0] for row in rows]
        existing = set(Notification.objects.filter(key__in=keys).values_list("key", flat=True))
        created = Notification.objects.bulk_create(
            [
                Notification(**dict(zip(_ROW_COLUMNS, row, strict=True)))
                for row in rows
                if row[0] not in existing
            ],
            batch_size=1000,
        )
        return [obj.pk for obj in created]
    json_at = _ROW_COLUMNS.index("context")
    columns = list(zip(*rows, strict=True))
    # Rows of one event and audience share one context object: encode each once.
    encoded: dict[int, str] = {}
    for value in columns[json_at]:
        if id(value) not in encoded:
            encoded[id(value)] = json.dumps(value, ensure_ascii=False)
    columns[json_at] = [encoded[id(value)] for value in columns[json_at]]
    names = ", ".join(f'"{name}"' for name in _ROW_COLUMNS)
    sources = ", ".join(f"%s::{cast}[]" for cast in _ROW_CASTS)
    sql = (
        f'INSERT INTO "{Notification._meta.db_table}" ({names}, status, attempts, last_error) '
        f"SELECT *, %s, 0, '' FROM unnest({sources}) "
        "ON CONFLICT (key) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Status.PENDING, *(array_literal(column) for column in columns)])
        return [pk for (pk,) in cursor.fetchall()]


def _insert_outbox_events(pairs, now: datetime) -> list[int]:
    """One ``OutboxEvent`` per (case, event); their ids. One statement on PostgreSQL."""
    relay_after = now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    if connection.vendor != "postgresql":
        created = OutboxEvent.objects.bulk_create(
            [
                OutboxEvent(
                    event_id=event.pk,
                    case_id=case.pk,
                    kind=str(event.kind),
                    facts=_facts(case, event),
                    created_at=now,
                    relay_after=relay_after,
                )
                for case, event in pairs
            ]
        )
        return [obj.pk for obj in created]
    dumps = json.dumps
    sql = (
        f'INSERT INTO "{OutboxEvent._meta.db_table}" '
        "(event_id, case_id, kind, facts, created_at, relay_after) "
        "SELECT e, c, k, f, %s, %s FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], "
        "%s::jsonb[]) AS t(e, c, k, f) RETURNING id"
    )
    params = [
        now,
        relay_after,
        array_literal([event.pk for _case, event in pairs]),
        array_literal([case.pk for case, _event in pairs]),
        array_literal([str(event.kind) for _case, event in pairs]),
        array_literal([dumps(_facts(case, event), ensure_ascii=False) for case, event in pairs]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [pk for (pk,) in cursor.fetchall()]


def write_outbox(pairs) -> list[int]:
    """Write one outbox row per (case, event) that tells anyone; return their ids.

    Inside the caller's transaction: the rows commit or roll back with the
    change. One INSERT whatever the number of events, no recipient lookup
    (the worker's fan-out does that), and one fan-out message for all of them
    after commit (``publish_fan_out``); the relay covers a lost message.
    """
    pairs = [(case, event) for case, event in pairs if str(event.kind) in RECIPIENTS]
    if not pairs:
        return []
    ids = _insert_outbox_events(pairs, timezone.now())
    if ids:
        transaction.on_commit(partial(publish_fan_out, ids))
    return ids


# ``_facts`` in SQL, for events already in the database (the sweep's batches): the same
# keys and values, read from the event and its case's row after the change. The payload
# keeps the keys of ``_PAYLOAD_KEYS`` the event has, one ``CASE`` a key (constants of this
# module): no set-returning ``jsonb_each`` and aggregate over every key per row.
_PAYLOAD_SQL = " || ".join(
    f"CASE WHEN e.payload ? '{key}' THEN jsonb_build_object('{key}', e.payload->'{key}') "
    "ELSE '{}'::jsonb END"
    for key in _PAYLOAD_KEYS
)
_FACTS_SQL = f"""jsonb_build_object(
    'seq', e.seq, 'org', COALESCE(e.org_id, c.org_id), 'youth', c.youth_id,
    'station', c.station_id, 'actor', e.actor_id, 'ref', c.reference,
    'category', c.category_id, 'state', c.state, 'due', to_jsonb(c.stage_due_at),
    'payload', {_PAYLOAD_SQL})"""


def outbox_insert_from(source: str, cases: str | None = None) -> tuple[str, list]:
    """``INSERT`` of one outbox row per event of ``source`` (a table or CTE with the
    event columns) that tells anyone, for a caller's statement (PostgreSQL).
    ``cases`` is where the cases' current values are read (default: the case table;
    a CTE returning the rows the same statement updates, which the table does not
    show yet). Returns (sql ending in ``RETURNING id``, params); pass the ids to
    ``outbox_written``."""
    from casework.models import Case

    now = timezone.now()
    relay_after = now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    cases = cases or f'"{Case._meta.db_table}"'
    sql = (
        f'INSERT INTO "{OutboxEvent._meta.db_table}" '
        "(event_id, case_id, kind, facts, created_at, relay_after) "
        f"SELECT e.id, e.case_id, e.kind, {_FACTS_SQL}, %s, %s "
        f"FROM {source} e JOIN {cases} c ON c.id = e.case_id "
        "WHERE e.kind = ANY(%s) RETURNING id"
    )
    return sql, [now, relay_after, sorted(RECIPIENTS)]


def outbox_written(ids: list[int]) -> None:
    """Publish outbox rows written by ``outbox_insert_from`` after the commit."""
    if ids:
        transaction.on_commit(partial(publish_fan_out, list(ids)))


def write_outbox_for_events(event_ids: list[int]) -> list[int]:
    """``write_outbox`` for events already inserted in this transaction, by id.

    On PostgreSQL one ``INSERT … SELECT`` from the events and their cases: no
    Python object per event. The cases must hold the state the events report
    (the caller updated them first).
    """
    from casework.models import Case, CaseEvent

    if not event_ids:
        return []
    now = timezone.now()
    if connection.vendor != "postgresql":
        events = CaseEvent.objects.filter(pk__in=event_ids).select_related("case")
        return write_outbox([(event.case, event) for event in events])
    relay_after = now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    sql = (
        f'INSERT INTO "{OutboxEvent._meta.db_table}" '
        "(event_id, case_id, kind, facts, created_at, relay_after) "
        f"SELECT e.id, e.case_id, e.kind, {_FACTS_SQL}, %s, %s "
        f'FROM "{CaseEvent._meta.db_table}" e JOIN "{Case._meta.db_table}" c ON c.id = e.case_id '
        "WHERE e.id = ANY(%s::bigint[]) AND e.kind = ANY(%s) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [now, relay_after, array_literal(event_ids), sorted(RECIPIENTS)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    if ids:
        transaction.on_commit(partial(publish_fan_out, ids))
    return ids


def outbox_for_change(case, event, source: str) -> tuple[str, list] | None:
    """The outbox row of one change as an ``INSERT … SELECT … FROM source RETURNING id``,
    for the change's own statement (PostgreSQL; ``casework.services._core``); None when
    the event tells nobody.

    ``source`` is the CTE that inserted the event (its ``id`` and ``case_id``). The
    row is ``write_outbox``'s: the same facts, no recipients (the fan-out finds
    them). Pass the id the statement returns to ``outbox_written``.
    """
    kind = str(event.kind)
    if kind not in RECIPIENTS:
        return None
    now = timezone.now()
    relay_after = now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    sql = (
        f'INSERT INTO "{OutboxEvent._meta.db_table}" '
        "(event_id, case_id, kind, facts, created_at, relay_after) "
        "SELECT id, case_id, %s::varchar, %s::jsonb, %s::timestamptz, %s::timestamptz "
        f"FROM {source} RETURNING id"
    )
    return sql, [kind, json.dumps(_facts(case, event), ensure_ascii=False), now, relay_after]


def notify_events_bulk(pairs) -> list[int]:
    """The outbox rows for many (case, event) pairs at once (``write_outbox``)."""
    return write_outbox(pairs)


def notify_event(case, event) -> list[int]:
    """Write the outbox row that ``event`` calls for (inside the caller's transaction)."""
    return write_outbox([(case, event)])


# --- fanning out: one outbox event -> one delivery row per recipient and channel --------


def fan_out(outbox_ids=None, *, limit: int | None = None) -> list[int]:
    """Fan out outbox events (the given ones, or every pending one) to delivery rows.

    Runs on the worker. In one transaction: the events are locked (SKIP
    LOCKED: two workers never fan out the same one), their recipients resolved
    with a fixed number of queries, one row per (event, recipient, channel)
    inserted (the unique key makes a repeat a no-op) and the events marked
    fanned out. The new rows are published for delivery after commit.
    Returns the new rows' ids.
    """
    now = timezone.now()
    with transaction.atomic():
        pending = OutboxEvent.objects.select_for_update(skip_locked=True).filter(
            fanned_out_at__isnull=True
        )
        if outbox_ids is not None:
            pending = pending.filter(pk__in=[int(pk) for pk in outbox_ids])
        pending = pending.order_by("pk").values_list("pk", "event_id", "case_id", "kind", "facts")
        events = list(pending[:limit] if limit else pending)
        if not events:
            return []
        pairs = [
            (_CaseFacts(case_id, facts), _EventFacts(event_id, kind, facts))
            for _pk, event_id, case_id, kind, facts in events
        ]
        ids = _insert_rows(_outbox_rows(pairs, now))
        OutboxEvent.objects.filter(pk__in=[event[0] for event in events]).update(fanned_out_at=now)
        if ids:
            transaction.on_commit(partial(publish, ids))
    return ids


def fan_out_pending(*, limit: int | None = None) -> list[int]:
    """Fan out every pending outbox event now, here (tests, the embedded mode)."""
    return fan_out(None, limit=limit)


# --- handing rows to the workers ------------------------------------------------


def publish(ids: list[int], *, chunk: int | None = None) -> int:
    """Hand row ids to the delivery task, ``chunk`` ids per message; return how many were published.

    Runs after commit. A failure here loses nothing: the rows are committed
    and the relay publishes them after the grace period. A sweep publishes
    each batch as one message (the task delivers it in chunks); other writers
    use ``NOTIFICATIONS_TASK_BATCH`` so several workers share a large write.
    """
    from .tasks import deliver

    size = max(chunk or settings.NOTIFICATIONS_TASK_BATCH, 1)
    done = 0
    for start in range(0, len(ids), size):
        chunk = list(ids[start : start + size])
        try:
            deliver.apply_async(args=[chunk])
        except Exception:
            log.warning(
                "could not publish %d notifications; the relay will", len(ids) - done, exc_info=True
            )
            break
        done += len(chunk)
    return done


def publish_fan_out(ids: list[int]) -> int:
    """Hand outbox event ids to the fan-out task (one message; runs after commit).

    A failure loses nothing: the events are committed and the relay publishes
    them after the grace period.
    """
    from .tasks import fan_out as fan_out_task

    ids = list(ids)
    # Celery's own rendering of the arguments for logs and monitors (``saferepr``) costs
    # more than the rest of the message for a transition's one id: say it here.
    argsrepr = repr([ids]) if len(ids) <= 20 else f"[[{len(ids)} outbox events]]"
    try:
        fan_out_task.apply_async(args=[ids], argsrepr=argsrepr, kwargsrepr="{}")
    except Exception:
        log.warning("could not publish %d outbox events; the relay will", len(ids), exc_info=True)
        return 0
    return len(ids)


class _LeanPublish:
    """``task.apply_async(args=…)`` for the one message every case change publishes.

    ``apply_async`` works out, on every call, what never changes for one task in
    one process (its execution options, its route) and builds a result object
    nobody reads. This does that once and sends each message with Celery's own
    message API (``app.amqp.create_task_message`` and ``send_task_message``):
    the same headers, body, route, retry policy and publish signals. In eager
    mode (no broker), or from inside a running task (whose id the message
    carries as its parent), it is plain ``apply_async``.
    """

    def __init__(self, task):
        self.task = task
        self.app = app = task.app
        options = {k: v for k, v in task._get_exec_options().items() if v is not None}
        self.time_limit = options.pop("time_limit", None)
        self.soft_time_limit = options.pop("soft_time_limit", None)
        options.pop("expires", None)
        self.ignore_result = options.pop("ignore_result", None)
        self.options = app.amqp.router.route(options, task.name, None, None, task)

    def __call__(self, args: list) -> None:
        from kombu.utils.uuid import uuid

        app = self.app
        if app.conf.task_always_eager or app.current_worker_task is not None:
            self.task.apply_async(args=args, argsrepr=repr(args), kwargsrepr="{}")
            return
        amqp = app.amqp
        message = amqp.create_task_message(
            uuid(),
            self.task.name,
            args,
            {},
            time_limit=self.time_limit,
            soft_time_limit=self.soft_time_limit,
            ignore_result=self.ignore_result,
            argsrepr=repr(args),
            kwargsrepr="{}",
            reply_to=app.thread_oid,
            create_sent_event=app.conf.task_send_sent_event,
        )
        with app.producer_or_acquire() as producer:
            amqp.send_task_message(producer, self.task.name, message, **self.options)


_lean: list[_LeanPublish] = []


def _lean_fan_out() -> _LeanPublish:
    if not _lean:
        from .tasks import fan_out as fan_out_task

        _lean.append(_LeanPublish(fan_out_task))
    return _lean[0]


class _ChangePublisher:
    """The outbox events of a process's committed case changes, sent by a background
    thread, one fan-out message per ``NOTIFICATIONS_PUBLISH_WINDOW_MS`` window.

    ``add`` (after a commit) only appends the id and wakes the thread, which
    waits out the window and publishes every id gathered by then as one message
    (``NOTIFICATIONS_TASK_BATCH`` ids at most per message): a busy process
    publishes a few changes per message instead of one, and no request waits on
    the broker. Nothing is lost when the broker is down or the process dies
    before the window ends: the outbox rows are committed and the relay
    publishes them after the grace period. A forked child starts with nothing
    pending and its own thread; at a normal exit what is pending is published.
    """

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[int] = []
        self._thread: threading.Thread | None = None

    def add(self, outbox_id: int) -> None:
        with self._lock:
            self._pending.append(outbox_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="outbox-publisher", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            time.sleep(settings.NOTIFICATIONS_PUBLISH_WINDOW_MS / 1000)
            wake.clear()  # an id added from here on sets it again
            self.flush()

    def flush(self) -> int:
        """Publish what is pending now; how many ids were published."""
        with self._lock:
            ids, self._pending = self._pending, []
        done = 0
        size = max(settings.NOTIFICATIONS_TASK_BATCH, 1)
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            try:
                _lean_fan_out()([chunk])
            except Exception:
                log.warning(
                    "could not publish %d outbox events; the relay will",
                    len(ids) - done,
                    exc_info=True,
                )
                break
            done += len(chunk)
        return done


_publisher = _ChangePublisher()


def publish_change(outbox_id: int) -> bool:
    """Hand one case change's outbox event to the fan-out task (after its commit).

    Every transition of a case publishes one. With a broker, the id goes to
    this process's ``_ChangePublisher``, which sends it within
    ``NOTIFICATIONS_PUBLISH_WINDOW_MS`` together with the other changes
    committed meanwhile; in eager mode (no broker), from inside a running task
    (whose id the message carries as its parent) or with a window of 0, it is
    sent now, alone, at about half the cost of ``publish_fan_out``
    (``_LeanPublish``). A failure loses nothing: the event is committed and the
    relay publishes it after the grace period.
    """
    lean = _lean_fan_out()
    app = lean.app
    if (
        settings.NOTIFICATIONS_PUBLISH_WINDOW_MS > 0
        and not app.conf.task_always_eager
        and app.current_worker_task is None
    ):
        _publisher.add(outbox_id)
        return True
    try:
        lean([[outbox_id]])
    except Exception:
        log.warning("could not publish an outbox event; the relay will", exc_info=True)
        return False
    return True


def relay_pending(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Re-publish whatever is not done once its grace period (or backoff, or lease) is over.

    Run by beat: outbox events not fanned out yet (a fan-out message lost, or
    a process killed between commit and publish), then delivery rows not done
    (a lost message, a worker killed holding a lease, the retries of failed
    sends). Rows are locked with SKIP LOCKED so two relays never publish the
    same row in the same round. Returns how many events and rows it published.
    """
    now = now or timezone.now()
    limit = limit or settings.NOTIFICATIONS_RELAY_BATCH
    grace = timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS)
    with transaction.atomic():
        event_ids = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(fanned_out_at__isnull=True, relay_after__lte=now)
            .order_by("relay_after")
            .values_list("pk", flat=True)[:limit]
        )
        if event_ids:
            OutboxEvent.objects.filter(pk__in=event_ids).update(relay_after=now + grace)
    if event_ids:
        log.info("relay: publishing %d outbox events again", len(event_ids))
        for start in range(0, len(event_ids), settings.NOTIFICATIONS_TASK_BATCH):
            publish_fan_out(event_ids[start : start + settings.NOTIFICATIONS_TASK_BATCH])
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status__in=OPEN_STATUSES, relay_after__lte=now)
            .order_by("relay_after")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(relay_after=now + grace)
    if ids:
        log.info("relay: publishing %d notifications again", len(ids))
        publish(ids)
    return len(event_ids) + len(ids)


def retry_notifications(ids, *, actor=None) -> int:
    """An admin sends failed or dead notifications again; returns how many were queued."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(pk__in=list(ids), status__in=[Status.FAILED, Status.DEAD])
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            relay_after=now + timedelta(seconds=settings.NOTIFICATIONS_RELAY_GRACE_SECONDS),
            lease_until=None,
            last_error="",
        )
        if ids:
            transaction.on_commit(partial(publish, ids))
    log.info("retry of %d notifications requested by user %s", len(ids), getattr(actor, "pk", None))
    return len(ids)


# --- delivering -------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """base * 2**(attempts-1), capped, with a little jitter so retries do not march in step."""
    base = settings.NOTIFICATIONS_BACKOFF_BASE_SECONDS
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=delay * random.uniform(1.0, 1.2))


def _claimable(now: datetime) -> Q:
    return Q(status__in=CLAIMABLE, next_attempt_at__lte=now) | Q(
        status=Status.SENDING, lease_until__lt=now
    )


def _tasks_for(rows):
    from casework.models import CoordinationTask

    task_ids = {
        (row.context or {}).get("task")
        for row in rows
        if row.audience == Audience.PARTNER and (row.context or {}).get("task")
    }
    if not task_ids:
        return {}
    return CoordinationTask.objects.in_bulk(list(task_ids))


def _render(row, tasks):
    task = tasks.get((row.context or {}).get("task")) if row.audience == Audience.PARTNER else None
    return render(row, language_of(row.recipient), task)


def _quiet_until(pref: Preference | None, now: datetime) -> datetime | None:
    """The end of the person's quiet hours if ``now`` falls inside them, else None."""
    if pref is None or pref.quiet_start is None or pref.quiet_end is None:
        return None
    local = timezone.localtime(now)
    start, end, t = pref.quiet_start, pref.quiet_end, local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until


def _fail(row: Notification, error: Exception, now: datetime) -> str:
    """Record a failed attempt: retry later, or dead-letter when attempts are used up."""
    message = (str(error) or type(error).__name__)[:200]
    if isinstance(error, NoAddress):
        status, extra = Status.SKIPPED, {}
    elif isinstance(error, PermanentError) or row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        status, extra = Status.DEAD, {}
    else:
        retry_at = now + backoff(row.attempts)
        status, extra = Status.FAILED, {"next_attempt_at": retry_at, "relay_after": retry_at}
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(
        status=status, lease_until=None, last_error=message, **extra
    )
    log.info(
        "notification %s (%s) attempt %d failed: %s -> %s",
        row.pk,
        row.channel,
        row.attempts,
        message,
        status,
    )
    return status


def _deliver_inapp(ids: list[int], now: datetime) -> int:
    """Write the inbox items and mark the rows sent, in one transaction: exactly once."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, channel=Channel.INAPP)
            .filter(status__in=CLAIMABLE, next_attempt_at__lte=now)
            .select_related("recipient__notification_preference")
        )
        if not rows:
            return 0
        tasks = _tasks_for(rows)
        items, done, broken = [], [], []
        for row in rows:
            try:
                message = _render(row, tasks)
            except Exception as error:  # a template bug must not block the other rows
                log.exception("rendering notification %s failed", row.pk)
                broken.append((row, error))
                continue
            items.append(
                InboxItem(
                    user_id=row.recipient_id,
                    key=row.key,
                    case_id=row.case_id,
                    kind=row.kind,
                    subject=message.subject[:200],
                    body=message.body,
                    created_at=row.created_at,
                )
            )
            done.append(row.pk)
        # The unique key turns any repeat into a no-op, whatever led to it.
        InboxItem.objects.bulk_create(items, ignore_conflicts=True)
        Notification.objects.filter(pk__in=done).update(
            status=Status.SENT, sent_at=now, attempts=F("attempts") + 1, lease_until=None
        )
        for row, error in broken:
            row.attempts += 1
            Notification.objects.filter(pk=row.pk).update(
                status=Status.SENDING, attempts=row.attempts
            )
            _fail(row, error, now)
    return len(done)


def _claim_external(ids: list[int], now: datetime) -> list[Notification]:
    """Claim the external rows due now: status ``sending``, attempts + 1, a lease."""
    lease_until = now + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids)
            .exclude(channel=Channel.INAPP)
            .filter(_claimable(now))
            .select_related("recipient__notification_preference")
        )
        claimed = []
        for row in rows:
            quiet = (
                _quiet_until(preference_of(row.recipient), now)
                if row.channel == Channel.SMS
                else None
            )
            if quiet:
                # SMS waits for the end of the quiet hours; it costs no attempt.
                Notification.objects.filter(pk=row.pk).update(
                    status=Status.PENDING, next_attempt_at=quiet, relay_after=quiet
                )
                continue
            claimed.append(row)
        if claimed:
            Notification.objects.filter(pk__in=[r.pk for r in claimed]).update(
                status=Status.SENDING,
                attempts=F("attempts") + 1,
                lease_until=lease_until,
                relay_after=lease_until,
            )
    for row in claimed:
        row.attempts += 1
        row.status = Status.SENDING
    return claimed


# External sends are marked "sent" in groups of this many: one UPDATE per group instead of
# one per message. A crash inside a group repeats at most that group's sends once the
# lease ends, and the receivers drop the repeats by the key each message carries.
MARK_SENT_EVERY = 100


def _mark_sent(pks: list[int]) -> None:
    if pks:
        Notification.objects.filter(pk__in=pks, status=Status.SENDING).update(
            status=Status.SENT, sent_at=timezone.now(), lease_until=None, last_error=""
        )


def _deliver_external(ids: list[int], now: datetime) -> int:
    rows = _claim_external(ids, now)
    tasks = _tasks_for(rows)
    sent = 0
    done: list[int] = []
    for row in rows:
        try:
            message = _render(row, tasks)
            get_sender(row.channel)(row, row.recipient, message)
        except Exception as error:
            if not isinstance(error, NoAddress | PermanentError):
                log.debug("transient failure", exc_info=True)
            _fail(row, error, timezone.now())
            continue
        done.append(row.pk)
        sent += 1
        if len(done) >= MARK_SENT_EVERY:
            _mark_sent(done)
            done = []
    _mark_sent(done)
    return sent


def deliver_many(ids) -> int:
    """Deliver the given rows that are due; rows already done are left alone (idempotent).

    A message may carry a whole sweep batch: the rows are delivered in chunks
    of ``NOTIFICATIONS_DELIVERY_CHUNK``, each in-app chunk one transaction
    (inbox items + "sent" marks), each external chunk one claim.
    """
    ids = sorted({int(i) for i in ids})
    chunk = max(getattr(settings, "NOTIFICATIONS_DELIVERY_CHUNK", 500), 1)
    sent = 0
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        now = timezone.now()
        # Each side selects only its own channel's rows: no lookup of channels first.
        sent += _deliver_inapp(part, now)
        sent += _deliver_external(part, now)
    return sent


# --- the inbox ----------------------------------------------------------------------


def mark_read(*, user, item_ids) -> int:
    """Mark some of the user's own inbox items read; others' items are never touched."""
    return InboxItem.objects.filter(user=user, pk__in=list(item_ids), read_at__isnull=True).update(
        read_at=timezone.now()
    )


def mark_all_read(*, user) -> int:
    """Mark every unread item of the user's inbox read."""
    return InboxItem.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def set_preferences(*, user, **values) -> Preference:
    """Save the person's channel preferences (and language, quiet hours)."""
    from casework.errors import ValidationFailed

    allowed = {"inapp", "email", "sms", "webhook", "language", "quiet_start", "quiet_end"}
    unknown = set(values) - allowed
    if unknown:
        raise ValidationFailed(field_errors={name: ["unknown"] for name in unknown})
    if values.get("language", Preference.Language.ZH_HANS) not in Preference.Language.values:
        raise ValidationFailed(field_errors={"language": ["unknown"]})
    if (values.get("quiet_start") is None) != (values.get("quiet_end") is None) and (
        "quiet_start" in values or "quiet_end" in values
    ):
        from django.utils.translation import gettext as _

        raise ValidationFailed(
            field_errors={"quiet_end": [_("Give both ends of the quiet hours, or neither.")]}
        )
    pref, _created = Preference.objects.update_or_create(user=user, defaults=values)
    return pref
