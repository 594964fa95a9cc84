"""Task moves in place (docs/performance.md, "Sweep: session 5").

An escalation changes only ``org_id`` of the open task. Without an index on
``org_id`` PostgreSQL can rewrite the row as a HOT update (no new index
entry) when its page has room; the fill factor leaves that room on every page
written from now on. Open tasks are found by organisation through the case
indexes (``workflows.selectors``). On an existing database the pages already
written stay full until rewritten (``VACUUM FULL workflows_casetask`` in a
maintenance window); updates on them still write no ``org_id`` index entry.
"""

from django.db import migrations

FILLFACTOR = 85


def _storage(value):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(apps.get_model("workflows", "CaseTask")._meta.db_table)
        if value is None:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {value})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0005_partial_holder_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="casetask", name="casetask_org_status_idx"),
        migrations.RunPython(_storage(FILLFACTOR), _storage(None)),
    ]
