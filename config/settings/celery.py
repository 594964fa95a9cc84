"""Celery integration: a real broker when CELERY_BROKER_URL is set, in-process otherwise."""

import os

from celery.schedules import crontab

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Embedded first run: no broker, tasks run in the calling process.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = os.environ.get("PLATFORM_TIME_ZONE", "Asia/Shanghai")
CELERY_TASK_DEFAULT_QUEUE = "default"
# One minute in production; `make prod-smoke` shortens it so a breach is acted on at once.
SLA_SWEEP_INTERVAL_SECONDS = float(os.environ.get("SLA_SWEEP_INTERVAL_SECONDS", "60"))
# How often the supervisor dashboard's rollup is rebuilt (a full rebuild: about 1M rows
# at a million cases, docs/performance.md); the page shows the time of its figures.
DASHBOARD_REFRESH_SECONDS = float(os.environ.get("DASHBOARD_REFRESH_SECONDS", "60"))
CELERY_BEAT_SCHEDULE: dict = {
    # Deadlines live on the cases; one sweep a minute acts on those that passed.
    "sla-sweep": {
        "task": "workflows.sla_sweep",
        "schedule": SLA_SWEEP_INTERVAL_SECONDS,
        # A run that waited longer than its interval is dropped: the next one does its work.
        "options": {"queue": "sweeps", "expires": max(1.0, SLA_SWEEP_INTERVAL_SECONDS - 5)},
    },
    # The score deltas of the sweep's escalations, after its commits (each sweep batch asks
    # for this too; the schedule covers a lost message).
    "apply-pending-scores": {
        "task": "workflows.apply_pending_scores",
        "schedule": 60.0,
        "options": {"queue": "sweeps", "expires": 55},
    },
    # The supervisor dashboard reads per-subtree counts rebuilt set-based each minute
    # (casework.services.dashboard_rollup); a rebuild already running makes the next one a
    # no-op. On the default queue: it takes seconds at scale and must not delay the sweep.
    "refresh-dashboard": {
        "task": "casework.refresh_dashboard",
        "schedule": DASHBOARD_REFRESH_SECONDS,
        "options": {
            "queue": CELERY_TASK_DEFAULT_QUEUE,
            "expires": max(1.0, DASHBOARD_REFRESH_SECONDS - 5),
        },
    },
    # Scores are kept current incrementally; the nightly full recompute re-bases their
    # epoch, corrects any drift and writes the day's snapshot for the trends.
    "recompute-scores": {
        "task": "casework.recompute_scores",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": "sweeps", "expires": 3600},
    },
}
