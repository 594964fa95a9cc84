"""python manage.py load_calendar [--year 2026 --year 2027] [--overwrite-admin]"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from workflows.sla import load_calendar


class Command(BaseCommand):
    help = (
        "Load public holidays and adjusted working days (调休) from the chinese_calendar "
        "package into the business calendar (default: this year and next). Days entered "
        "in the admin are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, action="append", dest="years")
        parser.add_argument(
            "--overwrite-admin",
            action="store_true",
            help="Also replace days an administrator entered by hand.",
        )

    def handle(self, *args, years=None, overwrite_admin=False, **options):
        from workflows.calendar import package_coverage
        from workflows.models import CalendarDay

        this_year = timezone.localdate().year
        version, first, last = package_coverage()
        self.stdout.write(f"chinese_calendar {version} covers {first}-{last}")
        result = load_calendar(years or [this_year, this_year + 1], overwrite_admin=overwrite_admin)
        missing = []
        for year, count in sorted(result.items()):
            if count is None:
                missing.append(year)
                by_hand = CalendarDay.objects.filter(
                    date__year=year, source=CalendarDay.Source.ADMIN
                ).count()
                self.stderr.write(
                    self.style.WARNING(
                        f"{year}: not covered by the installed chinese_calendar package "
                        f"({by_hand} day(s) entered by hand in the admin); upgrade the package "
                        "when a release covers it, or enter the year's holidays and adjusted "
                        "working days in the admin (docs/sla.md)"
                    )
                )
            else:
                self.stdout.write(f"{year}: {count} day(s) written")
        if missing and len(missing) == len(result):
            self.stderr.write(self.style.WARNING("nothing loaded"))
