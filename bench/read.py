"""`python -m bench read`: latency and query count of the hot read pages at scale.

Runs against a database built by ``manage.py generate_load_data`` (it does not
create one: ``--database-url`` or BENCH_DATABASE_URL, default the 1M database
named below). Each page is requested through the whole Django stack (URL
routing, middleware, sign-in, the real view and selectors, template
rendering) with the test client, ``--repeat`` times after a warm-up:

- ``read_inbox``: the workbench inbox page (/tasks/, 25 rows a page) of the
  handler of the organisation with the most open tasks, and
  ``read_inbox_selector``: the inbox selector behind it
  (``workflows.selectors.inbox_for``) for 50 rows, its query count beside
  the count for 10 rows;
- ``read_dashboard``: the supervisor dashboard (/supervise/) of a city's
  supervisor and of the province's supervisor (every case), after
  ``read_dashboard_refresh``: one rebuild of the rollup it reads (the beat task
  of every minute, ``casework.services.dashboard_rollup``), timed;
- ``read_timeline``: the workbench case page of a case with 200 events;
- ``read_public``: a case's public progress page (/p/<token>/).

Each line gives p50/p95/max in ms, the number of SQL queries of one request,
and the same count for a smaller variant (a 25-row page, a small case, a
district's dashboard): ``queries_constant`` says they are equal, that is the
count does not grow with the page size or the amount of data.
``cpu_ms_per_request`` is this process's CPU time per request of the timed loop
(``time.process_time``: the whole Django stack, not the database's backend): it
depends much less than the latencies on what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from ._common import emit, progress

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/yv_loadbench_1m"


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


EXPLAIN = {"on": False, "top": 3}


def explain(captured: list[dict], url: str) -> None:
    """EXPLAIN ANALYZE the slowest SELECTs of one request, to stderr (``--explain``)."""
    from django.db import connection

    selects = [q for q in captured if q["sql"].lstrip().upper().startswith("SELECT")]
    slowest = sorted(selects, key=lambda q: float(q["time"]), reverse=True)[: EXPLAIN["top"]]
    for q in slowest:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        progress(f"--- {url}: {q['time']} s\n{q['sql']}\n{plan}\n")


CPU = {"ms": None}


def measure(client, url: str, repeat: int, warmup: int = 3) -> tuple[list[float], int, int]:
    """(latencies in ms, queries of one request, status); the benchmark process's CPU time
    per request of the timed loop goes to ``CPU["ms"]`` (``cpu_ms_per_request``)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        response = client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    queries = len(captured.captured_queries)
    status = response.status_code
    if EXPLAIN["on"]:
        explain(captured.captured_queries, url)
    times = []
    cpu = time.process_time()
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != status:
            raise SystemExit(f"{url}: status {response.status_code} after {status}")
    CPU["ms"] = round((time.process_time() - cpu) * 1000 / max(repeat, 1), 2)
    return times, queries, status


def result(name: str, times: list[float], queries: int, status: int, **extra) -> None:
    emit(
        bench=name,
        p50_ms=round(statistics.median(times), 2),
        p95_ms=round(percentile(times, 95), 2),
        max_ms=round(max(times), 2),
        requests=len(times),
        cpu_ms_per_request=extra.pop("cpu_ms_per_request", None),
        queries=queries,
        status=status,
        **extra,
    )


def client_for(user):
    from django.test import Client

    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench read", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
        help="a database filled by generate_load_data (default BENCH_DATABASE_URL or "
        f"{DEFAULT_URL})",
    )
    parser.add_argument("--repeat", type=int, default=200, help="requests per page (200)")
    parser.add_argument(
        "--only", choices=["inbox", "dashboard", "timeline", "public"], action="append"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the 3 slowest queries of each page to stderr",
    )
    args = parser.parse_args(argv)
    EXPLAIN["on"] = args.explain
    setup_django(args.database_url)
    from django.db import connection
    from django.db.models import Q
    from django.urls import reverse

    # Start as a web worker does (config/wsgi.py): the URLconf loaded, the start-up
    # objects frozen out of the garbage collector's full passes.
    import config.wsgi  # noqa: F401
    from casework.models import Case, Membership, Organisation
    from workflows.models import OPEN_TASK_STATUSES, CaseTask

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM casework_case")
        total_cases = cursor.fetchone()[0]
    if not total_cases:
        raise SystemExit("The database holds no cases: fill it with generate_load_data first.")
    progress(f"{total_cases:,} cases in {args.database_url.rsplit('/', 1)[-1]}")
    load = [round(x, 2) for x in os.getloadavg()]
    common = {"cases": total_cases, "load_average": load}
    only = set(args.only or ["inbox", "dashboard", "timeline", "public"])

    if "inbox" in only:
        # The handler organisation with the most open tasks, and one with few.
        busiest = (
            CaseTask.objects.filter(status__in=OPEN_TASK_STATUSES)
            .values("org_id")
            .annotate(n=__import__("django.db.models", fromlist=["Count"]).Count("pk"))
            .order_by("-n")
        )
        rows = list(busiest[:1])
        org_id, open_tasks = rows[0]["org_id"], rows[0]["n"]
        handler = Membership.objects.get(organisation_id=org_id, role="handler").user
        client = client_for(handler)
        url = reverse("workflows:inbox")
        times, queries, status = measure(client, url, args.repeat)
        cpu_ms = CPU["ms"]
        _t, queries_page2, _s = measure(client, url + "?page=2", 1, warmup=0)
        result(
            "read_inbox",
            times,
            queries,
            status,
            cpu_ms_per_request=cpu_ms,
            org_open_tasks=open_tasks,
            rows=25,
            queries_page2=queries_page2,
            queries_constant=queries == queries_page2,
            **common,
        )

        # The inbox selector itself at 50 rows (the page shows 25), and at 10 rows.
        from django.test.utils import CaptureQueriesContext

        from workflows.selectors import inbox_for

        def selector(limit: int) -> tuple[list[float], int]:
            handler_fresh = type(handler).objects.get(pk=handler.pk)  # no cached roles
            with CaptureQueriesContext(connection) as captured:
                rows = inbox_for(handler_fresh, limit=limit)
            assert len(rows) == min(limit, open_tasks)
            times = []
            for _ in range(args.repeat):
                fresh = type(handler).objects.get(pk=handler.pk)
                started = time.perf_counter()
                inbox_for(fresh, limit=limit)
                times.append((time.perf_counter() - started) * 1000)
            return times, len(captured.captured_queries)

        times, queries = selector(50)
        _t, queries_10 = selector(10)
        result(
            "read_inbox_selector",
            times,
            queries,
            200,
            org_open_tasks=open_tasks,
            rows=50,
            queries_10_rows=queries_10,
            queries_constant=queries == queries_10,
            **common,
        )

    if "dashboard" in only:
        # The page reads the rollup the beat task rebuilds every minute: rebuild it now, as
        # that task does, so the page shows the data as loaded, and report what it cost.
        from casework.services.dashboard_rollup import refresh_dashboard_rollup

        started = time.perf_counter()
        cpu = time.process_time()
        refreshed = refresh_dashboard_rollup()
        emit(
            bench="read_dashboard_refresh",
            seconds=round(time.perf_counter() - started, 2),
            client_cpu_seconds=round(time.process_time() - cpu, 2),
            ran=refreshed is not None,
            rows=(refreshed.open_rows + refreshed.week_rows) if refreshed else None,
            **common,
        )
        for level, label in ((2, "city"), (1, "province")):
            org = Organisation.objects.filter(level=level).order_by("path").first()
            supervisor = Membership.objects.get(organisation=org, role="supervisor").user
            client = client_for(supervisor)
            url = reverse("casework:supervisor")
            subtree = Case.objects.filter(org__path__startswith=org.path).count()
            times, queries, status = measure(client, url, args.repeat)
            cpu_ms = CPU["ms"]
            # A district below it, through the same page: the count must not change.
            district = (
                Organisation.objects.filter(path__startswith=org.path, level=3)
                .order_by("path")
                .first()
            )
            _t, queries_small, _s = measure(client, f"{url}?org={district.pk}", 1, warmup=0)
            result(
                "read_dashboard",
                times,
                queries,
                status,
                cpu_ms_per_request=cpu_ms,
                scope=label,
                subtree_cases=subtree,
                queries_district=queries_small,
                queries_constant=queries == queries_small,
                **common,
            )

    if "timeline" in only:
        long_case = Case.objects.filter(last_event_seq__gte=200).order_by("pk").first()
        short_cases = Case.objects.filter(state=long_case.state, last_event_seq__lt=10)
        # The same organisation if it holds one, else one of the same level with or without
        # children like it: the actions offered (and their choice lists) depend on those.
        short_case = (
            short_cases.filter(org=long_case.org).order_by("pk").first()
            or short_cases.filter(org__depth=long_case.org.depth)
            .filter(Q(org__numchild__gt=0) if long_case.org.numchild else Q(org__numchild=0))
            .order_by("pk")
            .first()
            or short_cases.order_by("pk").first()
        )
        handler = Membership.objects.get(organisation_id=long_case.org_id, role="handler").user
        client = client_for(handler)
        url = reverse("casework:staff_case", args=[long_case.reference])
        times, queries, status = measure(client, url, args.repeat)
        cpu_ms = CPU["ms"]
        short_client = client_for(
            Membership.objects.get(organisation_id=short_case.org_id, role="handler").user
        )
        _t, queries_short, _s = measure(
            short_client, reverse("casework:staff_case", args=[short_case.reference]), 1
        )
        result(
            "read_timeline",
            times,
            queries,
            status,
            cpu_ms_per_request=cpu_ms,
            events=long_case.last_event_seq,
            queries_short_case=queries_short,
            short_case_events=short_case.last_event_seq,
            queries_constant=queries == queries_short,
            **common,
        )

    if "public" in only:
        from django.test import Client

        cases = list(
            Case.objects.filter(is_public=True, state="coordinating")
            .order_by("pk")
            .values_list("public_token", "last_event_seq")[:50]
        )
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
        token, events = max(cases, key=lambda c: c[1])
        small_token, small_events = min(cases, key=lambda c: c[1])
        url = reverse("casework:public_case", args=[token])
        times, queries, status = measure(client, url, args.repeat)
        cpu_ms = CPU["ms"]
        _t, queries_small, _s = measure(
            client, reverse("casework:public_case", args=[small_token]), 1
        )
        result(
            "read_public",
            times,
            queries,
            status,
            cpu_ms_per_request=cpu_ms,
            events=events,
            queries_small_case=queries_small,
            small_case_events=small_events,
            queries_constant=queries == queries_small,
            **common,
        )
    return 0
