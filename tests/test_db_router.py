"""The read-replica router (config/db_router.py): reads go to the replica only when safe."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import RequestFactory

from casework.models import Case, Organisation, User
from config import db_router
from config.db_router import (
    PIN_COOKIE,
    PrimaryReplicaRouter,
    ReplicaPinMiddleware,
    replica_reads,
    use_replica,
)

ROOT = Path(__file__).resolve().parents[1]
router = PrimaryReplicaRouter()


@pytest.fixture
def replica(monkeypatch):
    """A configured ``replica`` alias, as DATABASE_REPLICA_URL gives in production."""
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)


def test_reads_stay_on_the_primary_outside_a_read_only_block(replica):
    assert router.db_for_read(Case) == "default"


def test_read_only_block_reads_the_replica(replica):
    with replica_reads():
        assert router.db_for_read(Case) == "replica"
        assert router.db_for_read(Organisation) == "replica"


def test_sign_in_models_always_read_the_primary(replica):
    with replica_reads():
        assert router.db_for_read(Session) == "default"
        assert router.db_for_read(User) == "default"


def test_the_dashboard_rollup_reads_the_primary(replica):
    # its tables are unlogged (casework migration 0022): a standby has no rows for them
    from casework.models import DashboardOpenStats, DashboardRollup, DashboardWeekStats

    with replica_reads():
        for model in (DashboardRollup, DashboardOpenStats, DashboardWeekStats):
            assert router.db_for_read(model) == "default"


def test_without_a_replica_alias_everything_reads_the_primary():
    with replica_reads():
        assert router.db_for_read(Case) == "default"


def test_after_a_write_the_block_reads_the_primary(replica):
    with replica_reads():
        assert router.db_for_write(Case) == "default"
        assert router.db_for_read(Case) == "default"


def test_a_write_in_an_inner_block_pins_the_outer_one(replica):
    with replica_reads() as outer:
        with replica_reads():
            router.db_for_write(Case)
        assert outer.wrote
        assert router.db_for_read(Case) == "default"


@pytest.mark.django_db
def test_reads_inside_a_transaction_go_to_the_primary(replica):
    # pytest-django runs this test inside atomic(), as a service's transaction would.
    with replica_reads():
        assert router.db_for_read(Case) == "default"


def test_migrations_run_only_on_the_primary():
    assert router.allow_migrate("default", "casework")
    assert not router.allow_migrate("replica", "casework")


def _seen_by(view, cookies=None):
    request = RequestFactory().get("/stats/")
    request.COOKIES.update(cookies or {})
    return view(request).content.decode()


def test_use_replica_view_reads_the_replica_unless_the_browser_just_wrote(replica):
    @use_replica
    def view(request):
        return HttpResponse(router.db_for_read(Case))

    assert _seen_by(view) == "replica"
    assert _seen_by(view, {PIN_COOKIE: "1"}) == "default"


def test_middleware_pins_a_browser_to_the_primary_after_a_post(replica, settings):
    settings.DATABASE_REPLICA_PIN_SECONDS = 7
    middleware = ReplicaPinMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()

    posted = middleware(factory.post("/my/new/"))
    assert posted.cookies[PIN_COOKIE]["max-age"] == 7
    assert PIN_COOKIE not in middleware(factory.get("/stats/")).cookies


def test_middleware_pins_after_a_write_during_a_get(replica):
    def view(request):
        router.db_for_write(Case)  # e.g. an access log row written by a GET
        return HttpResponse("ok")

    assert PIN_COOKIE in ReplicaPinMiddleware(view)(RequestFactory().get("/")).cookies


def _settings_with(env: dict) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'aliases': sorted(s.DATABASES), 'routers': s.DATABASE_ROUTERS, "
        "'middleware': s.MIDDLEWARE, 'cursors': "
        "[a.get('DISABLE_SERVER_SIDE_CURSORS', False) for a in s.DATABASES.values()]}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    base |= {"DJANGO_SETTINGS_MODULE": "config.settings.base"} | env
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_database_replica_url_turns_the_router_on():
    plain = _settings_with({})
    assert plain["aliases"] == ["default"]
    assert plain["routers"] == []
    assert "config.db_router.ReplicaPinMiddleware" not in plain["middleware"]

    replicated = _settings_with(
        {
            "DATABASE_URL": "postgres://app@primary:5432/youthvoice",
            "DATABASE_REPLICA_URL": "postgres://app@replica:5432/youthvoice",
            "DATABASE_PGBOUNCER": "true",
        }
    )
    assert replicated["aliases"] == ["default", "replica"]
    assert replicated["routers"] == ["config.db_router.PrimaryReplicaRouter"]
    middleware = replicated["middleware"]
    sessions = middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    assert middleware[sessions + 1] == "config.db_router.ReplicaPinMiddleware"
    assert replicated["cursors"] == [True, True]
