"""A case change's outbox event is published after commit by a background thread, a
few changes per message (``services._ChangePublisher``); eagerly in the embedded mode."""

import os
import threading
from unittest import mock

import pytest
from celery import current_app

from casework import services as casework
from casework.states import CaseState
from notifications import services
from notifications.models import OutboxEvent
from tests.casework.steps import case_in

pytestmark = pytest.mark.django_db


class Sent:
    """Stands in for the fan-out task's publisher: records each message's ids."""

    def __init__(self, fail: bool = False):
        self.messages: list[list[int]] = []
        self.fail = fail
        self.arrived = threading.Event()
        self.app = current_app._get_current_object()

    def __call__(self, args):
        if self.fail:
            raise ConnectionError("broker down")
        [ids] = args
        self.messages.append(list(ids))
        self.arrived.set()


@pytest.fixture
def broker():
    """Published tasks go to a broker (not run in this process), whatever the environment says."""
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = False
    yield
    conf.task_always_eager = before


@pytest.fixture
def sent():
    recorder = Sent()
    with mock.patch.object(services, "_lean_fan_out", return_value=recorder):
        yield recorder


def test_the_changes_of_one_window_go_as_one_message(settings, sent):
    # given a window long enough that the publisher's thread is still waiting it out
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 60_000
    publisher = services._ChangePublisher()
    # when three changes are committed within it
    for outbox_id in (11, 12, 13):
        publisher.add(outbox_id)
    assert sent.messages == []
    # then the window's end publishes the three ids as one message, in order, once
    assert publisher.flush() == 3
    assert sent.messages == [[11, 12, 13]]
    assert publisher.flush() == 0
    assert sent.messages == [[11, 12, 13]]


def test_a_message_holds_at_most_a_task_batch_of_ids(settings, sent):
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 60_000
    settings.NOTIFICATIONS_TASK_BATCH = 2
    publisher = services._ChangePublisher()
    for outbox_id in (1, 2, 3, 4, 5):
        publisher.add(outbox_id)
    assert publisher.flush() == 5
    assert sent.messages == [[1, 2], [3, 4], [5]]


def test_the_thread_publishes_when_the_window_ends(settings, sent):
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 1
    publisher = services._ChangePublisher()
    publisher.add(7)
    assert sent.arrived.wait(30), "the publisher's thread never published"
    assert sent.messages == [[7]]
    assert publisher._pending == []


def test_a_broker_failure_loses_nothing_the_relay_cannot_send(settings, caplog):
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 60_000
    publisher = services._ChangePublisher()
    with mock.patch.object(services, "_lean_fan_out", return_value=Sent(fail=True)):
        publisher.add(5)
        # the failure is logged, not raised: the outbox row is committed, the relay sends it
        assert publisher.flush() == 0
    assert "the relay will" in caplog.text
    assert publisher._pending == []


def test_a_forked_child_starts_with_nothing_pending_and_no_thread(settings, sent):
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 60_000
    publisher = services._ChangePublisher()
    publisher.add(21)
    assert publisher._thread is not None
    pid = os.fork()
    if pid == 0:  # the child: the parent's id and thread are the parent's
        os._exit(0 if publisher._pending == [] and publisher._thread is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent still has its own id to publish
    assert publisher.flush() == 1
    assert sent.messages == [[21]]


def test_a_transition_hands_its_outbox_event_to_the_publisher_after_commit(
    tree, broker, django_capture_on_commit_callbacks
):
    case = case_in(tree, CaseState.COORDINATING)
    with mock.patch.object(services._publisher, "add") as add:
        with django_capture_on_commit_callbacks() as callbacks:
            casework.case_request_info(case=case.pk, actor=tree.handler, question="几点?")
        # nothing before the commit
        add.assert_not_called()
        for callback in callbacks:  # the commit
            callback()
    [event] = OutboxEvent.objects.filter(case=case, kind="info_requested")
    add.assert_called_once_with(event.pk)


def test_without_a_window_each_change_is_published_at_once(
    tree, broker, settings, sent, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_PUBLISH_WINDOW_MS = 0
    case = case_in(tree, CaseState.COORDINATING)
    with django_capture_on_commit_callbacks(execute=True):
        casework.case_request_info(case=case.pk, actor=tree.handler, question="几点?")
    [event] = OutboxEvent.objects.filter(case=case, kind="info_requested")
    assert sent.messages == [[event.pk]]
