"""`python -m bench sweep`: the SLA sweep against the reference sweep, on PostgreSQL.

It creates its own database (BENCH_DATABASE_URL, dropped and created afresh),
migrates it, loads an organisation tree of about 5,000 organisations and
``--cases`` cases into the project's own tables (COPY, columns taken from the
models, streamed so memory stays flat), with 1% of the open cases overdue and
an open flow task for every open case. It then loads the reference schema
with the same number of cases and times, in the same run:

- the reference sweep (reference/sweep.sql, inside BEGIN … ROLLBACK);
- one full application sweep (``casework.services.sla_sweep``): events,
  outbox rows, case updates and task moves for every overdue case;
- a second application sweep with nothing due.

Each result is one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse, urlunparse

from ._common import REFERENCE_DIR, emit, progress

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_sweep"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # treebeard's MP_Node alphabet
OPEN_STATES_CYCLE = ("submitted", "verifying", "coordinating", "resolved", "closed")


# --- database setup -----------------------------------------------------------


def _maintenance_url(url: str) -> tuple[str, str]:
    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"BENCH_DATABASE_URL must name a plain database, not {name!r}")
    return urlunparse(parts._replace(path="/postgres")), name


def recreate_database(url: str) -> None:
    import psycopg2

    admin_url, name = _maintenance_url(url)
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    # Delivery is the workers' job, not the sweep's: the outbox relay's messages go to an
    # in-memory broker instead of running in this process (the embedded eager mode).
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    # Personal fields are encrypted at rest: a fresh key for this run's own database.
    if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # no query log growing with every statement


# --- COPY of model rows -------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


class _LineStream(io.RawIOBase):
    """A file-like reader over an iterator of rows, for ``copy_expert`` (nothing held whole)."""

    def __init__(self, rows):
        self._rows = rows
        self._buffer = b""

    def readable(self):
        return True

    def read(self, size=-1):
        while size < 0 or len(self._buffer) < size:
            chunk = []
            for _ in range(2000):
                row = next(self._rows, None)
                if row is None:
                    break
                chunk.append("\t".join(_text(v) for v in row))
            if not chunk:
                break
            self._buffer += ("\n".join(chunk) + "\n").encode("utf-8")
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def copy_model_rows(model, overrides: dict, count: int, row_values) -> None:
    """COPY ``count`` rows of ``model``: every concrete column but the id.

    ``row_values(i)`` returns a dict of per-row values; other columns take
    ``overrides`` or the field's default (or NULL/empty when it has none), so a
    column someone adds to the model later still loads.
    """
    from django.db import connection
    from django.db.models import NOT_PROVIDED

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    constants = {}
    for field in fields:
        if field.attname in overrides:
            constants[field.attname] = overrides[field.attname]
        elif field.default is not NOT_PROVIDED:
            value = field.get_default()
            constants[field.attname] = field.get_prep_value(value) if value is not None else None
        elif field.null:
            constants[field.attname] = None
        elif field.get_internal_type() in ("CharField", "TextField", "SlugField"):
            constants[field.attname] = ""
        else:
            constants[field.attname] = None  # filled per row, or COPY says which column
    names = [f.attname for f in fields]

    def rows():
        for i in range(count):
            values = row_values(i)
            yield [values[n] if n in values else constants[n] for n in names]

    columns = ", ".join(f'"{f.column}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN', _LineStream(rows())
        )


def _segment(n: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, len(ALPHABET))
        digits = ALPHABET[r] + digits
    return digits.rjust(4, "0")


def build_tree(cities: int, districts: int, branches: int) -> list[tuple[str, int, int, str]]:
    """(path, depth, numchild, region) for a province > cities > districts > branches tree."""
    nodes = [("0001", 1, cities, "440000")]
    for c in range(1, cities + 1):
        city = "0001" + _segment(c)
        nodes.append((city, 2, districts, f"44{c:02d}00"))
        for d in range(1, districts + 1):
            district = city + _segment(d)
            nodes.append((district, 3, branches, f"44{c:02d}{d:02d}"))
            for b in range(1, branches + 1):
                nodes.append((district + _segment(b), 4, 0, f"44{c:02d}{d:02d}"))
    return nodes


def load_org_tree(tree: list[tuple[str, int, int, str]]) -> None:
    """COPY the organisation tree built by ``build_tree`` into the project's table."""
    from django.db import transaction

    from casework.models import Organisation

    progress(f"loading {len(tree)} organisations")
    with transaction.atomic():
        copy_model_rows(
            Organisation,
            {"kind": "league", "capacity": 100000, "is_active": True, "routes_by_region": True},
            len(tree),
            lambda i: {
                "path": tree[i][0],
                "depth": tree[i][1],
                "numchild": tree[i][2],
                "level": tree[i][1],
                "region_code": tree[i][3],
                "name": f"org {tree[i][0]}",
            },
        )


def load_project(cases: int, now: datetime) -> dict:
    """Organisations, staff, youth, cases and flow tasks in the project's tables."""
    from django.db import connection, transaction

    from casework.models import Case, Category, Membership, Organisation, User
    from workflows.flows import CaseFlow
    from workflows.models import CaseProcess, CaseTask

    tree = build_tree(cities=21, districts=10, branches=23)
    load_org_tree(tree)
    org_ids = list(Organisation.objects.order_by("path").values_list("pk", flat=True))
    org_levels = list(Organisation.objects.order_by("path").values_list("level", flat=True))
    staff = len(org_ids)
    youths = 1000
    progress(f"loading {staff} staff and {youths} youth")
    with transaction.atomic():
        copy_model_rows(
            User,
            {"password": "!", "is_active": True, "is_staff": False, "is_superuser": False},
            staff + youths,
            lambda i: {
                "username": f"staff{i}" if i < staff else f"youth{i - staff}",
                "date_joined": now,
            },
        )
    user_ids = list(User.objects.order_by("pk").values_list("pk", flat=True))
    staff_ids, youth_ids = user_ids[:staff], user_ids[staff:]
    with transaction.atomic():
        copy_model_rows(
            Membership,
            {"created_at": now},
            staff,
            lambda i: {
                "user_id": staff_ids[i],
                "organisation_id": org_ids[i],
                "role": "handler" if org_levels[i] >= 3 else "supervisor",
            },
        )
    category_ids = list(Category.objects.values_list("pk", flat=True))

    # Due times follow reference/schema.sql: one open case in a hundred is overdue.
    def case_row(i: int) -> dict:
        state = OPEN_STATES_CYCLE[i % 5]
        is_open = state != "closed"
        offset = ((i // 5) % 100 - 1) * 26000 + 3600
        due = now + timedelta(seconds=offset) if is_open else None
        return {
            "reference": f"B{i:09d}",
            "public_token": f"bench-{i}",
            "youth_id": youth_ids[i % youths],
            "category_id": category_ids[i % len(category_ids)],
            "org_id": org_ids[i % len(org_ids)],
            "state": state,
            "stage_due_at": due,
            "stage_started_at": now - timedelta(days=1) if is_open else None,
            "remind_at": now + timedelta(seconds=offset * 3 // 4)
            if is_open and offset > 0
            else None,
            "stage_reminded": is_open and offset <= 0,
            "closed_at": now - timedelta(days=2) if not is_open else None,
        }

    progress(f"loading {cases} cases")
    started = time.perf_counter()
    with transaction.atomic():
        copy_model_rows(
            Case,
            {
                "title": "bench",
                "description": "bench",
                "region_code": "440101",
                "urgency": "normal",
                "submitted_at": now - timedelta(days=3),
                "updated_at": now,
                "version": 1,
            },
            cases,
            case_row,
        )
    progress(f"  cases loaded in {time.perf_counter() - started:.1f} s")

    progress("loading one process and one open task per open case")
    flow_class = CaseProcess._meta.get_field("flow_class").get_prep_value(CaseFlow)
    task_field = CaseTask._meta.get_field("flow_task")
    node_names = {
        state: task_field.get_prep_value(CaseFlow.node_for_state(state))
        for state in OPEN_STATES_CYCLE[:4]
    }
    with connection.cursor() as cursor, transaction.atomic():
        # Set-based from the cases just loaded: no Python round trip per row. The tasks
        # go in the order of their cases, as an application writes them: a case's open
        # task is written when its stage starts (docs/performance.md, "Sweep: session
        # 5"); before, the hash join's order scattered the due cases' tasks over three
        # times as many pages.
        cursor.execute(
            f"""INSERT INTO "{CaseProcess._meta.db_table}" (flow_class, status, created, case_id)
                SELECT %s, 'NEW', %s, id FROM "{Case._meta.db_table}" WHERE state <> 'closed'""",
            [flow_class, now],
        )
        whens = " ".join(f"WHEN '{s}' THEN %s" for s in node_names)
        cursor.execute(
            f"""INSERT INTO "{CaseTask._meta.db_table}"
                   (flow_task, flow_task_type, status, created, token, case_id, org_id, process_id)
                SELECT CASE c.state {whens} END, 'HUMAN', 'NEW', %s, 'start', c.id, c.org_id, p.id
                FROM "{CaseProcess._meta.db_table}" p
                JOIN "{Case._meta.db_table}" c ON c.id = p.case_id
                ORDER BY c.id""",
            [*node_names.values(), now],
        )
        cursor.execute("ANALYZE")
    return {"orgs": len(org_ids)}


# --- the reference workload -----------------------------------------------------


def load_reference(url: str, cases: int) -> None:
    progress(f"loading reference/schema.sql with {cases} cases")
    subprocess.run(
        [
            "psql",
            url,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"cases={cases}",
            "-f",
            str(REFERENCE_DIR / "schema.sql"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def time_reference_sweep() -> tuple[int, float]:
    from django.db import connection, transaction

    sql = (REFERENCE_DIR / "sweep.sql").read_text()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ref_case WHERE status <> 'closed' AND due_at < now()")
        due = cursor.fetchone()[0]
        cursor.execute("CHECKPOINT")
        started = time.perf_counter()
        # Committed, as the application's batches are: the work counts once it is durable.
        with transaction.atomic():
            cursor.execute(sql)
        seconds = time.perf_counter() - started
    return due, seconds


# --- main -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--workers", type=int, default=None, help="SLA_SWEEP_WORKERS: threads for breach batches"
    )
    args = parser.parse_args(argv)

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    progress(f"creating database {_maintenance_url(url)[1]}")
    recreate_database(url)
    setup_django(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    if args.workers:
        settings.SLA_SWEEP_WORKERS = args.workers
    progress("migrating")
    call_command("migrate", verbosity=0)
    now = datetime.now(UTC)
    load_project(args.cases, now)
    load_reference(url, args.cases)

    from casework.models import Case
    from casework.services import sla_sweep
    from casework.services.sweep import DEFAULT_WORKERS, breach_candidates

    due = breach_candidates(datetime.now(UTC)).count()
    progress(f"reference sweep (and the app sweep over {due} overdue cases)")
    ref_due, ref_seconds = time_reference_sweep()
    reference_rate = ref_due / ref_seconds

    # A worker has its modules imported and its calendar cached before its first sweep.
    import notifications.services  # noqa: F401
    import workflows.engine  # noqa: F401
    from workflows import sla

    sla.current_calendar()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    started = time.perf_counter()
    result = sla_sweep(batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    handled = result.escalated + result.critical
    app_rate = handled / seconds if seconds else 0.0
    moved_ok = _tasks_agree()
    emit(
        bench="sweep",
        cases=args.cases,
        overdue=due,
        escalated=result.escalated,
        critical=result.critical,
        batches=result.batches,
        batch_size=args.batch_size or getattr(settings, "SLA_SWEEP_BATCH_SIZE", 1000),
        workers=getattr(settings, "SLA_SWEEP_WORKERS", DEFAULT_WORKERS),
        seconds=round(seconds, 3),
        app_rate=round(app_rate, 1),
        reference_due=ref_due,
        reference_seconds=round(ref_seconds, 3),
        reference_rate=round(reference_rate, 1),
        ratio=round(app_rate / reference_rate, 3) if reference_rate else None,
        tasks_agree=moved_ok,
    )

    started = time.perf_counter()
    empty = sla_sweep(batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    emit(
        bench="sweep_empty",
        cases=args.cases,
        open_cases=Case.objects.filter(state__in=OPEN_STATES_CYCLE[:4]).count(),
        escalated=empty.escalated,
        seconds=round(seconds, 4),
    )
    return 0


def _tasks_agree() -> bool:
    """Every open task of an escalated case is held by its case's organisation."""
    from django.db.models import F

    from casework.models import Case
    from workflows.models import OPEN_TASK_STATUSES, CaseTask

    escalated = Case.objects.filter(escalation_count__gt=0)
    return not (
        CaseTask.objects.filter(case__in=escalated, status__in=OPEN_TASK_STATUSES)
        .exclude(org_id=F("case__org_id"))
        .exists()
    )
