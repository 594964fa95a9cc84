"""Celery beat tasks of the casework app: thin, idempotent, on the "sweeps" queue."""

from celery import shared_task

SWEEPS_QUEUE = "sweeps"


@shared_task(name="casework.privacy_retention", queue=SWEEPS_QUEUE, ignore_result=True)
def privacy_retention_task() -> dict:
    """Erase the personal data of cases closed past the retention period (hourly from beat)."""
    from casework.services import retention_sweep

    return retention_sweep().as_dict()


@shared_task(name="casework.recompute_scores", queue=SWEEPS_QUEUE, ignore_result=True)
def recompute_scores_task() -> int:
    """Rebuild every score from the ratings and the timeline (nightly from beat)."""
    from casework.services import recompute_scores

    return recompute_scores()


@shared_task(name="casework.visit_reminders", queue=SWEEPS_QUEUE, ignore_result=True)
def visit_reminders_task() -> int:
    """Send the due reminders of station visits (every five minutes from beat)."""
    from casework.services import visit_reminder_sweep

    return visit_reminder_sweep()


# On the default queue: a rebuild takes seconds at scale and must not hold a sweeps
# worker slot while the SLA sweep waits.
@shared_task(name="casework.refresh_dashboard", queue="default", ignore_result=True)
def refresh_dashboard_task() -> int:
    """Rebuild the supervisor dashboard's rollup (every minute from beat); 0 if one ran."""
    from casework.services.dashboard_rollup import refresh_dashboard_rollup

    result = refresh_dashboard_rollup()
    return 0 if result is None else result.open_rows + result.week_rows
