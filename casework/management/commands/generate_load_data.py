"""Fill a fresh PostgreSQL database with a realistic load: ~5,000 organisations, N cases."""

import json
import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from casework.loaddata import LoadError, generate


class Command(BaseCommand):
    help = (
        "Fill a freshly migrated, empty PostgreSQL database with benchmark data: an "
        "organisation tree of about 5,000 organisations (province, cities, districts and "
        "universities, branches and service stations) with handlers, verifiers and "
        "supervisors; --cases cases in every state with hash-chained timelines that "
        "verify_timeline accepts (20 of them with 200 events each); ratings; sent in-app "
        "notifications; a viewflow process and open task for every open case. Written by "
        "COPY from parallel worker processes, with the big tables' secondary indexes and "
        "foreign keys dropped during the load and recreated after it (the keys NOT VALID "
        "unless --validate-foreign-keys). "
        "Refuses SQLite and non-empty databases. Staff accounts are h<org>/v<org>/s<org> "
        "(handler, verifier, supervisor) with the password youthvoice-load."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--cases", type=int, default=100_000, help="how many cases (default 100,000)"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="loader processes (default: the number of cores, at most 4)",
        )
        parser.add_argument(
            "--chunk", type=int, default=20_000, help="cases per COPY transaction (20,000)"
        )
        parser.add_argument(
            "--validate-foreign-keys",
            action="store_true",
            help="re-check every loaded row against its foreign keys after the load (slow at "
            "1M cases); by default the keys come back NOT VALID: enforced for new rows only",
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--json", action="store_true", help="print the summary as one JSON line at the end"
        )

    def handle(
        self, *args, cases, workers, chunk, seed, validate_foreign_keys, json=False, **options
    ):
        if chunk < 1 or workers < 1:
            raise CommandError("--chunk and --workers must be at least 1.")
        started = time.perf_counter()
        try:
            summary = generate(
                cases=cases,
                seed=seed,
                workers=workers,
                chunk=chunk,
                validate_foreign_keys=validate_foreign_keys,
                log=lambda line: self.stderr.write(line),
                detail=(lambda line: self.stderr.write(line)) if options["verbosity"] > 1 else None,
                progress_stream=sys.stderr,  # the raw stream: tqdm writes partial lines
            )
        except LoadError as exc:
            raise CommandError(str(exc)) from None
        seconds = time.perf_counter() - started
        summary["load_average"] = [round(x, 2) for x in os.getloadavg()]
        if json:
            self.stdout.write(_dumps({"bench": "generate_load_data", **summary}))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Loaded {summary['cases']:,} cases and {summary['events']:,} events "
                    f"in {seconds:.1f} s."
                )
            )


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
