"""`python -m bench notify --count 10000`: notifications through the outbox and a real worker.

It creates its own database (BENCH_NOTIFY_DATABASE_URL, dropped and created
afresh), migrates it and seeds one organisation with a handler who hears
in-app and by e-mail, and a few hundred cases. It starts a real Celery
worker (``celery -A config worker``) on a queue of its own against the
broker in CELERY_BROKER_URL (Redis by default), with the console e-mail and
SMS backends. Then it writes case events in transactions of ``--batch``
events; each transaction writes one outbox row per event through
``notifications.services.notify_events_bulk``, and after commit the events are
published, the worker fans them out to one row per recipient and channel
and delivers those. Two phases, both waiting until every
row is sent:

1. throughput: ``--count`` notifications written as fast as the producer can
   (more than the workers deliver), so the figure is the workers' maximum;
   latencies here are mostly time in the queue and are reported as
   ``saturated_p95_latency_ms``;
2. latency: ``--latency-count`` notifications offered open-loop at
   ``--rate`` per second (default: half the measured maximum), small
   transactions on a fixed schedule that does not wait for delivery, so the
   latency is the delivery path's own, not a queue's.

Printed (JSON lines on stdout; progress on stderr), in the ``notify`` line:

- ``app_rate``: the maximum, deliveries per second from the first commit to
  the last delivery of phase 1;
- ``offered_rate`` (the schedule), ``written_rate`` (what the producer
  achieved), ``delivered_rate`` and ``p95_latency_ms`` (and p50, p99): phase 2,
  from the commit of an event to the delivery of each of its rows;
- ``reference_rate``: the reference transition (reference/transition.sql,
  which writes one outbox row per transaction) run by pgbench on the same
  server in the same run, and ``ratio`` = app_rate / reference_rate;
- ``peak_rss_mb``: the larger of this process and the worker's.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ._common import REFERENCE_DIR, emit, progress

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_notify"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parent.parent


def recreate_database(url: str) -> None:
    from urllib.parse import urlparse, urlunparse

    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"BENCH_NOTIFY_DATABASE_URL must name a plain database, not {name!r}")
    conn = psycopg2.connect(urlunparse(parts._replace(path="/postgres")))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def seed(cases: int):
    """One organisation, its handler (in-app + e-mail), a youth, and ``cases`` cases."""
    from casework.models import Case, Category, Membership, Organisation, User
    from notifications.models import Preference

    org = Organisation.add_root(name="基准测试团委", level=1, region_code="440000")
    handler = User.objects.create(username="bench_handler", email="handler@bench.invalid")
    Membership.objects.create(user=handler, organisation=org, role="handler")
    Preference.objects.create(user=handler, inapp=True, email=True)
    youth = User.objects.create(username="bench_youth")
    category = Category.objects.get(code="study")
    Case.objects.bulk_create(
        [
            Case(
                youth=youth,
                category=category,
                region_code="440000",
                title="bench",
                description="bench",
                org=org,
            )
            for _ in range(cases)
        ]
    )
    return list(Case.objects.order_by("pk"))


def start_worker(db_url: str, broker: str, queue: str, concurrency: int, log: Path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker,
        NOTIFICATIONS_QUEUE=queue,
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        NOTIFICATIONS_SMS_BACKEND="notifications.channels.sms.ConsoleSMSBackend",
        LOG_LEVEL="WARNING",
        DJANGO_DEBUG="false",  # as in production: no query log, cached templates
        # Workers keep their database connection between tasks (docs/performance.md):
        # with the default 0 every delivery message pays for a new PostgreSQL backend.
        DATABASE_CONN_MAX_AGE=os.environ.get("DATABASE_CONN_MAX_AGE", "300"),
    )
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        queue,
        "-c",
        str(concurrency),
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        "--logfile",
        str(log),
    ]
    # The console backends print every message: that output goes nowhere.
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the worker exited: see {log}")
        if log.exists() and " ready." in log.read_text(errors="replace"):
            return process
        time.sleep(0.2)
    raise SystemExit(f"the worker did not start: see {log}")


def stop_worker(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def reference_rate(db_url: str, seconds: int) -> float | None:
    """Transactions per second of reference/transition.sql, one client (one outbox row each)."""
    schema, transition = REFERENCE_DIR / "schema.sql", REFERENCE_DIR / "transition.sql"
    if not (schema.exists() and transition.exists()):
        progress(f"no reference workload at {REFERENCE_DIR}")
        return None
    try:
        subprocess.run(
            ["psql", "-q", "-v", "cases=100000", "-d", db_url, "-f", str(schema)],
            check=True,
            capture_output=True,
        )
        done = subprocess.run(
            ["pgbench", "-n", "-f", str(transition), "-c", "1", "-T", str(seconds), db_url],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        progress(f"reference workload failed: {error}")
        return None
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    return round(float(match.group(1)), 1) if match else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _write(cases, first: int, size: int) -> list[int]:
    """One transaction of ``size`` events and their outbox rows; the event ids."""
    from django.db import transaction

    from casework.events import build_event
    from casework.models import Case, CaseEvent
    from notifications.services import notify_events_bulk

    with transaction.atomic():
        pairs = []
        touched = {}
        for i in range(first, first + size):
            case = cases[i % len(cases)]
            pairs.append((case, build_event(case, kind="sla_reminder", payload={"n": i})))
            touched[case.pk] = case
        CaseEvent.objects.bulk_create([event for _case, event in pairs])
        Case.objects.bulk_update(list(touched.values()), ["last_event_seq", "last_event_hash"])
        notify_events_bulk(pairs)
    return [event.pk for _case, event in pairs]


def produce(cases, events: int, batch: int, first: int = 0) -> dict[int, float]:
    """Write ``events`` events as fast as possible, ``batch`` per transaction; id -> commit time."""
    committed: dict[int, float] = {}
    written = 0
    while written < events:
        size = min(batch, events - written)
        ids = _write(cases, first + written, size)
        at = time.time()
        committed.update((pk, at) for pk in ids)
        written += size
    return committed


def produce_at_rate(
    cases, events: int, batch: int, rate: float, per_event: int, first: int
) -> dict[int, float]:
    """Open loop: transaction k starts at start + k * batch * per_event / rate, whatever
    the workers do (a late producer catches up without sleeping)."""
    committed: dict[int, float] = {}
    interval = batch * per_event / rate
    start = time.time()
    written = 0
    k = 0
    while written < events:
        wait = start + k * interval - time.time()
        if wait > 0:
            time.sleep(wait)
        size = min(batch, events - written)
        ids = _write(cases, first + written, size)
        at = time.time()
        committed.update((pk, at) for pk in ids)
        written += size
        k += 1
    return committed


def wait_delivered(event_ids, per_event: int, timeout: float) -> list[tuple[int, float]]:
    """Wait until every event in ``event_ids`` is fanned out and its ``per_event`` rows are
    sent; (event id, sent time in epoch seconds) per row."""
    from notifications.models import Notification

    ids = list(event_ids)
    expected = len(ids) * per_event
    deadline = time.monotonic() + timeout
    while True:
        sent = Notification.objects.filter(event_id__in=ids, status="sent").count()
        if sent >= expected:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sent} of {expected} delivered in {timeout}s")
        time.sleep(0.1)
    return [
        (event_id, at.timestamp())
        for event_id, at in Notification.objects.filter(event_id__in=ids).values_list(
            "event_id", "sent_at"
        )
    ]


def latency_figures(committed: dict[int, float], sent: list[tuple[int, float]]) -> dict:
    """``committed``: event id -> commit time; ``sent``: (event id, sent time) per row."""
    latencies = [(at - committed[event_id]) * 1000 for event_id, at in sent]
    first_commit = min(committed.values())
    last_commit = max(committed.values())
    last_sent = max(at for _event_id, at in sent)
    return {
        "rate": len(sent) / (last_sent - first_commit),
        "written_rate": len(sent) / max(last_commit - first_commit, 1e-6),
        "p50": round(percentile(latencies, 0.50), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "p99": round(percentile(latencies, 0.99), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench notify", description=__doc__)
    parser.add_argument("--count", type=int, default=10000, help="notifications, phase 1")
    parser.add_argument("--batch", type=int, default=50, help="events per transaction, phase 1")
    parser.add_argument(
        "--latency-count", type=int, default=None, help="notifications, phase 2 (default: count)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="offered notifications/s, phase 2 (default: max/2)"
    )
    parser.add_argument(
        "--latency-batch", type=int, default=25, help="events per transaction, phase 2"
    )
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--reference-seconds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    db_url = os.environ.get("BENCH_NOTIFY_DATABASE_URL", DEFAULT_URL)
    broker = os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER
    queue = f"bench-notify-{uuid.uuid4().hex[:8]}"
    progress(f"database {db_url}, broker {broker}, queue {queue}")
    recreate_database(db_url)
    # Personal fields are encrypted at rest; the worker runs with DEBUG off, where no
    # development key applies, so this run uses a fresh key of its own (both processes).
    if not os.environ.get("FIELD_ENCRYPTION_KEYS"):
        from cryptography.fernet import Fernet

        os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ.update(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker,
        NOTIFICATIONS_QUEUE=queue,
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        DJANGO_SETTINGS_MODULE="config.settings.base",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    cases = seed(args.cases)
    from notifications.models import Notification

    per_event = 2  # the handler: in-app and e-mail
    events = -(-args.count // per_event)
    latency_events = -(-(args.latency_count or args.count) // per_event)

    with tempfile.TemporaryDirectory() as tmp:
        worker = start_worker(db_url, broker, queue, args.concurrency, Path(tmp) / "worker.log")
        try:
            progress(f"phase 1: writing {events} events ({events * per_event} notifications)")
            started = time.time()
            committed = produce(cases, events, args.batch)
            produced = time.time()
            progress(f"written in {produced - started:.1f}s; waiting for delivery")
            saturated = latency_figures(
                committed, wait_delivered(committed, per_event, args.timeout)
            )
            offered = args.rate or round(saturated["rate"] / 2)
            progress(f"phase 2: {latency_events * per_event} notifications offered at {offered}/s")
            paced = produce_at_rate(
                cases, latency_events, args.latency_batch, offered, per_event, first=events
            )
            measured = latency_figures(paced, wait_delivered(paced, per_event, args.timeout))
        finally:
            stop_worker(worker)

    not_sent = Notification.objects.exclude(status="sent").count()
    progress("running the reference transition for comparison")
    reference = reference_rate(db_url, args.reference_seconds)
    emit(
        bench="notify",
        count=len(committed) * per_event,
        app_rate=round(saturated["rate"], 1),
        saturated_p50_latency_ms=saturated["p50"],
        saturated_p95_latency_ms=saturated["p95"],
        produce_rate=round(len(committed) * per_event / (produced - started), 1),
        latency_count=len(paced) * per_event,
        offered_rate=offered,
        written_rate=round(measured["written_rate"], 1),
        delivered_rate=round(measured["rate"], 1),
        p50_latency_ms=measured["p50"],
        p95_latency_ms=measured["p95"],
        p99_latency_ms=measured["p99"],
        not_sent=not_sent,
        worker_concurrency=args.concurrency,
        worker_conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "300")),
        broker=broker.split("://")[0],
        reference_rate=reference,
        ratio=round(saturated["rate"] / reference, 3) if reference else None,
    )
    return 0
