"""Verify every case's hash-chained timeline (or one case's)."""

from django.core.management.base import BaseCommand, CommandError

from casework.events import ChainBreak, verify_timeline
from casework.models import Case, CaseEvent

BATCH = 2000


class Command(BaseCommand):
    help = (
        "Check that no timeline event was edited, removed or reordered. Exits 0 when every "
        "chain verifies; otherwise names the first broken event of each broken case and exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--case", type=int, help="verify only the case with this id")

    def handle(self, *args, case=None, **options):
        cases = Case.objects.order_by("pk")
        if case is not None:
            cases = cases.filter(pk=case)
            if not cases.exists():
                raise CommandError(f"No case with id {case}.")
        broken: list[ChainBreak] = []
        checked = 0
        heads = cases.values_list("pk", "last_event_seq", "last_event_hash")
        last_pk = 0
        while True:
            batch = list(heads.filter(pk__gt=last_pk)[:BATCH])
            if not batch:
                break
            last_pk = batch[-1][0]
            events_by_case: dict[int, list[CaseEvent]] = {pk: [] for pk, _, _ in batch}
            for event in CaseEvent.objects.filter(case_id__in=events_by_case).order_by(
                "case_id", "seq"
            ):
                events_by_case[event.case_id].append(event)
            for pk, head_seq, head_hash in batch:
                problem = verify_timeline(
                    events_by_case[pk], case_id=pk, head_seq=head_seq, head_hash=head_hash
                )
                if problem:
                    broken.append(problem)
                    self.stderr.write(
                        f"case {problem.case_id}: event seq {problem.seq} "
                        f"(id {problem.event_id}) is broken: {problem.problem}"
                    )
            checked += len(batch)
            if case is None and self.stdout.isatty():
                self.stdout.write(f"checked {checked} cases", ending="\r")
        if broken:
            raise CommandError(
                f"{len(broken)} of {checked} case timelines do not verify.", returncode=1
            )
        self.stdout.write(self.style.SUCCESS(f"All {checked} case timelines verify."))
