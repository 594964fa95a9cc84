"""Fixtures for the notification tests: eager Celery, real brokers, real workers."""

import os

import pytest
from celery import current_app
from kombu import pools

from tests.conftest import IN_CI

from .realworld import Receiver, Worker, new_queue_name, reachable

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def eager():
    """Run published tasks in this process (the embedded mode), whatever the environment says."""
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


def _broker_or_skip(url: str, name: str) -> str:
    if not url or not reachable(url):
        message = f"{name} is needed for the real-worker tests ({url or 'CELERY_BROKER_URL unset'})"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(params=["redis"])
def broker_url(request):
    if request.param == "rabbitmq":
        return _broker_or_skip(RABBITMQ_URL, "RabbitMQ")
    return _broker_or_skip(os.environ.get("CELERY_BROKER_URL", ""), "A broker")


def _reset_publisher():
    app = current_app._get_current_object()
    pools.reset()  # closes and forgets the connection pools of the previous broker
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def live(broker_url, settings, tmp_path):
    """This process publishes to a real broker, on a queue of this test's own."""
    queue = new_queue_name()
    settings.NOTIFICATIONS_QUEUE = queue
    settings.CELERY_SWEEPS_QUEUE = f"{queue}-sweeps"
    settings.NOTIFICATIONS_RELAY_GRACE_SECONDS = 1  # as the workers' relay is told
    conf = current_app.conf
    before = (conf.broker_url, conf.task_always_eager)
    conf.broker_url = broker_url
    conf.task_always_eager = False
    _reset_publisher()
    yield {"broker_url": broker_url, "queue": queue, "tmp": tmp_path}
    conf.broker_url, conf.task_always_eager = before
    _reset_publisher()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def workers(live):
    """Start workers with ``workers.start(env=...)``; all are stopped at teardown."""
    started: list[Worker] = []

    class Factory:
        def new(self, env=None) -> Worker:
            worker = Worker(
                broker_url=live["broker_url"], queue=live["queue"], tmp=live["tmp"], env=env
            )
            started.append(worker)
            return worker

    yield Factory()
    for worker in started:
        worker.stop()
