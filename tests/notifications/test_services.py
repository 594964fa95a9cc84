"""The outbox, delivery, retries and the inbox, in-process (the embedded mode)."""

from datetime import time, timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from casework.events import EventKind
from casework.services import cases, coordination, routing
from notifications import services
from notifications.channels import TransientError
from notifications.models import InboxItem, Notification, OutboxEvent, Preference
from notifications.recipients import RECIPIENTS

Status = Notification.Status
pytestmark = pytest.mark.django_db


def submit(tree, **kw):
    return cases.case_submit(
        youth=tree.youth,
        category=tree.category(kw.pop("category", "study")),
        region_code="440105",
        title="学费问题",
        description="个人描述 13800000000",
        **kw,
    )


def recipients_of(kind):
    services.fan_out_pending()  # what the delivery worker does after commit
    return {
        (username, audience)
        for username, audience in Notification.objects.filter(kind=kind).values_list(
            "recipient__username", "audience"
        )
    }


def test_outbox_rows_are_written_in_the_same_transaction_as_the_change(tree):
    # when a submission's transaction rolls back after its outbox row was written
    with pytest.raises(RuntimeError), transaction.atomic():
        case = submit(tree)
        # one outbox row for the event, whoever hears of it (the worker fans it out)
        [row] = OutboxEvent.objects.all()
        assert (row.case_id, row.kind, row.fanned_out_at) == (case.pk, "submitted", None)
        assert Notification.objects.count() == 0
        raise RuntimeError("the request failed after the change")
    # then no notification survives it
    assert OutboxEvent.objects.count() == 0
    assert services.fan_out_pending() == []
    assert Notification.objects.count() == 0


def test_fan_out_writes_one_row_per_recipient_and_channel_once(tree):
    # given a submission's outbox event (youth and handler, in-app)
    case = submit(tree)
    [event] = OutboxEvent.objects.all()
    # when the worker fans it out
    ids = services.fan_out([event.pk])
    # then there is one delivery row per recipient and channel, and the event is done
    assert set(
        Notification.objects.filter(pk__in=ids).values_list("recipient_id", "channel", "event_id")
    ) == {
        (tree.youth.pk, "inapp", event.event_id),
        (tree.handler.pk, "inapp", event.event_id),
    }
    event.refresh_from_db()
    assert event.fanned_out_at is not None
    # and a repeat (a redelivered message) adds nothing, even when the event is pending again
    assert services.fan_out([event.pk]) == []
    OutboxEvent.objects.update(fanned_out_at=None)
    assert services.fan_out([event.pk]) == []
    assert Notification.objects.filter(case_id=case.pk).count() == 2


def test_rows_carry_a_unique_key_and_no_personal_data(tree):
    tree.youth.email = "chen@example.org"
    tree.youth.phone = "13800000000"
    tree.youth.save()
    Preference.objects.create(user=tree.youth, email=True, sms=True)
    case = submit(tree)
    facts = list(OutboxEvent.objects.values_list("facts", flat=True))
    services.fan_out_pending()
    rows = list(Notification.objects.filter(case_id=case.pk))
    assert {r.channel for r in rows if r.recipient_id == tree.youth.pk} == {
        "inapp",
        "email",
        "sms",
    }
    assert len({r.key for r in rows}) == len(rows)
    stored = repr([(r.context, r.last_error) for r in rows]) + repr(facts)
    assert "13800000000" not in stored and "example.org" not in stored
    assert all(r.status == Status.PENDING for r in rows)


def test_who_hears_what(tree):
    # submitted: the youth (receipt) and the handlers of the holding org
    case = submit(tree)
    assert recipients_of("submitted") == {("chenxiaoyu", "youth"), ("liu", "handler")}
    cases.case_accept(case=case, actor=tree.handler)
    assert recipients_of("accepted") == {("chenxiaoyu", "youth")}
    # escalated: the youth, the new holder's handlers, supervisors up the tree
    routing.case_escalate(case=case, actor=tree.handler, reason="manual")
    assert recipients_of("escalated") == {
        ("chenxiaoyu", "youth"),
        ("city_handler", "handler"),
        ("zhou", "supervisor"),
        ("inspector", "supervisor"),
    }


def test_partner_hears_only_of_its_task(tree, eager, django_capture_on_commit_callbacks):
    case = submit(tree)
    cases.case_accept(case=case, actor=tree.handler)
    cases.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    assert recipients_of("verification_scheduled") == {
        ("chenxiaoyu", "youth"),
        ("huang", "verifier"),
    }
    cases.case_record_verification(case=case, actor=tree.verifier, confirmed=True, findings="属实")
    with django_capture_on_commit_callbacks(execute=True):
        coordination.case_refer(
            case=case,
            actor=tree.handler,
            partner=tree.partner,
            instructions="请协调学校退还补课费",
            due_at=timezone.now() + timedelta(days=3),
        )
    row = Notification.objects.get(kind="referred")
    assert (row.recipient_id, row.audience) == (tree.partner_staff.pk, "partner")
    assert set(row.context) == {"ref", "category", "task"}
    item = InboxItem.objects.get(user=tree.partner_staff)
    # the instructions may name the youth: they are read on the platform, not in messages
    assert "请协调学校退还补课费" not in item.body and case.reference in item.subject
    assert "登录平台查看" in item.body
    assert "13800000000" not in item.body and "学费问题" not in item.body


def test_recipient_lookup_is_a_fixed_number_of_queries(
    tree, django_assert_num_queries, django_assert_max_num_queries
):
    # given an escalated case, whose event reaches the youth, handlers and supervisors
    case = submit(tree)
    routing.case_escalate(case=case, actor=tree.handler, reason="manual")
    event = case.events.get(kind="escalated")
    OutboxEvent.objects.all().delete()
    Notification.objects.all().delete()
    # then the change's transaction writes one outbox row: one query, no lookup
    with django_assert_num_queries(1):
        [outbox_id] = services.notify_event(case, event)
    # and the worker's fan-out costs lock + orgs + memberships + people + insert + mark
    # (+ categories once, + the savepoint around it here)
    with django_assert_max_num_queries(9):
        rows = services.fan_out([outbox_id])
    assert len(rows) == 4


@pytest.mark.postgres
def test_outbox_rows_written_in_sql_for_a_sweep_hold_the_same_facts(tree):
    # given an escalation, whose outbox row was written from the case and event in Python
    case = submit(tree)
    cases.case_accept(case=case, actor=tree.handler)
    routing.case_escalate(case=case, actor=tree.handler, reason="manual")
    event = case.events.get(kind="escalated")
    [written] = OutboxEvent.objects.filter(event=event)
    # when the sweep's path writes one for the same event from the database rows
    [again] = services.write_outbox_for_events([event.pk])
    # then both hold the same facts
    assert OutboxEvent.objects.get(pk=again).facts == written.facts
    assert written.facts["payload"] == {"reason": "manual"}
    assert written.facts["due"] and written.facts["org"] == tree.city.pk


@pytest.mark.postgres
def test_outbox_facts_in_sql_keep_only_the_payload_keys_the_fan_out_reads(tree):
    # given a referral, whose payload holds the task and partner and two keys nobody reads
    case = submit(tree)
    cases.case_accept(case=case, actor=tree.handler)
    cases.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    cases.case_record_verification(case=case, actor=tree.verifier, confirmed=True, findings="属实")
    task = coordination.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请协调学校"
    )
    event = case.events.get(kind="referred")
    assert set(event.payload) == {"task", "partner", "required", "due_at"}
    [written] = OutboxEvent.objects.filter(event=event)
    # when the sweep's path writes the outbox row from the database rows
    [again] = services.write_outbox_for_events([event.pk])
    # then it keeps the same two keys, with the same values, as the Python path
    assert OutboxEvent.objects.get(pk=again).facts == written.facts
    assert written.facts["payload"] == {"task": task.pk, "partner": tree.partner.pk}


def test_bulk_notifications_for_a_sweep(tree, django_assert_max_num_queries):
    created = [submit(tree) for _ in range(5)]
    OutboxEvent.objects.all().delete()
    pairs = [(c, c.events.get(seq=1)) for c in created]
    with django_assert_max_num_queries(1):
        outbox_ids = services.notify_events_bulk(pairs)
    assert len(outbox_ids) == 5  # one row per event, one statement
    with django_assert_max_num_queries(9):
        rows = services.fan_out(outbox_ids)
    assert len(rows) == 10  # the same query count as for one event
    assert Notification.objects.count() == 10


def test_embedded_mode_delivers_after_commit(tree, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        case = submit(tree)
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
    youth_item = InboxItem.objects.get(user=tree.youth)
    assert case.reference in youth_item.subject
    assert youth_item.body.startswith("您的求助")


def test_in_app_delivery_is_exactly_once(tree):
    submit(tree)
    services.fan_out_pending()
    ids = list(Notification.objects.values_list("pk", flat=True))
    assert services.deliver_many(ids) == 2
    assert services.deliver_many(ids) == 0
    Notification.objects.update(status=Status.PENDING)  # even if a row came back somehow
    services.deliver_many(ids)
    assert InboxItem.objects.count() == 2


def test_english_speakers_get_english(tree):
    Preference.objects.create(user=tree.youth, language="en")
    submit(tree)
    services.deliver_many(services.fan_out_pending())
    assert InboxItem.objects.get(user=tree.youth).subject.startswith("We received your request")


def test_the_relay_sends_rows_left_pending_after_the_grace_period(
    tree, eager, django_capture_on_commit_callbacks
):
    # given an outbox event committed but never published (the process died after commit)
    submit(tree)
    # when the relay runs before the grace period, nothing happens
    assert services.relay_pending() == 0
    # and after it, the event is fanned out and its rows delivered
    later = timezone.now() + timedelta(seconds=31)
    with (
        mock.patch("django.utils.timezone.now", return_value=later),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.relay_pending() == 1
    assert InboxItem.objects.count() == 2
    # given delivery rows left pending too (their message was lost)
    submit(tree)
    services.fan_out_pending()
    later = timezone.now() + timedelta(seconds=31)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert services.relay_pending() == 2
    assert InboxItem.objects.count() == 4


def test_failures_back_off_then_dead_letter_then_admin_retry(tree, settings, eager):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    tree.youth.email = "chen@example.org"
    tree.youth.save()
    submit(tree)
    services.fan_out_pending()
    row = Notification.objects.get(channel="email")
    with mock.patch(
        "notifications.channels.email.send", side_effect=TransientError("mail server: down")
    ):
        services.deliver_many([row.pk])
        row.refresh_from_db()
        assert (row.status, row.attempts) == (Status.FAILED, 1)
        first_wait = row.next_attempt_at - timezone.now()
        assert timedelta(seconds=25) < first_wait <= timedelta(seconds=37)
        # a retry before the backoff is over does nothing
        services.deliver_many([row.pk])
        row.refresh_from_db()
        assert row.attempts == 1
        for _ in range(2):
            with mock.patch("django.utils.timezone.now", return_value=row.next_attempt_at):
                services.deliver_many([row.pk])
            row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.DEAD, 3, "mail server: down")
    # when an admin retries, it is sent
    assert services.retry_notifications([row.pk]) == 1
    services.deliver_many([row.pk])
    row.refresh_from_db()
    assert row.status == Status.SENT


def test_a_person_without_an_address_is_skipped_not_retried(tree, settings):
    Preference.objects.create(user=tree.youth, sms=True)
    tree.youth.phone = "13800000000"
    tree.youth.save()
    submit(tree)
    services.fan_out_pending()
    tree.youth.phone = ""
    tree.youth.save()
    row = Notification.objects.get(channel="sms")
    services.deliver_many([row.pk])
    row.refresh_from_db()
    assert row.status == Status.SKIPPED


def test_sms_waits_for_the_end_of_quiet_hours(tree, settings):
    now = timezone.localtime()
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    Preference.objects.create(user=tree.youth, sms=True, quiet_start=start, quiet_end=end)
    tree.youth.phone = "13800000000"
    tree.youth.save()
    submit(tree)
    services.fan_out_pending()
    row = Notification.objects.get(channel="sms")
    services.deliver_many([row.pk])
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 0)
    assert row.next_attempt_at > timezone.now() + timedelta(minutes=55)


def test_quiet_hours_across_midnight():
    pref = Preference(quiet_start=time(22, 0), quiet_end=time(8, 0))
    tz = timezone.get_current_timezone()
    late = timezone.make_aware(timezone.datetime(2026, 3, 2, 23, 30), tz)
    noon = timezone.make_aware(timezone.datetime(2026, 3, 2, 12, 0), tz)
    assert services._quiet_until(pref, late) == timezone.make_aware(
        timezone.datetime(2026, 3, 3, 8, 0), tz
    )
    assert services._quiet_until(pref, noon) is None


def test_inbox_unread_mark_read_and_mark_all_read(tree):
    submit(tree)
    submit(tree)
    services.deliver_many(services.fan_out_pending())
    from notifications.selectors import unread_count

    assert unread_count(tree.youth) == 2
    first = InboxItem.objects.filter(user=tree.youth).first()
    other = InboxItem.objects.filter(user=tree.handler).first()
    assert services.mark_read(user=tree.youth, item_ids=[first.pk, other.pk]) == 1
    assert unread_count(tree.youth) == 1 and unread_count(tree.handler) == 2
    assert services.mark_all_read(user=tree.youth) == 1
    assert unread_count(tree.youth) == 0


def test_every_event_of_the_issue_has_recipients_and_templates():
    from django.template.loader import get_template

    issue_events = [
        "submitted",
        "accepted",
        "verification_scheduled",
        "info_requested",
        "resolved",
        "feedback_given",
        "escalated",
        "sla_reminder",
        "sla_breach",
        "disputed",
        "referred",
        "complaint",
    ]
    for kind in issue_events:
        assert RECIPIENTS[kind], kind
    for kind in RECIPIENTS:
        for language in ("zh-hans", "en"):
            get_template(f"notifications/messages/{language}/{kind}.txt")
    assert {k.value for k in EventKind} - set(RECIPIENTS) <= {
        "routed",
        "assigned",
        "auto_closed",
        "comment",
        "info_provided_again",
        "evidence_added",  # a file attached by staff tells nobody (casework.services.evidence)
        "rating_edited",  # the handlers heard of the rating; an edit within the window is quiet
        "reviewed",  # the supervisor who decided is the audience (casework.services.ratings)
        # intake (casework.services.intake): the claim code goes out as its own SMS row;
        # a claim and a visit rating concern only the youth who made them
        "claim_code_sent",
        "claimed",
        "visit_rated",
    } | {"sla_reminder", "sla_breach", "complaint"}


def test_run_background_once_delivers_what_the_web_process_left(
    tree, eager, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    # given an outbox event committed but never published, past its grace period
    submit(tree)
    OutboxEvent.objects.update(relay_after=timezone.now() - timedelta(seconds=1))
    # when the background loop runs once (its fan-out commits, then publishes)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_background", "--once")
    # then they are delivered
    assert InboxItem.objects.count() == 2


def test_a_sweep_sized_message_is_delivered_in_chunks_with_a_fixed_number_of_queries(
    tree, settings, django_assert_max_num_queries
):
    # given 30 events whose rows go to the handler by e-mail and in-app (60 rows)
    settings.NOTIFICATIONS_DELIVERY_CHUNK = 25
    tree.handler.email = "liu@example.org"
    tree.handler.save()
    created = [submit(tree) for _ in range(30)]
    services.fan_out_pending()
    Notification.objects.exclude(recipient=tree.handler).delete()
    ids = list(Notification.objects.values_list("pk", flat=True))
    assert len(ids) == 2 * len(created)

    # when one message carries all of them: queries per chunk, not per row
    # (3 chunks x (in-app: lock, insert, update; e-mail: lock, claim, mark) + savepoints);
    # one "sent" UPDATE per e-mail would make it 60 and more
    with django_assert_max_num_queries(32):
        assert services.deliver_many(ids) == len(ids)

    # then every row is sent once: one inbox item each, and a second run does nothing
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
    assert InboxItem.objects.filter(user=tree.handler).count() == len(created)
    assert services.deliver_many(ids) == 0
