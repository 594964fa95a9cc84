"""Celery tasks: thin, take ids, idempotent. They only call services.

``fan_out`` and ``deliver`` may run twice for the same ids (a redelivered
message, the relay publishing again): an event already fanned out is skipped
(and the rows' unique keys refuse a repeat), and the claim in ``deliver_many``
makes a second delivery a no-op for every row already done. No task carries
a deadline as a broker ETA: retries wait in the database
(``next_attempt_at``) and the relay picks them up.
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


@shared_task(
    name="notifications.tasks.fan_out",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def fan_out(ids: list[int]) -> int:
    return len(services.fan_out(ids))
