"""Celery beat tasks of the workflows app: thin, idempotent, on the "sweeps" queue."""

from celery import shared_task

SWEEPS_QUEUE = "sweeps"


@shared_task(name="workflows.sla_sweep", queue=SWEEPS_QUEUE, ignore_result=True)
def sla_sweep_task() -> dict:
    """Run the SLA sweep (every minute from beat); overlapping runs are safe."""
    from django.conf import settings

    from casework.services import sla_sweep

    # Bounded so one run ends well inside the task time limit; the next minute goes on.
    return sla_sweep(max_batches=getattr(settings, "SLA_SWEEP_MAX_BATCHES", 50)).as_dict()
