"""What every case service does: lock, re-check, change, record, sync, save."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import can_proceed

from ..errors import InvalidTransition, NotPermitted
from ..events import build_event
from ..locks import save_case, update_statement
from ..models import Case, CaseEvent, CaseMessage, User
from ..prepared import Statement, column_value_getter, instance_maker
from ..states import CaseState

# The states in which a station visit stays arranged (casework.services.stations).
VISIT_STATES = (CaseState.VERIFYING, CaseState.AWAITING_YOUTH)

# Why a transition whose source state fits may still be refused (its FSM condition).
CONDITION_MESSAGES = {
    "appeal": _("A rejection can be appealed once, within the appeal window."),
    "resolve": _("Every required coordination task must be done or waived first."),
    "dispute": _(
        "A closed case can be disputed only after your own low or “not solved” rating, "
        "within the rating window."
    ),
}


def check_transition(case: Case, action: str, actor: User | None) -> Callable:
    """Return the bound transition method, or raise the domain error that explains why not."""
    method = getattr(case, action)
    if not can_proceed(method, check_conditions=False):
        raise InvalidTransition(
            _("“%(action)s” is not possible while the case is %(state)s.")
            % {"action": action.replace("_", " "), "state": case.get_state_display()}
        )
    # Who comes before when: a person without the role learns nothing about the
    # conditions (an appeal window, open coordination tasks) of someone else's case.
    meta = method._django_fsm
    if not meta.has_transition_perm(case, meta.field.get_state(case), actor):
        raise NotPermitted()
    if not can_proceed(method):
        raise InvalidTransition(CONDITION_MESSAGES.get(action))
    return method


def finish_change(case: Case, *, kind: str, actor: User | None, from_state: str = "", **kw):
    """Record the change on the timeline, bump the version, sync the human tasks, save.

    Called inside the transaction that holds the case lock. On PostgreSQL, for a
    case from ``lock_case``, the writes go to the database in one statement
    (``_write_change``); elsewhere one by one.
    """
    case.version += 1
    event = build_event(
        case, kind=kind, actor=actor, from_state=from_state, to_state=case.state, **kw
    )
    if not _write_change(case, event, actor=actor, from_state=from_state):
        _write_step_by_step(case, event, actor=actor, from_state=from_state)
    if case.station_id and _left_verification(case, from_state):
        # A station case left verification: its visit was made or is cancelled.
        from .stations import settle_appointment

        settle_appointment(case, event)
    return event


def add_message(case: Case, author: User | None, kind: str, body: str, **kw) -> CaseMessage:
    """A message on the case, for the timeline event of the change to name.

    When ``lock_case(…, message=True)`` reserved its id, the message is written
    with the event by ``finish_change``, which the service must then call in
    the same transaction; otherwise it is saved now.
    """
    reserved = case.__dict__.pop("_message_id", None)
    if reserved is None:
        return CaseMessage.objects.create(case=case, author=author, kind=kind, body=body, **kw)
    message = instance_maker(CaseMessage)(
        {"pk": reserved, "kind": kind, "body": body, **kw}, {"case": case, "author": author}
    )
    case._pending_message = message
    return message


def _write_step_by_step(case: Case, event: CaseEvent, *, actor, from_state: str) -> None:
    from notifications.services import notify_event
    from workflows.engine import sync_case_tasks

    message = case.__dict__.pop("_pending_message", None)
    if message is not None:
        message.save(force_insert=True)
    event.save(force_insert=True)
    save_case(case)
    sync_case_tasks(case, actor=actor, from_state=from_state)
    notify_event(case, event)


# One statement text per shape of change (which columns, which flow move, a message or
# not, an outbox row or not), each prepared once per connection (casework.prepared).
_STATEMENTS: dict[str, Statement] = {}


def _write_change(case: Case, event: CaseEvent, *, actor, from_state: str) -> bool:
    """The writes of one change in one statement (PostgreSQL): the message (if any), the
    event, the case's changed columns, the flow's move and the outbox row.

    The same rows as ``_write_step_by_step``. False when this change cannot go this
    way: another database, a case not read by ``lock_case``, or a listener on the
    models' save signals (a raw statement would not send them).
    """
    conn = transaction.get_connection()  # the wrapper itself: no proxy lookup per use
    if (
        conn.vendor != "postgresql"
        or getattr(case, "_saved_values", None) is None
        or _save_listeners()
    ):
        return False
    from notifications.services import outbox_for_change, publish_change
    from workflows.engine import after_known_step, known_step

    ctes: list[str] = []
    params: list = []
    message = case.__dict__.pop("_pending_message", None)
    if message is not None:
        sql, values = _insert(message, conn, returning="id")
        ctes.append(f"msg AS ({sql})")
        params += values
    sql, values = _insert(event, conn, returning="id, case_id")
    ctes.append(f"ev AS ({sql})")
    params += values
    sql, values = update_statement(case, conn)  # the case remembers what it wrote
    ctes.append(f"cs AS ({sql})")
    params += values
    step = known_step(case, from_state, actor)
    if step is not None and step.ctes:
        ctes.append(step.ctes)
        params += step.params
    outbox = outbox_for_change(case, event, "ev")
    if outbox is not None:
        ctes.append(f"ob AS ({outbox[0]})")
        params += outbox[1]
    ended = "(SELECT count(*) FROM ended)" if step is not None and step.ends else "NULL"
    sent = "(SELECT id FROM ob)" if outbox is not None else "NULL"
    text = f"WITH {', '.join(ctes)} SELECT (SELECT id FROM ev), {ended}, {sent}"
    statement = _STATEMENTS.get(text)
    if statement is None:
        statement = _STATEMENTS[text] = Statement(text)
    with conn.cursor() as cursor:
        statement.run(cursor, params)
        event_id, ended_count, outbox_id = cursor.fetchone()
    for written in (event, message):
        if written is not None:
            written._state.adding = False
            written._state.db = conn.alias
    event.pk = event_id
    if step is None:
        from workflows.engine import sync_case_tasks

        sync_case_tasks(case, actor=actor)
    else:
        after_known_step(case, step, ended_count, actor)
    if outbox_id is not None:
        conn.on_commit(partial(publish_change, outbox_id))
    return True


def _save_listeners() -> bool:
    return any(
        signal.has_listeners(model)
        for signal in (pre_save, post_save)
        for model in (Case, CaseEvent, CaseMessage)
    )


_INSERTS: dict[tuple, tuple] = {}


def _insert(obj, conn, *, returning: str) -> tuple[str, list]:
    """``INSERT`` of a new model instance's row as ``Model.save`` would write it (each
    field's ``pre_save`` and database value); its primary key too when it has one."""
    key = (type(obj), obj.pk is None, returning)
    found = _INSERTS.get(key)
    if found is None:
        meta = obj._meta
        fields = [f for f in meta.concrete_fields if not (f.primary_key and obj.pk is None)]
        columns = ", ".join(f'"{f.column}"' for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = (
            f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({placeholders}) '
            f"RETURNING {returning}"
        )
        found = _INSERTS[key] = (sql, [column_value_getter(f) for f in fields])
    sql, getters = found
    return sql, [get(obj, True, conn) for get in getters]


def _left_verification(case: Case, from_state: str) -> bool:
    """The change took the case out of verification, where a station visit may be arranged
    (also from a pause that would have returned to verification)."""
    if case.state in VISIT_STATES:
        return False
    return from_state == CaseState.VERIFYING or (
        from_state == CaseState.AWAITING_YOUTH and case.resume_state == CaseState.VERIFYING
    )


def apply_transition(
    case: Case,
    action: str,
    *,
    actor: User | None,
    kind: str,
    payload: dict | None = None,
    args: tuple = (),
    then: Callable[[Case], None] | None = None,
):
    """Run the FSM transition ``action`` on a locked case and record it.

    ``then(case)`` makes the service's own further changes to the case after the
    transition, so that they are saved with it in the same UPDATE.
    """
    from workflows import sla

    # The FSM conditions asked by the check are asked again by django-fsm before the
    # state moves; their answers hold for this call only (permissions.coordination_complete).
    case._conditions = {}
    try:
        method = check_transition(case, action, actor)
        from_state = case.state
        method(*args)
    finally:
        case.__dict__.pop("_conditions", None)
    now = timezone.now()
    sla.apply_transition(case, from_state, now)
    if then is not None:
        then(case)
    return finish_change(case, kind=kind, actor=actor, from_state=from_state, payload=payload)
