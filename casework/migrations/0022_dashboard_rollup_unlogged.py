"""The dashboard's rollup tables are UNLOGGED on PostgreSQL.

They are rebuilt from the cases every minute (about a million rows at a million
cases): logging them would write that much WAL each minute and ship it to every
replica for data that the next rebuild replaces anyway. After a crash PostgreSQL
empties them, and the dashboard says its figures are not computed yet until the
next rebuild. Unlogged tables cannot be read on a standby: config.db_router
keeps these models on the primary.
"""

from django.db import migrations

TABLES = ("casework_dashboardrollup", "casework_dashboardopenstats", "casework_dashboardweekstats")


def set_unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET UNLOGGED")


def set_logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("casework", "0021_partial_holder_indexes")]

    operations = [migrations.RunPython(set_unlogged, set_logged)]
