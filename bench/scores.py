"""`python -m bench scores`: the full score recompute and the incremental update, on PostgreSQL.

It creates its own database (BENCH_DATABASE_URL, dropped and created afresh),
migrates it and loads, with COPY into the project's own tables, an
organisation tree of about ``--orgs`` organisations, ``--ratings`` closed and
rated cases, their timeline events (routed, rated, and an escalation for one
case in ten) and their attribution rows. Then, in the same run:

- one SQL aggregate over the same rows (attribution × ratings, by organisation):
  the machine's reference;
- the full recompute (``recompute_scores``, with the day's trend snapshot, as the
  nightly task runs it; the JSON line also gives the two parts), and the ratio
  reference / recompute;
- the incremental update of one rating (``record_rating``, in its own
  transaction, as ``case_rate`` and ``rating_edit`` run it): p50 / p95 / max.

Each result is one JSON line on stdout, with the machine's load average at its end;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from ._common import emit, progress
from .sweep import (
    _maintenance_url,
    build_tree,
    copy_model_rows,
    load_org_tree,
    recreate_database,
    setup_django,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_scores"
SOLVED = ("solved", "partly", "not_solved")


def tree_for(orgs: int):
    cities, districts = 21, 10
    branches = max(1, round((orgs - 1 - cities - cities * districts) / (cities * districts)))
    return build_tree(cities=cities, districts=districts, branches=branches)


def load(ratings: int, orgs: int, now: datetime) -> None:
    from django.db import connection, transaction

    from casework.models import (
        Case,
        CaseEvent,
        Category,
        Organisation,
        Rating,
        ScoreShare,
        User,
    )

    tree = tree_for(orgs)
    load_org_tree(tree)
    rows = list(Organisation.objects.order_by("path").values_list("pk", "path"))
    org_ids = [pk for pk, _ in rows]
    by_path = {path: pk for pk, path in rows}
    parent = {pk: by_path.get(path[:-4]) for pk, path in rows}
    holders = [pk for pk in org_ids if parent[pk] is not None]
    staff, youths = len(org_ids), 1000
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
    categories = list(Category.objects.values_list("pk", flat=True))
    span = 365 * 86400  # ratings spread over a year, so recency matters

    def rated_at(i: int) -> datetime:
        return now - timedelta(seconds=(i * 7919) % span)

    def holder(i: int) -> int:
        return holders[(i * 31) % len(holders)]

    def escalated(i: int) -> bool:
        return i % 10 == 0

    progress(f"loading {ratings} cases")
    started = time.perf_counter()
    with transaction.atomic():
        copy_model_rows(
            Case,
            {
                "title": "bench",
                "description": "bench",
                "region_code": "440101",
                "urgency": "normal",
                "state": "closed",
                "updated_at": now,
                "version": 5,
            },
            ratings,
            lambda i: {
                "reference": f"S{i:09d}",
                "public_token": f"bench-{i}",
                "youth_id": youth_ids[i % youths],
                "category_id": categories[i % len(categories)],
                "org_id": parent[holder(i)] if escalated(i) else holder(i),
                "assignee_id": staff_ids[i % staff],
                "submitted_at": rated_at(i) - timedelta(days=10),
                "closed_at": rated_at(i),
                "escalation_count": 1 if escalated(i) else 0,
            },
        )
    case_ids = list(Case.objects.order_by("pk").values_list("pk", flat=True))
    progress(f"  cases in {time.perf_counter() - started:.1f} s; loading ratings")
    with transaction.atomic():
        copy_model_rows(
            Rating,
            {"comment": "", "updated_at": now},
            ratings,
            lambda i: {
                "case_id": case_ids[i],
                "timeliness": 1 + i % 5,
                "attitude": 1 + (i // 5) % 5,
                "outcome": 1 + (i // 25) % 5,
                "solved": SOLVED[i % 3],
                "created_at": rated_at(i),
            },
        )

    # Events: routed, (escalated), rated for each case.
    events = []

    def event_rows():
        for i in range(ratings):
            start = rated_at(i) - timedelta(days=10)
            seq = 1
            yield (case_ids[i], seq, "routed", holder(i), start, "{}")
            if escalated(i):
                seq += 1
                payload = f'{{"from_org": {holder(i)}, "to_org": {parent[holder(i)]}, ' + (
                    '"reason": "sla_breach"}'
                )
                yield (
                    case_ids[i],
                    seq,
                    "escalated",
                    parent[holder(i)],
                    start + timedelta(days=2),
                    payload,
                )
            seq += 1
            org = parent[holder(i)] if escalated(i) else holder(i)
            yield (case_ids[i], seq, "rated", org, rated_at(i), "{}")

    progress("loading timeline events")
    started = time.perf_counter()
    iterator = event_rows()
    count = ratings + ratings // 10 + (1 if ratings % 10 else 0) + ratings
    del events

    def event_values(_i: int) -> dict:
        case_id, seq, kind, org, at, payload = next(iterator)
        return {
            "case_id": case_id,
            "seq": seq,
            "kind": kind,
            "org_id": org,
            "at": at,
            "payload": payload,
            "hash": "0" * 64,
        }

    with transaction.atomic():
        copy_model_rows(CaseEvent, {"from_state": "", "to_state": ""}, count, event_values)
    progress(f"  events in {time.perf_counter() - started:.1f} s; loading attribution")

    def share_rows():
        for i in range(ratings):
            category = categories[i % len(categories)]  # the case's (see the cases above)
            if escalated(i):
                yield (case_ids[i], category, holder(i), None, 0.2, False)
                yield (case_ids[i], category, parent[holder(i)], None, 0.8, True)
            else:
                yield (case_ids[i], category, holder(i), None, 1.0, True)
            yield (case_ids[i], category, None, staff_ids[i % staff], 1.0, True)

    shares = share_rows()
    share_count = ratings * 2 + sum(1 for i in range(ratings) if escalated(i))

    def share_values(_i: int) -> dict:
        case_id, category, org, user, share, on_time = next(shares)
        return {
            "case_id": case_id,
            "category_id": category,
            "org_id": org,
            "user_id": user,
            "share": share,
            "on_time": on_time,
        }

    with transaction.atomic():
        copy_model_rows(ScoreShare, {}, share_count, share_values)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    progress("loaded")


REFERENCE_SQL = """
SELECT sh.org_id, count(*), sum(sh.share * (r.timeliness + r.attitude + r.outcome))
FROM casework_scoreshare sh JOIN casework_rating r ON r.case_id = sh.case_id
WHERE sh.org_id IS NOT NULL GROUP BY sh.org_id
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scores", description=__doc__)
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=5_000)
    parser.add_argument("--updates", type=int, default=500, help="incremental updates to time")
    parser.add_argument(
        "--reuse", action="store_true", help="time again on the database a previous run loaded"
    )
    args = parser.parse_args(argv)

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not args.reuse:
        progress(f"creating database {_maintenance_url(url)[1]}")
        recreate_database(url)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection, transaction

    progress("migrating")
    call_command("migrate", verbosity=0)
    now = datetime.now(UTC)
    if not args.reuse:
        load(args.ratings, args.orgs, now)
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # statistics a new migration may have added

    from casework.models import Case, Organisation, Rating, ScoreState
    from casework.services.scores import rating_values, recompute_scores, record_rating

    orgs = Organisation.objects.count()

    def reference() -> float:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(REFERENCE_SQL)
            cursor.fetchall()
        return time.perf_counter() - started

    parts: list[tuple[float, float]] = []

    def recompute() -> float:
        started = time.perf_counter()
        marks: dict[str, float] = {}

        def step(name: str, done: int, total: int) -> None:
            if name == "aggregate" and done == total:
                marks["scores"] = time.perf_counter() - started

        recompute_scores(progress=step)
        elapsed = time.perf_counter() - started
        parts.append((marks["scores"], elapsed - marks["scores"]))
        return elapsed

    progress("warming up: reference and recompute once each")
    reference()
    recompute()
    progress("timing")
    ref_runs = [reference() for _ in range(3)]
    parts.clear()
    full_runs = [recompute() for _ in range(3)]
    ref, full = min(ref_runs), min(full_runs)
    best = full_runs.index(full)
    emit(
        bench="scores",
        metric="full_recompute",
        ratings=Rating.objects.count(),
        orgs=orgs,
        score_rows=ScoreState.objects.count(),
        recompute_seconds=round(full, 3),
        # of which: the score rows (aggregate, write) and the day's trend snapshot
        scores_seconds=round(parts[best][0], 3),
        snapshot_seconds=round(parts[best][1], 3),
        reference_aggregate_seconds=round(ref, 3),
        ratio=round(ref / full, 3),
        ratio_target=0.2,
        runs={
            "recompute": [round(x, 3) for x in full_runs],
            "reference": [round(x, 3) for x in ref_runs],
        },
        load_average=[round(x, 2) for x in os.getloadavg()],
    )

    progress(f"timing {args.updates} incremental updates")
    ids = list(Case.objects.order_by("?").values_list("pk", flat=True)[: args.updates])
    cases = {c.pk: c for c in Case.objects.filter(pk__in=ids)}
    # Half are edits (the attribution stays), half new ratings after a reopen (the case is
    # attributed afresh from its timeline): the two paths of case_rate / rating_edit.
    costs: dict[str, list[float]] = {"edit": [], "new_rating": []}
    commits: list[float] = []
    for n, case_id in enumerate(ids):
        case = cases[case_id]
        rating = Rating.objects.get(case_id=case_id)
        previous = {**rating_values(rating), "rated_at": rating.created_at}
        rating.outcome = 1 + rating.outcome % 5
        path = "edit" if n % 2 else "new_rating"
        with transaction.atomic():
            rating.save(update_fields=["outcome"])
            # The update's own statements, inside the rating's transaction; the commit is
            # the rating's, paid whether or not scores are kept (timed apart below).
            started = time.perf_counter()
            record_rating(case, rating, previous=previous, reattribute=path == "new_rating")
            costs[path].append((time.perf_counter() - started) * 1000)
            commit_started = time.perf_counter()
        commits.append((time.perf_counter() - commit_started) * 1000)
    every = sorted(costs["edit"] + costs["new_rating"])

    def p95(values: list[float]) -> float:
        values = sorted(values)
        return round(values[max(0, int(len(values) * 0.95) - 1)], 3)

    emit(
        bench="scores",
        metric="incremental_update",
        updates=len(every),
        p50_ms=round(statistics.median(every), 3),
        p95_ms=p95(every),
        p95_edit_ms=p95(costs["edit"]),
        p95_new_rating_ms=p95(costs["new_rating"]),
        max_ms=round(every[-1], 3),
        p95_target_ms=5,
        commit_p50_ms=round(statistics.median(commits), 3),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )
    return 0
