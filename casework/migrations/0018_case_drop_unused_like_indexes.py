"""Drop the ``varchar_pattern_ops`` twins of the case's unique ``reference`` and
``public_token`` indexes (PostgreSQL only).

Django adds such a twin to every indexed ``CharField`` for ``LIKE 'prefix%'``
lookups; nothing looks cases up by a prefix of either column (the admin's
search is a ``LIKE '%…%'``, which no B-tree serves), and every SLA escalation
rewrites both twins of each case row (docs/performance.md). Django does not
track the twins in its migration state, and drops them with ``IF EXISTS``
whenever it alters the fields, so removing them here is safe.
"""

from django.db import migrations

COLUMNS = ("reference", "public_token")


def _twins(schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'casework_case' "
            "AND indexdef LIKE '%%varchar_pattern_ops%%'"
        )
        rows = cursor.fetchall()
    return [name for name, definition in rows if any(f"({c} " in definition for c in COLUMNS)]


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _twins(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "casework_case_{column}_like" '
            f'ON "casework_case" ("{column}" varchar_pattern_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [("casework", "0017_sweep_score_queue_and_deadlines")]

    operations = [migrations.RunPython(drop, restore)]
