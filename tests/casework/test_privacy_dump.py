"""A pg_dump of the database shows none of the personal values written through the services."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.db import connection

from tests.casework.privacy_story import SECRETS, run_story

pytestmark = [
    pytest.mark.postgres,
    # Committed for real, so pg_dump (another connection) sees the rows; the
    # seeded categories come back after the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def pg_env() -> tuple[list[str], dict]:
    """pg_dump's connection arguments for Django's (test) database."""
    s = connection.settings_dict
    args = ["-h", s.get("HOST") or "127.0.0.1", "-p", str(s.get("PORT") or 5432)]
    args += ["-U", s.get("USER") or "postgres"]
    env = {**os.environ}
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    return args, env


def pg_dump_text() -> str:
    assert shutil.which("pg_dump"), "pg_dump is not installed"
    args, env = pg_env()
    done = subprocess.run(
        ["pg_dump", *args, "--no-owner", "--data-only", connection.settings_dict["NAME"]],
        env=env,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8")


def test_a_database_dump_holds_no_plaintext_personal_data(tree, client):
    # given the whole story of a minor's case, written through services and pages
    case = run_story(tree, client)
    # when the database is dumped
    dump = pg_dump_text()
    # then the dump is real (it has the case) but none of the personal values
    assert case.reference in dump and "casework_case" in dump
    leaked = sorted(name for name, value in SECRETS.items() if value in dump)
    assert leaked == []
