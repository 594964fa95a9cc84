"""python manage.py recompute_scores: rebuild every score from the ratings and the timeline."""

from django.core.management.base import BaseCommand
from tqdm import tqdm

from casework.services import recompute_scores


class Command(BaseCommand):
    help = (
        "Rebuild every evaluation score and help-effectiveness index from the ratings and the "
        "timeline (what the nightly beat task does), with a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reattribute",
            action="store_true",
            help="Also derive each rated case's attribution from its timeline again (slower).",
        )
        parser.add_argument(
            "--no-snapshot", action="store_true", help="Do not write today's trend snapshot."
        )

    def handle(self, *args, reattribute=False, no_snapshot=False, **options):
        bars: dict[str, tqdm] = {}

        def progress(step: str, done: int, total: int) -> None:
            bar = bars.get(step)
            if bar is None:
                bar = bars[step] = tqdm(total=total, desc=step, file=self.stderr._out, leave=True)
            bar.update(done - bar.n)

        try:
            rows = recompute_scores(
                reattribute=reattribute, snapshot=not no_snapshot, progress=progress
            )
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(self.style.SUCCESS(f"Recomputed {rows} score rows."))
