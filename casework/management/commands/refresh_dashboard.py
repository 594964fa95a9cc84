"""``manage.py refresh_dashboard``: rebuild the supervisor dashboard's rollup now."""

from django.core.management.base import BaseCommand

from casework.services.dashboard_rollup import refresh_dashboard_rollup


class Command(BaseCommand):
    help = (
        "Rebuild the supervisor dashboard's figures (per-subtree counts) now; Celery beat "
        "does it every minute. Does nothing if a rebuild is already running."
    )

    def handle(self, *args, **options):
        result = refresh_dashboard_rollup()
        if result is None:
            self.stdout.write("another refresh is running; nothing done")
            return
        self.stdout.write(
            f"dashboard rollup as of {result.as_of.isoformat()}: {result.open_rows} open rows, "
            f"{result.week_rows} week rows in {result.seconds:.2f} s"
        )
