"""python manage.py sla_sweep [--batch-size N] [--max-batches N]"""

import json

from django.core.management.base import BaseCommand

from casework.services import sla_sweep


class Command(BaseCommand):
    help = (
        "Act on every passed SLA deadline once: escalate breached stages, raise critical "
        "alerts at the top level, send reminders, close ended rating windows. Safe to run "
        "beside the Celery beat sweep."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--max-batches", type=int, default=None)

    def handle(self, *args, batch_size=None, max_batches=None, **options):
        result = sla_sweep(batch_size=batch_size, max_batches=max_batches)
        self.stdout.write(json.dumps(result.as_dict()))
