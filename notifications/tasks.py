"""Celery tasks: thin, take ids, idempotent. They only call services.

``deliver`` may run twice for the same ids (a redelivered message, the relay
publishing a row again): the claim in ``deliver_many`` makes the second run a
no-op for every row already done. Neither task carries a deadline as a broker
ETA: retries wait in the database (``next_attempt_at``) and the relay picks
them up.
"""

from celery import shared_task

from . import services


@shared_task(
    name="notifications.tasks.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def deliver(ids: list[int]) -> int:
    return services.deliver_many(ids)


@shared_task(
    name="notifications.tasks.relay",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def relay() -> int:
    return services.relay_pending()
