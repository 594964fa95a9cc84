"""Free space on every page of the score rows (PostgreSQL), for updates in place.

The full recompute updates every ``ScoreState`` row's sums (and incremental
updates add to a few): an update that changes no indexed column can write the
new row version on the same page without touching any index (a HOT update) only
when that page has room for it, and such updates reclaim the versions that
earlier ones left there without waiting for a vacuum. With half of each page
kept free, a recompute rewrites the tens of thousands of rows in place each time
(casework.services.scores._write_state). The setting applies to pages written
from now on; the recompute that follows moves the rows onto such pages.
"""

from django.db import migrations


def apply(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE casework_scorestate SET (fillfactor = 50)")


def revert(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE casework_scorestate RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("casework", "0024_scoreshare_category")]

    operations = [migrations.RunPython(apply, revert)]
