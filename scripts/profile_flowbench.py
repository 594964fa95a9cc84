"""Profile the transition or task benchmark's operation in one process (untimed load).

    BENCH_DATABASE_URL=postgres://…/bench_x .venv/bin/python scripts/profile_flowbench.py \
        transition [--ops 300] [--profile out.prof]

Runs the operation of ``bench transition`` / ``bench task`` ``--ops`` times on a
database loaded by an earlier run of that benchmark, and prints CPU per
operation (``time.process_time``), statements per operation, the time the
statements took (wall, summed) and the load average. With ``--profile`` it
also writes a cProfile (CPU clock) of a second round of operations.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bench", choices=("transition", "task"))
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--profile", help="write a cProfile (CPU clock) here")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    from bench.sweep import setup_django

    setup_django(os.environ["BENCH_DATABASE_URL"])
    from django.db import connection

    if args.bench == "transition":
        from bench.transition import worker
    else:
        from bench.task import worker
    step = worker(0, 1)
    for _ in range(20):  # warm up: compiled statements, caches
        step()

    counted = {"n": 0, "t": 0.0}

    def count(execute, sql, params, many, context):
        counted["n"] += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            counted["t"] += time.perf_counter() - started

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    with connection.execute_wrapper(count):
        cpu0, wall0, db0 = time.process_time(), time.perf_counter(), backend_cpu(backend)
        for _ in range(args.ops):
            step()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        db = backend_cpu(backend) - db0
    n = args.ops
    print(
        f"{args.bench}: {n} ops, cpu {cpu / n * 1000:.2f} ms/op, wall {wall / n * 1000:.2f} ms/op, "
        f"statements {counted['n'] / n:.2f}/op (+BEGIN/COMMIT not counted by the wrapper), "
        f"statement wall {counted['t'] / n * 1000:.2f} ms/op, "
        f"backend cpu {db / n * 1000:.2f} ms/op, "
        f"load {os.getloadavg()}"
    )
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(n):
            step()
        profiler.disable()
        profiler.dump_stats(args.profile)
        stats = pstats.Stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
