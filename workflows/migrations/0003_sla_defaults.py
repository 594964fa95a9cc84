"""The default SLA policy, the working day, and this year's and next year's calendar.

The calendar comes from the ``chinese_calendar`` package: public holidays and
the adjusted working days (调休). A year the installed package does not cover
yet is skipped here; ``python manage.py load_calendar`` loads it once a newer
package covers it (or an administrator enters the days in the admin).
"""

from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    from workflows.calendar import package_days

    SlaPolicy = apps.get_model("workflows", "SlaPolicy")
    WorkingHours = apps.get_model("workflows", "WorkingHours")
    CalendarDay = apps.get_model("workflows", "CalendarDay")
    if not SlaPolicy.objects.filter(category__isnull=True, urgency="").exists():
        # Business hours on a 9-hour working day: accept within one working day, verify
        # within three, resolve within ten, tell the youth within two.
        SlaPolicy.objects.create(
            accept_hours=9, verify_hours=27, resolve_hours=90, feedback_hours=18
        )
    WorkingHours.objects.get_or_create(pk=1)
    year = timezone.localdate().year
    for y in (year, year + 1):
        try:
            days = package_days(y)
        except LookupError:
            continue
        for day, kind, name in days:
            CalendarDay.objects.get_or_create(
                date=day, defaults={"kind": kind, "name": name, "source": "package"}
            )


class Migration(migrations.Migration):
    dependencies = [("workflows", "0002_sla_policies_calendar")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
