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


@shared_task(name="workflows.apply_pending_scores", queue=SWEEPS_QUEUE, ignore_result=True)
def apply_pending_scores_task() -> int:
    """Add the score deltas of the sweep's escalations (after each sweep batch, and from beat)."""
    from casework.services.score_queue import apply_all

    return apply_all()
