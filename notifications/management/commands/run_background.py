"""Background work for the embedded first run, with no broker installed.

``make demo`` starts this beside ``runserver``. Every
``CELERY_BEAT_SCHEDULE`` entry (the notification relay, the SLA sweeps) runs
here at its interval, in this process, through Celery's own task objects.
With no broker, a task published by the relay runs in this process too
(Celery is eager), so outbox rows that the web process could not deliver
right after commit are delivered here. With a broker configured, run real
workers and beat instead (docs/notifications.md).
"""

import logging
import signal
import time

from celery import current_app
from django.core.management.base import BaseCommand

log = logging.getLogger(__name__)


def _interval(schedule) -> float:
    if isinstance(schedule, int | float):
        return float(schedule)
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if run_every is not None:
        return run_every.total_seconds()
    return 60.0  # crontab entries: checked every minute, good enough for a demo


class Command(BaseCommand):
    help = "Run the beat schedule (relay, sweeps) here in a loop: background work, no broker."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run every entry once and exit")
        parser.add_argument(
            "--tick", type=float, default=1.0, help="seconds between checks (default 1)"
        )

    def handle(self, *args, once=False, tick=1.0, **options):
        from django.conf import settings

        app = current_app._get_current_object()
        app.loader.import_default_modules()
        entries = dict(settings.CELERY_BEAT_SCHEDULE)
        stop = {"now": False}

        def _stop(*_):
            stop["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        next_run = {name: 0.0 for name in entries}
        self.stdout.write(f"background: {len(entries)} scheduled tasks: {', '.join(entries)}")
        while not stop["now"]:
            now = time.monotonic()
            for name, entry in entries.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + _interval(entry["schedule"])
                task = app.tasks.get(entry["task"])
                if task is None:
                    log.warning("background: no task named %s", entry["task"])
                    continue
                try:
                    # apply() runs the task here, whatever the broker settings say.
                    task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
                except Exception:
                    log.exception("background: %s failed", name)
            if once:
                break
            time.sleep(tick)
