"""Backup and restore as docs/operations.md describes: pg_dump -Fc, createdb, pg_restore.

The restored copy must verify (verify_timeline, run as a separate process
against it), hold the same number of rows in every table, keep the
append-only trigger that protects the timeline, and still decrypt with the
same keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings
from django.db import connection

from casework import crypto
from casework.models import Case
from casework.states import CaseState
from tests.casework.privacy_story import SECRETS, run_story
from tests.casework.steps import case_in
from tests.casework.test_privacy_dump import pg_env

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PROJECT = Path(__file__).resolve().parents[2]


def run(*command, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def row_counts(dsn: dict, tables: list[str]) -> dict[str, int]:
    with psycopg2.connect(**dsn) as conn, conn.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    conn.close()
    return counts


@pytest.fixture
def restored_name():
    name = f"{connection.settings_dict['NAME']}_restored"[:63]
    args, env = pg_env()
    run("dropdb", *args, "--if-exists", name, env=env)
    yield name
    result = run("dropdb", *args, "--if-exists", name, env=env)
    assert result.returncode == 0, result.stderr


def test_dump_restore_into_a_new_database_verifies_and_counts_match(
    tree, client, tmp_path, restored_name
):
    # given a database with a whole story and cases in several states
    story = run_story(tree, client)
    for state in (CaseState.ACCEPTED, CaseState.REJECTED, CaseState.CLOSED):
        case_in(tree, state)
    source = connection.settings_dict
    args, env = pg_env()
    # when it is dumped (custom format) and restored into a new database
    dump = tmp_path / "youthvoice.dump"
    done = run("pg_dump", *args, "-Fc", "--no-owner", "-f", str(dump), source["NAME"], env=env)
    assert done.returncode == 0, done.stderr
    assert run("createdb", *args, restored_name, env=env).returncode == 0
    done = run(
        "pg_restore",
        *args,
        "--no-owner",
        "--exit-on-error",
        "-d",
        restored_name,
        str(dump),
        env=env,
    )
    assert done.returncode == 0, done.stderr

    # then verify_timeline passes against the restored copy (a separate process)
    host, port = source.get("HOST") or "127.0.0.1", source.get("PORT") or 5432
    user = source.get("USER") or "postgres"
    child_env = {
        **env,
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{restored_name}",
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "CELERY_BROKER_URL": "",
    }
    verified = run(sys.executable, str(PROJECT / "manage.py"), "verify_timeline", env=child_env)
    assert verified.returncode == 0, verified.stderr
    assert f"All {Case.objects.count()} case timelines verify." in verified.stdout

    # and every table holds as many rows as the original
    tables = sorted(connection.introspection.table_names())
    dsn = {"host": host, "port": port, "user": user, "password": source.get("PASSWORD") or None}
    original = row_counts({**dsn, "dbname": source["NAME"]}, tables)
    copy = row_counts({**dsn, "dbname": restored_name}, tables)
    assert copy == original
    assert copy["casework_caseevent"] > 0 and copy["casework_case"] == Case.objects.count()

    # and the timeline is still append-only there, and the data still opens with the keys
    with psycopg2.connect(**dsn, dbname=restored_name) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'casework_caseevent'::regclass"
            " AND NOT tgisinternal"
        )
        assert cursor.fetchone()[0] >= 2
        cursor.execute("SELECT description FROM casework_case WHERE id = %s", [story.pk])
        token = cursor.fetchone()[0]
    conn.close()
    assert SECRETS["description"] not in token
    assert crypto.decrypt(token) == SECRETS["description"]
    assert os.path.getsize(dump) > 0
