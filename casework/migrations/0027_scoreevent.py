"""The counted timeline events on narrow rows of their own (``ScoreEvent``), for the full
score recompute (docs/scores.md, "Keeping scores current").

The recompute's event pass read the whole timeline (every event, the widest table)
and joined it with every case for its category. Now the database writes one narrow
row per counted event (arrivals, escalations, reopens) with the case's category:

- an ``AFTER INSERT`` row trigger on the timeline, whose ``WHEN`` lets every other
  kind of event pass untouched, adds the row in the statement that appends the event,
  whatever appended it (a service, the SLA sweep's batch statement, ``COPY``). It
  reads the case's category by its primary key; a counted event whose case does not
  exist (yet) is refused (the category column is NOT NULL), never silently left out;
- the function of migration 0024 that moves the attribution copies with a
  re-categorised case now moves these rows too (PostgreSQL; by the event ids of the
  case, through the timeline's (case, seq) index);
- the rows of the existing timeline are filled here, with the timeline locked
  against writes between the fill and the trigger (PostgreSQL).

Planner statistics (PostgreSQL, as migration 0014 gave the timeline): the event pass
groups these rows by (holder, organisation left, category, kind), tens of thousands of
groups; with the columns' joint distinct count the planner expects about as many and
aggregates in parallel. The timeline's statistics of 0014 served only the event pass
and go.

SQLite gets the same insert trigger (the recompute runs the same text on both).
The kinds are ``casework.services.scores.COUNTED_EVENT_KINDS`` at the time of this
migration; tests/casework/test_scores_recompute.py checks that they still agree.
"""

from django.db import migrations, models

KINDS = ("delegated", "escalated", "reassigned", "routed", "transferred", "disputed")
KIND_LIST = ", ".join(f"'{kind}'" for kind in KINDS)

FILL_POSTGRESQL = f"""
INSERT INTO casework_scoreevent (event_id, category_id, org_id, from_org_id, kind, at)
SELECT e.id, c.category_id, e.org_id,
       CASE WHEN e.kind = 'escalated' THEN (e.payload->>'from_org')::bigint END, e.kind, e.at
FROM casework_caseevent e JOIN casework_case c ON c.id = e.case_id
WHERE e.kind IN ({KIND_LIST})
"""

FILL_SQLITE = f"""
INSERT INTO casework_scoreevent (event_id, category_id, org_id, from_org_id, kind, at)
SELECT e.id, c.category_id, e.org_id,
       CASE WHEN e.kind = 'escalated' THEN CAST(json_extract(e.payload, '$.from_org') AS INTEGER)
       END, e.kind, e.at
FROM casework_caseevent e JOIN casework_case c ON c.id = e.case_id
WHERE e.kind IN ({KIND_LIST})
"""

TRIGGER_POSTGRESQL = f"""
CREATE OR REPLACE FUNCTION casework_caseevent_to_scoreevent() RETURNS trigger AS $$
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

CREATE OR REPLACE FUNCTION casework_scoreshare_follows_category() RETURNS trigger AS $$
BEGIN
    UPDATE casework_scoreshare SET category_id = NEW.category_id WHERE case_id = NEW.id;
    UPDATE casework_scoreevent SET category_id = NEW.category_id
        WHERE event_id IN (SELECT e.id FROM casework_caseevent e WHERE e.case_id = NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

REMOVE_POSTGRESQL = """
DROP TRIGGER IF EXISTS casework_caseevent_to_scoreevent ON casework_caseevent;
DROP FUNCTION IF EXISTS casework_caseevent_to_scoreevent();

CREATE OR REPLACE FUNCTION casework_scoreshare_follows_category() RETURNS trigger AS $$
BEGIN
    UPDATE casework_scoreshare SET category_id = NEW.category_id WHERE case_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

TRIGGER_SQLITE = f"""
CREATE TRIGGER casework_caseevent_to_scoreevent
    AFTER INSERT ON casework_caseevent
    FOR EACH ROW WHEN NEW.kind IN ({KIND_LIST})
BEGIN
    INSERT INTO casework_scoreevent (event_id, category_id, org_id, from_org_id, kind, at)
    VALUES (NEW.id, (SELECT c.category_id FROM casework_case c WHERE c.id = NEW.case_id),
            NEW.org_id,
            CASE WHEN NEW.kind = 'escalated'
                 THEN CAST(json_extract(NEW.payload, '$.from_org') AS INTEGER) END,
            NEW.kind, NEW.at);
END
"""


STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS scoreevent_group_stats (ndistinct) "
    "ON org_id, from_org_id, category_id, kind FROM casework_scoreevent"
)
OLD_STATISTICS = (
    "CREATE STATISTICS IF NOT EXISTS caseevent_counted_stats (ndistinct) "
    "ON org_id, kind, (CASE WHEN kind = 'escalated' THEN (payload->>'from_org')::bigint END) "
    "FROM casework_caseevent"
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # No event may be appended between the fill and the trigger.
        schema_editor.execute("LOCK TABLE casework_caseevent IN SHARE ROW EXCLUSIVE MODE")
        schema_editor.execute(FILL_POSTGRESQL)
        schema_editor.execute(TRIGGER_POSTGRESQL)
        schema_editor.execute(STATISTICS)
        schema_editor.execute("DROP STATISTICS IF EXISTS caseevent_counted_stats")
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(FILL_SQLITE)
        schema_editor.execute(TRIGGER_SQLITE)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE_POSTGRESQL)
        schema_editor.execute("DROP STATISTICS IF EXISTS scoreevent_group_stats")
        schema_editor.execute(OLD_STATISTICS)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS casework_caseevent_to_scoreevent")


class Migration(migrations.Migration):
    dependencies = [("casework", "0026_case_urgency_known")]

    operations = [
        migrations.CreateModel(
            name="ScoreEvent",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="casework.caseevent",
                    ),
                ),
                ("category_id", models.BigIntegerField()),
                ("org_id", models.BigIntegerField(null=True)),
                ("from_org_id", models.BigIntegerField(null=True)),
                ("kind", models.CharField(max_length=40)),
                ("at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "counted score event",
                "verbose_name_plural": "counted score events",
            },
        ),
        migrations.RunPython(install, remove),
    ]
