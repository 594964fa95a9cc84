"""What the ``transition`` and ``task`` benchmarks share.

One database with the project's tables (``sweep.load_project``: about 5,000
organisations, ``--cases`` cases, an open flow task per open case) and the
reference tables (reference/schema.sql) side by side. For each client count,
pgbench runs reference/transition.sql with that many clients and the same
number of client *processes* run the application's operation, each for
``--seconds`` in all, taking turns in ``--rounds`` rounds (pgbench's share of a
round, then the application's). The ratio is the application's rate over
pgbench's. Taking turns puts both under the same conditions of the machine: on
a shared virtual machine the reference's rate alone moves by a factor of two
between consecutive ten-second runs, and one long run of each compared two
different machines.
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
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="seconds each side runs over all rounds, in whole seconds a round (20)",
    )
    parser.add_argument(
        "--clients", default="1,8", help="comma-separated client counts (processes), e.g. 1,8"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="rounds in which the reference and the application take turns (4)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of an earlier run instead of loading a new one",
    )
    args = parser.parse_args(argv)
    try:
        args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--clients: comma-separated whole numbers, not {args.clients!r}")
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients: at least one client count, each 1 or more")
    if args.rounds < 1:
        parser.error("--rounds: 1 or more")
    if args.seconds / args.rounds < 1:
        parser.error("--seconds: at least one second per round")
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


def _child(worker, index, clients, seconds, ready, gos, stop, results):
    """One client process: prepare (untimed), then for each round wait for its turn
    and repeat the operation for ``seconds``; each round's count goes to ``results``."""
    from django.db import connection

    prepared = False
    try:
        step = worker(index, clients)  # setup, untimed: returns the operation to repeat
        ready.put((index, None))
        prepared = True
        for go in gos:
            go.wait()
            if stop.is_set():
                return
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
        if prepared:
            results.put((index, 0, 0.0, 0.0, repr(exc)))
        else:
            ready.put((index, repr(exc)))
        raise
    finally:
        connection.close()


class Clients:
    """``clients`` forked processes running ``worker``, one timed round at a time.

    ``worker(index, clients)`` runs in the child, prepares (untimed) and returns
    a function that performs one operation. The processes are started (and
    prepared) once; between rounds they wait, their connections idle.
    """

    def __init__(self, worker: Callable, clients: int, seconds: float, rounds: int = 1):
        from django.db import connections

        connections.close_all()  # each child opens its own connection
        ctx = multiprocessing.get_context("fork")
        self.seconds = seconds
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        self.gos = [ctx.Event() for _ in range(rounds)]
        self.stopping = ctx.Event()
        self.round = 0
        self.procs = [
            ctx.Process(
                target=_child,
                args=(
                    worker,
                    i,
                    clients,
                    seconds,
                    self.ready,
                    self.gos,
                    self.stopping,
                    self.results,
                ),
            )
            for i in range(clients)
        ]
        for p in self.procs:
            p.start()
        errors = [error for _i, error in (self.ready.get(timeout=600) for _ in self.procs)]
        if any(errors):
            self.stop()
            raise SystemExit(f"a client failed: {next(e for e in errors if e)}")

    def run_round(self) -> list[tuple[int, float, float]]:
        """The next round: (operations, seconds, peak RSS MiB) of each client."""
        self.gos[self.round].set()
        self.round += 1
        outcomes = sorted(
            (self.results.get(timeout=self.seconds + 600) for _ in self.procs),
            key=lambda outcome: outcome[0],  # by client, the same order every round
        )
        errors = [o[4] for o in outcomes if o[4]]
        if errors:
            self.stop()
            raise SystemExit(f"a client failed: {errors[0]}")
        return [(done, elapsed, rss) for _i, done, elapsed, rss, _e in outcomes]

    def stop(self) -> None:
        self.stopping.set()
        for go in self.gos:
            go.set()  # a client still waiting for a round ends without running it
        for p in self.procs:
            p.join()


def rate_of(rounds: list[list[tuple[int, float, float]]]) -> float:
    """Operations per second of all clients over all rounds: each client's count over
    its own timed seconds, summed over the clients."""
    per_client = zip(*rounds, strict=True)
    return sum(
        sum(done for done, _e, _r in client) / elapsed
        for client in per_client
        if (elapsed := sum(e for _d, e, _r in client))
    )


def measure(bench: str, args, worker: Callable, **extra) -> None:
    """For each client count: pgbench's reference rate and the application's, taking
    turns in ``args.rounds`` rounds; one JSON line each."""
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rounds = args.rounds
    # pgbench times whole seconds: both sides run the same whole seconds a round.
    share = max(1, round(args.seconds / rounds))
    for clients in args.clients:
        progress(f"{bench}: preparing {clients} client process(es)")
        group = Clients(worker, clients, share, rounds)
        references, outcomes = [], []
        try:
            for number in range(1, rounds + 1):
                progress(
                    f"{bench}: round {number}/{rounds}: reference with {clients} client(s), "
                    f"then the application, {share} s each"
                )
                references.append(pgbench_tps(args.url, clients, share))
                outcomes.append(group.run_round())
        finally:
            group.stop()
        reference = sum(references) / len(references)
        rate = rate_of(outcomes)
        emit(
            bench=bench,
            clients=clients,
            seconds=share * rounds,
            rounds=rounds,
            rate=round(rate, 1),
            reference_rate=round(reference, 1),
            ratio=round(rate / reference, 3) if reference else None,
            round_ratios=[
                round(rate_of([outcome]) / ref, 3) if ref else None
                for outcome, ref in zip(outcomes, references, strict=True)
            ],
            load_avg=[round(x, 2) for x in os.getloadavg()],
            peak_rss_mb=round(
                max(own_peak, *(rss for outcome in outcomes for _d, _e, rss in outcome)), 1
            ),
            **extra,
        )
