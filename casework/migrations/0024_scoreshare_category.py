"""The attribution rows carry their case's category (docs/scores.md, "Keeping scores
current"), so the full recompute's rating pass reads the attribution and the
ratings without joining the cases.

The copy is filled here from the cases and kept equal to the case's category by a
trigger (PostgreSQL, like the timeline's own triggers in 0002): a statement that
changes a case's category updates the case's attribution rows in the same statement,
so in the same transaction, whatever wrote it. Its condition on the old and new value
makes it cost nothing to an update that leaves the category alone, and an update
that does not set the column does not fire it. No service re-categorises a case
today (the admin shows cases read-only).
"""

import django.db.models.deletion
from django.db import migrations, models

FILL = (
    "UPDATE casework_scoreshare SET category_id = "
    "(SELECT c.category_id FROM casework_case c WHERE c.id = casework_scoreshare.case_id)"
)

POSTGRESQL = """
CREATE OR REPLACE FUNCTION casework_scoreshare_follows_category() RETURNS trigger AS $$
BEGIN
    UPDATE casework_scoreshare SET category_id = NEW.category_id WHERE case_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER casework_case_category_to_scoreshare
    AFTER UPDATE OF category_id ON casework_case
    FOR EACH ROW WHEN (OLD.category_id IS DISTINCT FROM NEW.category_id)
    EXECUTE FUNCTION casework_scoreshare_follows_category();
"""

POSTGRESQL_REMOVE = """
DROP TRIGGER IF EXISTS casework_case_category_to_scoreshare ON casework_case;
DROP FUNCTION IF EXISTS casework_scoreshare_follows_category();
"""

def install(apps, schema_editor):
    schema_editor.execute(FILL)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_REMOVE)


class Migration(migrations.Migration):
    dependencies = [("casework", "0023_dashboard_rollup_indexes")]

    operations = [
        migrations.AddField(
            model_name="scoreshare",
            name="category",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="casework.category",
            ),
        ),
        migrations.RunPython(install, remove),
        migrations.AlterField(
            model_name="scoreshare",
            name="category",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="casework.category",
            ),
        ),
    ]
