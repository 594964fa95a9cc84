"""The SLA sweep (casework.services.sla_sweep): breaches, reminders, rating windows, in bulk.

Times are Asia/Shanghai on the 2025 calendar; the default policy gives 9
business hours (one 09:00–18:00 working day) to accept, reminding at 75%.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from casework import services
from casework.events import EventKind, verify_case
from casework.models import Case, CaseEvent
from casework.states import CaseState
from notifications.models import Notification, OutboxEvent
from notifications.services import fan_out_pending
from tests.casework.steps import advance, submit
from workflows import sla
from workflows.models import OPEN_TASK_STATUSES, CaseTask
from workflows.selectors import inbox_for

CST = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 10, 20, 10, tzinfo=CST)


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture(autouse=True)
def calendar_2025(db):
    sla.load_calendar([2025])
    yield
    sla.invalidate()


def sweep(at: datetime, **kw):
    with freeze_time(at):
        return services.sla_sweep(**kw)


def submitted_on_monday(tree, **kw) -> Case:
    with freeze_time(MONDAY_10):
        return submit(tree, **kw)


def events_of(case, kind) -> list[CaseEvent]:
    return list(CaseEvent.objects.filter(case=case, kind=kind).order_by("seq"))


def open_task(case) -> CaseTask:
    return CaseTask.objects.get(case=case, status__in=OPEN_TASK_STATUSES)


def test_submission_sets_the_stage_deadline_and_reminder_in_business_time(tree):
    case = submitted_on_monday(tree)

    assert case.stage_due_at == cst(2025, 10, 21, 10)
    assert case.remind_at == cst(2025, 10, 20, 16, 45)
    assert case.stage_reminded is False


def test_breach_escalates_one_level_and_moves_the_task_to_the_new_inbox(tree):
    # given a case at the district that nobody accepted within its working day
    case = submitted_on_monday(tree)
    assert [t.case_id for t in inbox_for(tree.handler)] == [case.pk]
    assert inbox_for(tree.city_handler) == []

    # when the sweep runs one minute after the deadline
    result = sweep(cst(2025, 10, 21, 10, 1))

    # then the case is at the city, with a fresh clock for the same stage
    assert result.escalated == 1
    case.refresh_from_db()
    assert case.org == tree.city
    assert case.state == CaseState.SUBMITTED
    assert case.escalation_count == 1
    assert case.assignee_id is None
    assert case.stage_started_at == cst(2025, 10, 21, 10, 1)
    assert case.stage_due_at == cst(2025, 10, 22, 10, 1)
    assert case.remind_at == cst(2025, 10, 21, 16, 46)
    # and the timeline says why
    [event] = events_of(case, EventKind.ESCALATED)
    assert event.payload["reason"] == "sla_breach"
    assert event.payload["from_org"] == tree.haizhu.pk
    assert event.payload["to_org"] == tree.city.pk
    assert event.org_id == tree.city.pk
    assert verify_case(case) is None
    # and the task left the district's inbox for the city's
    assert open_task(case).org_id == tree.city.pk
    assert [t.case_id for t in inbox_for(tree.city_handler)] == [case.pk]
    assert inbox_for(tree.handler) == []
    # and the city's handlers heard of it (once the delivery worker fanned the event out)
    fan_out_pending()
    assert Notification.objects.filter(
        event=event, recipient=tree.city_handler, kind="escalated"
    ).exists()


def test_nothing_happens_before_the_deadline_or_twice(tree):
    case = submitted_on_monday(tree)

    assert sweep(cst(2025, 10, 21, 9, 59)).escalated == 0
    assert sweep(cst(2025, 10, 21, 10, 0)).escalated == 1
    assert sweep(cst(2025, 10, 21, 10, 5)).escalated == 0

    case.refresh_from_db()
    assert case.escalation_count == 1
    assert len(events_of(case, EventKind.ESCALATED)) == 1


def test_breach_at_the_top_raises_one_critical_alert_for_the_supervisors(tree):
    # given a case that was escalated to the province and missed its deadline there too
    case = submitted_on_monday(tree)
    sweep(cst(2025, 10, 21, 10, 0))  # → city
    sweep(cst(2025, 10, 22, 10, 0))  # → province
    case.refresh_from_db()
    assert case.org == tree.province

    # when the province misses the deadline
    result = sweep(cst(2025, 10, 23, 10, 0))

    # then there is nowhere to go: a critical flag and one alert, not an escalation
    assert (result.escalated, result.critical) == (0, 1)
    case.refresh_from_db()
    assert case.org == tree.province
    assert case.sla_breached is True
    assert case.escalation_count == 2
    [alert] = events_of(case, EventKind.SLA_BREACH)
    assert alert.payload["clock"] == "accept"
    fan_out_pending()
    assert Notification.objects.filter(event=alert, recipient=tree.province_supervisor).exists()
    # and it is never raised again for the same breach
    assert sweep(cst(2025, 10, 24, 10, 0)).critical == 0
    assert len(events_of(case, EventKind.SLA_BREACH)) == 1
    # and the next stage starts a clean clock
    services.case_accept(case=case, actor=tree.province_handler)
    case.refresh_from_db()
    assert case.sla_breached is False
    assert case.stage_due_at is not None


def test_reminder_is_sent_once_per_stage_and_level(tree):
    case = submitted_on_monday(tree)

    assert sweep(cst(2025, 10, 20, 16, 44)).reminded == 0
    assert sweep(cst(2025, 10, 20, 16, 45)).reminded == 1
    assert sweep(cst(2025, 10, 20, 17, 30)).reminded == 0

    case.refresh_from_db()
    assert case.remind_at is None and case.stage_reminded is True
    [reminder] = events_of(case, EventKind.SLA_REMINDER)
    assert reminder.payload == {"clock": "accept", "due": case.stage_due_at.isoformat()}
    fan_out_pending()
    assert Notification.objects.filter(event=reminder, recipient=tree.handler).exists()

    # a new level is a new reminder
    sweep(cst(2025, 10, 21, 10, 0))
    assert sweep(cst(2025, 10, 21, 16, 45)).reminded == 1
    assert len(events_of(case, EventKind.SLA_REMINDER)) == 2
    # and a new stage too
    with freeze_time(cst(2025, 10, 21, 17)):
        services.case_accept(case=case, actor=tree.city_handler)
    case.refresh_from_db()
    assert case.stage_reminded is False and case.remind_at is not None


def test_reminder_is_not_sent_for_a_case_that_breached_in_the_same_sweep(tree):
    case = submitted_on_monday(tree)

    result = sweep(cst(2025, 10, 21, 10, 0))

    assert (result.escalated, result.reminded) == (1, 0)
    assert events_of(case, EventKind.SLA_REMINDER) == []


def test_a_paused_case_is_not_swept(tree):
    with freeze_time(MONDAY_10):
        case = advance(tree, submit(tree), CaseState.ACCEPTED)
        services.case_request_info(case=case, actor=tree.handler, question="请补充学校名称")

    result = sweep(cst(2025, 11, 20, 10))

    assert (result.escalated, result.reminded) == (0, 0)
    case.refresh_from_db()
    assert case.state == CaseState.AWAITING_YOUTH
    assert case.org == tree.haizhu


def test_rating_window_end_closes_the_case(tree):
    with freeze_time(MONDAY_10):
        case = advance(tree, submit(tree), CaseState.FEEDBACK_GIVEN)
    case.refresh_from_db()
    # the rating window counts calendar days, holidays included
    assert case.stage_due_at == MONDAY_10 + timedelta(days=7)

    assert sweep(MONDAY_10 + timedelta(days=6)).auto_closed == 0
    result = sweep(MONDAY_10 + timedelta(days=7, minutes=1))

    assert (result.auto_closed, result.escalated) == (1, 0)
    case.refresh_from_db()
    assert case.state == CaseState.CLOSED
    assert len(events_of(case, EventKind.AUTO_CLOSED)) == 1
    assert not CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES).exists()


def test_every_stage_clock_escalates(tree):
    # given one case in each state whose stage clock escalates
    with freeze_time(MONDAY_10):
        cases = {
            state: advance(tree, submit(tree), state)
            for state in (
                CaseState.SUBMITTED,
                CaseState.ACCEPTED,
                CaseState.VERIFYING,
                CaseState.COORDINATING,
                CaseState.RESOLVED,
            )
        }

    # when a month has passed
    result = sweep(cst(2025, 11, 20, 10), batch_size=2)

    # then each went up one level, in batches, and stayed in its state
    assert result.escalated == 5
    for state, case in cases.items():
        case.refresh_from_db()
        assert (case.state, case.org_id, case.escalation_count) == (state, tree.city.pk, 1)
        assert verify_case(case) is None
    # and every open task is held where the flow says: the verifying case stays with its
    # station, every other task follows its case
    for task in CaseTask.objects.filter(status__in=OPEN_TASK_STATUSES).select_related("case"):
        expected = task.case.station_id if task.case.state == "verifying" else task.case.org_id
        assert task.org_id == expected


def test_tasks_and_cases_agree_after_a_bulk_escalation(tree):
    cases = [submitted_on_monday(tree) for _ in range(12)]

    result = sweep(cst(2025, 10, 21, 10), batch_size=5)

    assert result.escalated == 12
    assert result.batches >= 3
    for case in cases:
        case.refresh_from_db()
        tasks = list(CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES))
        assert [t.org_id for t in tasks] == [case.org_id] == [tree.city.pk]


def test_query_count_does_not_grow_with_the_batch(tree):
    def counted_sweep() -> tuple[int, int]:
        with freeze_time(cst(2025, 10, 21, 10)):
            sla.current_calendar()  # the per-process cache is warm in a running worker
            with CaptureQueriesContext(connection) as queries:
                escalated = services.sla_sweep().escalated
        return escalated, len(queries)

    for _ in range(2):
        submitted_on_monday(tree)
    few, few_queries = counted_sweep()
    for _ in range(10):
        submitted_on_monday(tree)
    many, many_queries = counted_sweep()

    assert (few, many) == (2, 10)
    assert many_queries == few_queries


def test_max_batches_bounds_one_run(tree):
    for _ in range(5):
        submitted_on_monday(tree)

    first = sweep(cst(2025, 10, 21, 10), batch_size=2, max_batches=1)
    rest = sweep(cst(2025, 10, 21, 10), batch_size=2)

    assert (first.escalated, rest.escalated) == (2, 3)


def test_a_breach_batch_takes_the_oldest_deadlines_first(tree):
    # given two cases due at 10:00 and one submitted earlier, due at 09:30
    later = [submitted_on_monday(tree) for _ in range(2)]
    with freeze_time(cst(2025, 10, 20, 9, 30)):
        earliest = submit(tree)
    assert earliest.stage_due_at < later[0].stage_due_at == later[1].stage_due_at

    # when a bounded run takes one batch of two
    first = sweep(cst(2025, 10, 21, 10, 1), batch_size=2, max_batches=1)

    # then the earliest deadline went first, then one of the two that share a deadline
    assert first.escalated == 2
    earliest.refresh_from_db()
    assert earliest.escalation_count == 1
    assert sorted(Case.objects.get(pk=c.pk).escalation_count for c in later) == [0, 1]


@pytest.mark.postgres
def test_a_breach_batch_reads_the_deadline_index_in_order_without_a_sort(tree):
    # A sort (even an incremental one on a second key) reads every due case that shares
    # the oldest deadline in every batch; the index order lets the scan stop at the batch.
    from casework.services.sweep import _breach_lock

    submitted_on_monday(tree)
    sql, params = _breach_lock(cst(2025, 10, 21, 10, 1), 1000).query.sql_with_params()
    with connection.cursor() as cursor:
        # Only the index path, whatever the statistics of a tiny table say: the question
        # is whether that path needs a sort on top.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "case_sla_breach_idx" in plan
    assert "Sort" not in plan


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_sweeps_escalate_each_case_exactly_once(tree):
    # given 30 overdue cases
    cases = [submitted_on_monday(tree) for _ in range(30)]
    later = cst(2025, 10, 21, 10, 1)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(services.sla_sweep(now=later, batch_size=4))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when two sweeps run at once, each on its own connection
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then together they escalated every case, and no case twice
    assert errors == []
    assert sum(r.escalated for r in results) == len(cases)

    # and when two delivery workers fan the outbox out at once
    fanned: list[int] = []

    def fan():
        try:
            barrier.wait()
            fanned.extend(fan_out_pending())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not OutboxEvent.objects.filter(fanned_out_at__isnull=True).exists()
    expected_recipients = None
    for case in cases:
        case.refresh_from_db()
        assert case.escalation_count == 1
        assert case.org_id == tree.city.pk
        [event] = events_of(case, EventKind.ESCALATED)
        assert verify_case(case) is None
        assert OutboxEvent.objects.filter(event=event).count() == 1
        recipients = sorted(
            Notification.objects.filter(event=event).values_list("recipient_id", "channel")
        )
        assert Notification.objects.filter(case=case, kind="escalated").count() == len(recipients)
        expected_recipients = expected_recipients or recipients
        assert recipients == expected_recipients
        assert open_task(case).org_id == tree.city.pk
    assert expected_recipients  # one set of notifications per case, not none


def test_each_batch_writes_one_outbox_row_per_case_and_publishes_them_as_one_message(
    tree, django_capture_on_commit_callbacks
):
    # given seven overdue cases, swept in batches of three
    cases = [submitted_on_monday(tree) for _ in range(7)]
    OutboxEvent.objects.all().delete()
    Notification.objects.all().delete()

    # when the sweep runs with the publishing after each commit observed
    with (
        mock.patch("notifications.tasks.fan_out.apply_async") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = sweep(cst(2025, 10, 21, 10), batch_size=3)

    # then one message per batch carries all of that batch's outbox rows, one per case
    assert result.escalated == len(cases)
    published = [call.kwargs["args"][0] for call in publish.call_args_list]
    assert len(published) == 3
    ids = [pk for message in published for pk in message]
    assert sorted(ids) == sorted(
        OutboxEvent.objects.filter(kind="escalated").values_list("pk", flat=True)
    )
    assert sorted(OutboxEvent.objects.values_list("case_id", flat=True)) == sorted(
        c.pk for c in cases
    )
    # and the fan-out tells, for each escalated case: the youth, the new holder's
    # handlers, the supervisors above
    fan_out_pending()
    for case in cases:
        [event] = events_of(case, EventKind.ESCALATED)
        audiences = set(Notification.objects.filter(event=event).values_list("audience", flat=True))
        assert audiences >= {"youth", "handler"}


@pytest.mark.postgres
def test_pg_bulk_writes_store_every_value_as_given(tree):
    # given values that need quoting inside a PostgreSQL array literal
    from casework.pgarrays import array_literal

    texts = ['a "quoted" word', "back\\slash", "逗号, 和 {括号}", "", None, "NULL"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[]", [array_literal(texts), "{1,NULL,3}"])
        got_texts, got_ints = cursor.fetchone()
    assert got_texts == texts
    assert got_ints == [1, None, 3]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_breach_batches_on_threads_escalate_each_case_exactly_once(tree, settings):
    # given 25 overdue cases and a sweep that runs its breach batches on three threads
    cases = [submitted_on_monday(tree) for _ in range(25)]
    settings.SLA_SWEEP_WORKERS = 3

    # when it runs in small batches
    result = services.sla_sweep(now=cst(2025, 10, 21, 10, 1), batch_size=4)

    # then each case moved once, with one event, and its task followed it
    assert result.escalated == len(cases)
    for case in cases:
        case.refresh_from_db()
        assert case.escalation_count == 1
        assert len(events_of(case, EventKind.ESCALATED)) == 1
        assert verify_case(case) is None
        assert open_task(case).org_id == case.org_id == tree.city.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bounded_sweep_on_threads_runs_no_more_batches_than_its_budget(tree, settings):
    # given 25 overdue cases and breach batches on two connections
    cases = [submitted_on_monday(tree) for _ in range(25)]
    settings.SLA_SWEEP_WORKERS = 2
    later = cst(2025, 10, 21, 10, 1)

    # when a run may take three batches of four, and the next run takes the rest
    first = services.sla_sweep(now=later, batch_size=4, max_batches=3)
    rest = services.sla_sweep(now=later, batch_size=4)

    # then the first escalated exactly three batches' worth, and each case moved once
    assert (first.batches, first.escalated) == (3, 12)
    assert rest.escalated == len(cases) - 12
    for case in cases:
        case.refresh_from_db()
        assert case.escalation_count == 1
        assert verify_case(case) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(("overdue", "starts_with_threads"), [(9, True), (3, False)])
def test_breach_threads_start_with_the_first_batch_only_when_more_than_a_batch_is_due(
    tree, settings, overdue, starts_with_threads
):
    # given overdue cases, batches of four and breach batches on two connections
    cases = [submitted_on_monday(tree) for _ in range(overdue)]
    settings.SLA_SWEEP_WORKERS = 2
    from casework.services import sweep as sweep_module

    started = []
    real = sweep_module._breach_in_threads

    def recording(now, size, deadlines, result, workers, take):
        started.append(result.batches)
        return real(now, size, deadlines, result, workers, take)

    # when the sweep runs
    with mock.patch.object(sweep_module, "_breach_in_threads", recording):
        result = services.sla_sweep(now=cst(2025, 10, 21, 10, 1), batch_size=4)

    # then with more than one batch due both connections took batches from the first
    # one on; with less than a batch the calling connection ran alone
    assert started == ([0] if starts_with_threads else [])
    assert result.escalated == overdue
    for case in cases:
        case.refresh_from_db()
        assert case.escalation_count == 1
        assert len(events_of(case, EventKind.ESCALATED)) == 1
        assert open_task(case).org_id == case.org_id == tree.city.pk


@pytest.mark.postgres
def test_an_escalation_moves_the_open_tasks_in_place(tree):
    # given overdue cases; the task table leaves room on its pages (workflows 0006)
    cases = [submitted_on_monday(tree) for _ in range(3)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE oid = 'workflows_casetask'::regclass")
        assert "fillfactor=85" in cursor.fetchone()[0]

    # when the sweep escalates them
    result = sweep(cst(2025, 10, 21, 10, 1))

    # then every task moved with the case, and each move was a HOT update: no index
    # holds the holder, so no index got a new entry
    assert result.escalated == len(cases)
    for case in cases:
        case.refresh_from_db()
        assert open_task(case).org_id == case.org_id == tree.city.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'workflows_casetask'"
        )
        assert cursor.fetchone() == (len(cases), len(cases))


@pytest.mark.postgres
def test_a_sweep_with_nothing_due_is_one_query_and_no_transaction(tree):
    # given open cases whose deadlines are all ahead
    for _ in range(3):
        submitted_on_monday(tree)
    sla.current_calendar()

    # when the sweep runs before any reminder point
    with freeze_time(cst(2025, 10, 20, 11)), CaptureQueriesContext(connection) as queries:
        result = services.sla_sweep()

    # then one probe answered for breaches, reminders and rating windows at once
    assert (result.escalated, result.reminded, result.auto_closed) == (0, 0, 0)
    assert len(queries) == 1


def notified(event) -> set[tuple[int, str]]:
    """(recipient, audience) of an event's messages, once the worker fanned it out."""
    fan_out_pending()
    return set(Notification.objects.filter(event=event).values_list("recipient_id", "audience"))


def test_coordination_task_deadline_reminds_the_partner_then_tells_of_the_overdue_task_once(tree):
    from casework.services import coordination
    from tests.casework.steps import advance

    # given a case in coordination with a task for the partner body due in two days
    with freeze_time(MONDAY_10):
        case = advance(tree, submit(tree), CaseState.COORDINATING)
        task = coordination.case_refer(
            case=case,
            actor=tree.handler,
            partner=tree.partner,
            instructions="请协调学校退还补课费",
            due_at=MONDAY_10 + timedelta(days=2),
        )
    # the reminder point is the policy's share (0.75) of the time given
    assert task.remind_at == MONDAY_10 + timedelta(hours=36)

    # when the sweep passes the reminder point: the partner is reminded, once
    assert sweep(cst(2025, 10, 21, 21, 59)).task_reminded == 0
    assert sweep(cst(2025, 10, 21, 22, 0)).task_reminded == 1
    assert sweep(cst(2025, 10, 21, 23, 0)).task_reminded == 0
    [reminder] = events_of(case, EventKind.REFERRAL_REMINDER)
    assert reminder.payload["task"] == task.pk and reminder.actor_id is None
    assert notified(reminder) == {(tree.partner_staff.pk, "partner")}

    # when the task's deadline passes: the case's handlers and the partner hear, once
    result = sweep(cst(2025, 10, 22, 10, 1))
    assert (result.task_overdue, result.escalated) == (1, 0)
    assert sweep(cst(2025, 10, 23, 10, 0)).task_overdue == 0
    [overdue] = events_of(case, EventKind.REFERRAL_OVERDUE)
    assert datetime.fromisoformat(overdue.payload["missed"]) == task.due_at
    assert notified(overdue) == {(tree.handler.pk, "handler"), (tree.partner_staff.pk, "partner")}
    # and the timeline still verifies; the case itself did not move
    case.refresh_from_db()
    assert verify_case(case) is None
    assert case.org_id == tree.haizhu.pk


def test_a_finished_coordination_task_is_not_swept(tree):
    from casework.services import coordination
    from tests.casework.steps import advance

    with freeze_time(MONDAY_10):
        case = advance(tree, submit(tree), CaseState.COORDINATING)
        task = coordination.case_refer(
            case=case,
            actor=tree.handler,
            partner=tree.partner,
            instructions="请协调",
            due_at=MONDAY_10 + timedelta(days=2),
        )
        coordination.coordination_waive(task=task, actor=tree.handler, reason="不再需要")
    result = sweep(cst(2025, 10, 22, 10, 1))
    assert (result.task_reminded, result.task_overdue) == (0, 0)


def test_an_overdue_complaint_reminds_the_organisation_complained_about_once(tree):
    # given a complaint about Haizhu's handling, answer due in three days
    with freeze_time(MONDAY_10):
        case = submit(tree)
        complaint = services.complaint_submit(case=case, actor=tree.youth, body="一直没人理")
    assert complaint.due_at == MONDAY_10 + timedelta(days=3)

    # when the sweep passes the answer deadline (the case itself escalated meanwhile)
    assert sweep(cst(2025, 10, 23, 9, 59)).complaint_overdue == 0
    result = sweep(cst(2025, 10, 23, 10, 0))
    assert result.complaint_overdue == 1
    assert sweep(cst(2025, 10, 24, 10, 0)).complaint_overdue == 0

    # then Haizhu's handlers and the supervisors above it are reminded, once
    case.refresh_from_db()
    assert case.org_id != tree.haizhu.pk  # the case moved up; the complaint did not
    [overdue] = events_of(case, EventKind.COMPLAINT_OVERDUE)
    assert overdue.payload["complaint"] == complaint.pk
    told = notified(overdue)
    assert (tree.handler.pk, "handler") in told
    assert {
        (tree.city_supervisor.pk, "supervisor"),
        (tree.province_supervisor.pk, "supervisor"),
    } <= told
    assert verify_case(case) is None


def test_an_answered_complaint_is_not_swept(tree):
    with freeze_time(MONDAY_10):
        case = submit(tree)
        complaint = services.complaint_submit(case=case, actor=tree.youth, body="一直没人理")
        services.complaint_answer(complaint=complaint, actor=tree.city_supervisor, answer="已督办")
    assert sweep(cst(2025, 10, 24, 10, 0)).complaint_overdue == 0


def test_the_database_refuses_an_urgency_the_sweep_has_no_deadline_for(tree):
    """The sweep's deadline table covers Case.Urgency; the CHECK keeps every case in it."""
    from django.db import IntegrityError, transaction

    constraint = next(c for c in Case._meta.constraints if c.name == "case_urgency_known")
    assert sorted(dict(constraint.condition.children)["urgency__in"]) == sorted(Case.Urgency.values)
    case = submit(tree)
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.filter(pk=case.pk).update(urgency="whenever")
    assert Case.objects.get(pk=case.pk).urgency in Case.Urgency.values
