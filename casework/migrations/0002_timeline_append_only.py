"""Make the timeline append-only in the database itself (PostgreSQL).

The application never updates or deletes a CaseEvent; these triggers make
sure nothing else does either. Only a superuser who disables the triggers
(or sets session_replication_role = replica) can bypass them, and the hash
chain then shows what was changed.
"""

from django.db import migrations

INSTALL = """
CREATE OR REPLACE FUNCTION casework_timeline_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'casework_caseevent is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER casework_caseevent_no_update_delete
    BEFORE UPDATE OR DELETE ON casework_caseevent
    FOR EACH ROW EXECUTE FUNCTION casework_timeline_is_append_only();

CREATE TRIGGER casework_caseevent_no_truncate
    BEFORE TRUNCATE ON casework_caseevent
    FOR EACH STATEMENT EXECUTE FUNCTION casework_timeline_is_append_only();
"""

REMOVE = """
DROP TRIGGER IF EXISTS casework_caseevent_no_truncate ON casework_caseevent;
DROP TRIGGER IF EXISTS casework_caseevent_no_update_delete ON casework_caseevent;
DROP FUNCTION IF EXISTS casework_timeline_is_append_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE)


class Migration(migrations.Migration):
    dependencies = [("casework", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
