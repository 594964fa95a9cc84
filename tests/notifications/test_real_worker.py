"""Delivery through real Celery workers, a real broker and real crashes.

Each test runs a worker process (with beat, which runs the relay) against
the test database, publishes through a real broker (Redis, and RabbitMQ for
the end-to-end test), and checks what arrived: inbox rows in the database,
POSTs at a local HTTP receiver. Killing is SIGKILL to the worker's whole
process group. Marked ``postgres``: in CI these fail, never skip, when
PostgreSQL or the broker is missing.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import psycopg2
import pytest

from casework.services import cases
from notifications import services
from notifications.channels.webhook import verify
from notifications.models import InboxItem, Notification, OutboxEvent, Preference
from notifications.tasks import deliver, fan_out

from .realworld import ROOT, database_url_of_tests, wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SECRET = "test-webhook-secret"
Status = Notification.Status


def submit(tree):
    return cases.case_submit(
        youth=tree.youth,
        category=tree.category("study"),
        region_code="440105",
        title="补课费被拖欠退还",
        description="私人信息：电话 13800000000",
    )


def all_done():
    return not OutboxEvent.objects.filter(fanned_out_at__isnull=True).exists() and (
        not Notification.objects.filter(
            status__in=[Status.PENDING, Status.SENDING, Status.FAILED]
        ).exists()
    )


def webhook_env(receiver, **extra):
    return {
        "NOTIFICATIONS_WEBHOOK_URL": receiver.url,
        "NOTIFICATIONS_WEBHOOK_SECRET": SECRET,
        **extra,
    }


@pytest.fixture
def youth_on_webhook(tree, settings, receiver):
    """The youth hears in-app, by e-mail and through the messaging bridge (the webhook)."""
    settings.NOTIFICATIONS_WEBHOOK_URL = receiver.url
    settings.NOTIFICATIONS_WEBHOOK_SECRET = SECRET
    tree.youth.email = "chen@example.org"
    tree.youth.save(update_fields=["email"])
    Preference.objects.create(user=tree.youth, inapp=True, email=True, webhook=True)
    return tree


@pytest.mark.parametrize("broker_url", ["redis", "rabbitmq"], indirect=True)
def test_a_delivery_goes_end_to_end(youth_on_webhook, workers, receiver):
    # given a running worker
    tree = youth_on_webhook
    workers.new(env=webhook_env(receiver)).start()

    # when a youth submits a request (outbox rows commit with the case, then publish)
    case = submit(tree)

    # then every row is delivered: inbox items, a signed webhook POST, an e-mail
    wait_until(all_done, message="every notification delivered")
    rows = list(Notification.objects.filter(case_id=case.pk))
    assert {(r.recipient_id, r.channel) for r in rows} == {
        (tree.youth.pk, "inapp"),
        (tree.youth.pk, "email"),
        (tree.youth.pk, "webhook"),
        (tree.handler.pk, "inapp"),
    }
    assert {r.status for r in rows} == {Status.SENT}
    assert set(InboxItem.objects.values_list("user_id", flat=True)) == {
        tree.youth.pk,
        tree.handler.pk,
    }
    [post] = receiver.requests
    assert verify(
        SECRET,
        post["headers"]["X-YouthVoice-Timestamp"],
        post["body"],
        post["headers"]["X-YouthVoice-Signature"],
    )
    payload = json.loads(post["body"])
    assert payload["case"] == case.reference
    assert payload["recipient"] == tree.youth.pk
    # and nothing personal travelled or was stored
    assert "13800000000" not in post["body"].decode()
    assert "chen@example.org" not in json.dumps([r.context for r in rows])


def _waiting_on_lock(dbname: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            [dbname],
        )
        return cursor.fetchone()[0] > 0


def test_worker_killed_mid_delivery_delivers_exactly_once_after_restart(tree, workers):
    # given a worker, and the inbox table locked so its delivery stops half-way
    from django.db import connection

    worker = workers.new()
    worker.start()
    blocker = psycopg2.connect(database_url_of_tests())
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute("LOCK TABLE notifications_inboxitem IN EXCLUSIVE MODE")

    # when a case change is delivered and the worker is SIGKILLed in the middle of it
    case = submit(tree)
    wait_until(
        lambda: _waiting_on_lock(connection.settings_dict["NAME"]),
        message="the worker blocked inside its delivery transaction",
    )
    worker.kill()
    blocker.rollback()
    blocker.close()
    assert InboxItem.objects.count() == 0

    # then after a restart the relay re-sends and each message exists exactly once
    worker.start()
    wait_until(all_done, message="delivery after restart")
    rows = list(Notification.objects.filter(case_id=case.pk))
    assert len(rows) == 2
    items = list(InboxItem.objects.values_list("key", flat=True))
    assert sorted(items) == sorted(r.key for r in rows)


def test_webhook_send_killed_mid_request_is_received_once(youth_on_webhook, workers, receiver):
    # given a bridge that holds the first request open
    tree = youth_on_webhook
    receiver.mode = "hang"
    worker = workers.new(env=webhook_env(receiver))
    worker.start()

    # when the worker is SIGKILLed while the POST is in flight
    submit(tree)
    assert receiver.arrived.wait(30), "the webhook POST never arrived"
    worker.kill()
    receiver.mode = "ok"
    receiver.release.set()

    # then after restart the claim's lease runs out, the relay sends again with
    # the same key, and the receiver acts on it once
    worker.start()
    wait_until(all_done, message="webhook delivered after restart")
    row = Notification.objects.get(channel="webhook")
    assert row.status == Status.SENT
    assert receiver.keys_seen() == [row.key, row.key]
    assert list(receiver.processed) == [row.key]


def test_killed_after_commit_before_publish_the_relay_delivers(tree, workers):
    # given a process that commits a case change and dies before it can publish
    script = textwrap.dedent(
        f"""
        import os, signal, django
        django.setup()
        import notifications.services as services
        services.publish_fan_out = lambda ids: os.kill(os.getpid(), signal.SIGKILL)
        from casework.models import User
        from casework.services import cases
        cases.case_submit(youth=User.objects.get(pk={tree.youth.pk}),
                          category=__import__("casework.models").models.Category.objects.get(
                              code="study"),
                          region_code="440105", title="t", description="d")
        """
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url_of_tests(),
        NOTIFICATIONS_RELAY_GRACE_SECONDS="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    # its one outbox event is committed, not fanned out yet
    [event] = OutboxEvent.objects.all()
    assert (event.kind, event.fanned_out_at) == ("submitted", None)
    assert Notification.objects.count() == 0

    # when a worker with beat (the relay) runs
    workers.new().start()

    # then the relay publishes it, it is fanned out and both messages are delivered, once
    wait_until(all_done, message="the relay delivered the orphaned event")
    assert Notification.objects.count() == InboxItem.objects.count() == 2


def test_webhook_down_retries_then_dead_letter_then_no_duplicates(
    youth_on_webhook, workers, receiver, settings
):
    # given the bridge is down
    tree = youth_on_webhook
    receiver.mode = "down"
    workers.new(env=webhook_env(receiver)).start()

    # when a notification is due for it
    submit(tree)

    # then it is tried three times (with backoff) and dead-lettered
    row = wait_until(
        lambda: Notification.objects.filter(channel="webhook", status=Status.DEAD).first(),
        message="a dead letter",
    )
    assert row.attempts == 3
    assert receiver.keys_seen() == [row.key] * 3
    assert row.last_error == "HTTP 503"

    # when the bridge recovers and an admin retries the dead letter
    receiver.mode = "ok"
    assert services.retry_notifications([row.pk]) == 1

    # then it arrives once, and relay rounds later it has still arrived once
    wait_until(
        lambda: Notification.objects.filter(pk=row.pk, status=Status.SENT).exists(),
        message="the retried delivery",
    )
    import time

    time.sleep(3)  # several relay rounds and lease lengths
    assert [r["key"] for r in receiver.requests if r["mode"] == "ok"] == [row.key]
    assert list(receiver.processed) == [row.key]


def test_the_same_notification_is_never_sent_twice(youth_on_webhook, workers, receiver):
    # given two worker processes with two pool processes each, racing
    tree = youth_on_webhook
    workers.new(env=webhook_env(receiver)).start(concurrency=2)
    workers.new(env=webhook_env(receiver)).start(concurrency=2)

    # when the same outbox event is published many times over
    case = submit(tree)
    [event] = OutboxEvent.objects.filter(case_id=case.pk)
    for _ in range(20):
        fan_out.apply_async(args=[[event.pk]])
    # and, once fanned out, the same rows too, and the relay runs as well
    wait_until(
        lambda: OutboxEvent.objects.filter(pk=event.pk, fanned_out_at__isnull=False).exists(),
        message="fan-out",
    )
    ids = list(Notification.objects.filter(case_id=case.pk).values_list("pk", flat=True))
    assert len(ids) == 4
    for _ in range(20):
        deliver.apply_async(args=[ids])
    services.relay_pending()

    # then each arrives exactly once
    wait_until(all_done, message="delivery")
    import time

    time.sleep(2)
    webhook = Notification.objects.get(channel="webhook")
    assert receiver.keys_seen() == [webhook.key]
    assert InboxItem.objects.count() == Notification.objects.filter(channel="inapp").count() == 2
