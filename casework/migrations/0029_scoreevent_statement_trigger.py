"""The counted events' copies (``ScoreEvent``) written once per statement (PostgreSQL).

Migration 0027's row trigger ran its function once per counted event: a batch of
the SLA sweep appends a thousand escalations in one statement and paid a
PL/pgSQL call, a one-row ``INSERT`` and its executor start-up for each
(about 13 ms of a batch of about 115 ms; docs/performance.md, "Sweep: session 5").
The trigger now fires once per statement that appends events and copies the
statement's counted events with one ``INSERT … SELECT`` from its transition table
(``REFERENCING NEW TABLE``). The rows written are the same: the same columns, the
same category read by the case's primary key, and a counted event whose case
does not exist is refused (the category is NOT NULL), never left out. A
statement that appends only uncounted events (most transitions) runs the
function and finds nothing to copy.

The trigger keeps its name (``casework.services.scores.SCORE_EVENT_TRIGGER``:
``generate_load_data`` switches it off for its load). SQLite keeps 0027's row
trigger (it has no transition tables).
"""

from django.db import migrations

KINDS = ("delegated", "escalated", "reassigned", "routed", "transferred", "disputed")
KIND_LIST = ", ".join(f"'{kind}'" for kind in KINDS)

STATEMENT_TRIGGER = f"""
DROP TRIGGER IF EXISTS casework_caseevent_to_scoreevent ON casework_caseevent;
DROP FUNCTION IF EXISTS casework_caseevent_to_scoreevent();

CREATE FUNCTION casework_caseevent_to_scoreevent() RETURNS trigger AS $$
BEGIN
    INSERT INTO casework_scoreevent (event_id, category_id, org_id, from_org_id, kind, at)
    SELECT e.id, (SELECT c.category_id FROM casework_case c WHERE c.id = e.case_id),
           e.org_id,
           CASE WHEN e.kind = 'escalated' THEN (e.payload->>'from_org')::bigint END,
           e.kind, e.at
    FROM appended e
    WHERE e.kind IN ({KIND_LIST});
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER casework_caseevent_to_scoreevent
    AFTER INSERT ON casework_caseevent
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT
    EXECUTE FUNCTION casework_caseevent_to_scoreevent();
"""

ROW_TRIGGER = f"""
DROP TRIGGER IF EXISTS casework_caseevent_to_scoreevent ON casework_caseevent;
DROP FUNCTION IF EXISTS casework_caseevent_to_scoreevent();

CREATE FUNCTION casework_caseevent_to_scoreevent() RETURNS trigger AS $$
BEGIN
    INSERT INTO casework_scoreevent (event_id, category_id, org_id, from_org_id, kind, at)
    VALUES (NEW.id, (SELECT c.category_id FROM casework_case c WHERE c.id = NEW.case_id),
            NEW.org_id,
            CASE WHEN NEW.kind = 'escalated' THEN (NEW.payload->>'from_org')::bigint END,
            NEW.kind, NEW.at);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER casework_caseevent_to_scoreevent
    AFTER INSERT ON casework_caseevent
    FOR EACH ROW WHEN (NEW.kind IN ({KIND_LIST}))
    EXECUTE FUNCTION casework_caseevent_to_scoreevent();
"""


def _postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("casework", "0028_scoresnapshot_key_day_primary_key")]

    operations = [
        migrations.RunPython(_postgresql(STATEMENT_TRIGGER), _postgresql(ROW_TRIGGER)),
    ]
