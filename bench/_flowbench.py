"""What the ``transition`` and ``task`` benchmarks share.

One database with the project's tables (``sweep.load_project``: about 5,000
organisations, ``--cases`` cases, an open flow task per open case) and the
reference tables (reference/schema.sql) side by side. For each client count,
pgbench runs reference/transition.sql with that many clients, then the same
number of client *processes* run the application's operation for the same
number of seconds. The ratio is the application's rate over pgbench's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ._common import REFERENCE_DIR, emit, progress
from .sweep import _maintenance_url, load_project, load_reference, recreate_database, setup_django

PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
REFERENCE_CASES = 100_000  # reference/transition.sql: random(1, 100000)


def parse_args(name: str, doc: str, argv, default_url: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc)
    parser.add_argument("--cases", type=int, default=100_000, help="cases loaded (100,000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each run (20)")
    parser.add_argument(
        "--clients", default="1,8", help="comma-separated client counts (processes), e.g. 1,8"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of an earlier run instead of loading a new one",
    )
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.url = os.environ.get("BENCH_DATABASE_URL", default_url)
    return args


def prepare(args) -> None:
    """A fresh database with the project's and the reference tables (or the kept one)."""
    if args.reuse:
        setup_django(args.url)
        return
    progress(f"creating database {_maintenance_url(args.url)[1]}")
    recreate_database(args.url)
    setup_django(args.url)
    from django.core.management import call_command
    from django.db import connection

    progress("migrating")
    call_command("migrate", verbosity=0)
    load_project(args.cases, datetime.now(UTC))
    from casework.models import Membership

    # Every handler also verifies for their organisation, so one person can take a
    # case through every human step.
    table = Membership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO "{table}" (user_id, organisation_id, role, created_at)
                SELECT user_id, organisation_id, 'verifier', created_at
                FROM "{table}" WHERE role = 'handler'"""
        )
    # transition.sql picks its case among ids 1..100,000: the reference keeps that size.
    load_reference(args.url, REFERENCE_CASES)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def pgbench_tps(url: str, clients: int, seconds: float) -> float:
    """reference/transition.sql under pgbench with ``clients`` clients; its tps."""
    result = subprocess.run(
        [
            PGBENCH,
            "-n",
            "-f",
            str(REFERENCE_DIR / "transition.sql"),
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(max(1, round(seconds))),
            url,
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    if not match:
        raise SystemExit(f"pgbench said:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def _child(worker, index, clients, seconds, ready, go, results):
    from django.db import connection

    try:
        step = worker(index, clients)  # setup, untimed: returns the operation to repeat
        ready.put(index)
        go.wait()
        done = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            step()
            done += 1
        elapsed = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results.put((index, done, elapsed, rss, None))
    except BaseException as exc:  # reported by the parent
        results.put((index, 0, 0.0, 0.0, repr(exc)))
        raise
    finally:
        connection.close()


def run_clients(worker: Callable, clients: int, seconds: float) -> tuple[float, float]:
    """Run ``worker`` in ``clients`` forked processes for ``seconds``; (rate, peak RSS MiB).

    ``worker(index, clients)`` runs in the child, prepares (untimed) and returns
    a function that performs one operation.
    """
    from django.db import connections

    connections.close_all()  # each child opens its own connection
    ctx = multiprocessing.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_child, args=(worker, i, clients, seconds, ready, go, results))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    go.set()
    outcomes = [results.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    errors = [o[4] for o in outcomes if o[4]]
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    rate = sum(done / elapsed for _, done, elapsed, _, _ in outcomes if elapsed)
    return rate, max(o[3] for o in outcomes)


def measure(bench: str, args, worker: Callable, **extra) -> None:
    """For each client count: pgbench's reference rate, then the application's; one line each."""
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for clients in args.clients:
        progress(f"{bench}: reference with {clients} client(s), {args.seconds:.0f} s")
        reference = pgbench_tps(args.url, clients, args.seconds)
        progress(f"{bench}: application with {clients} process(es), {args.seconds:.0f} s")
        rate, child_peak = run_clients(worker, clients, args.seconds)
        emit(
            bench=bench,
            clients=clients,
            seconds=args.seconds,
            rate=round(rate, 1),
            reference_rate=round(reference, 1),
            ratio=round(rate / reference, 3) if reference else None,
            load_avg=[round(x, 2) for x in os.getloadavg()],
            peak_rss_mb=round(max(own_peak, child_peak), 1),
            **extra,
        )
