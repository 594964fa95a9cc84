"""Keeping the scores current: O(1) updates on every rating, reopen and escalation, and
the full recompute that must agree with them (docs/scores.md).

Incremental: each rating, reopen, arrival or escalation becomes a few deltas to
``ScoreState`` rows (the organisation, the organisation in the case's category,
the platform and the platform in the category, the staff members), written by
one upsert statement. Full: a handful of SQL aggregates over the ratings, their
attribution (``ScoreShare``) and the timeline rebuild every row, re-based to a
new epoch, and write the day's snapshot for the trends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .. import scores as formulas
from ..models import (
    Case,
    CaseEvent,
    Category,
    Rating,
    ScoreEpoch,
    ScoreShare,
    ScoreSnapshot,
    ScoreState,
)
from ..scores import MOVE_KINDS, Sums, TimelineEntry

logger = logging.getLogger(__name__)

# The kinds whose events move the index's counters.
COUNTED_EVENT_KINDS = (*sorted(MOVE_KINDS), "disputed")
PLATFORM = "platform"


def weights() -> formulas.Weights:
    return formulas.Weights(
        half_life_seconds=settings.SCORES_HALF_LIFE.total_seconds(),
        prior_strength=float(settings.SCORES_PRIOR_STRENGTH),
        star_weights=settings.SCORES_STAR_WEIGHTS,
        solved_values=settings.SCORES_SOLVED_VALUES,
        effectiveness_weights=settings.SCORES_EFFECTIVENESS_WEIGHTS,
        index_weights=settings.SCORES_INDEX_WEIGHTS,
        boost_threshold=float(settings.SCORES_BOOST_THRESHOLD),
    )


_difficulty_cache: dict = {}
DIFFICULTY_CACHE_SECONDS = 60


def difficulty_by_category() -> dict[int, float]:
    """Category id → difficulty weight: the setting by code, else the category's own.

    Cached for a minute per process (eight rows that an admin rarely edits; the
    nightly recompute reads them afresh).
    """
    named = settings.SCORES_CATEGORY_DIFFICULTY
    cached = _difficulty_cache.get("value")
    if (
        cached is not None
        and cached[0] is named
        and time.monotonic() - cached[1] < DIFFICULTY_CACHE_SECONDS
    ):
        return cached[2]
    value = {
        pk: float(named.get(code, weight))
        for pk, code, weight in Category.objects.values_list("pk", "code", "difficulty_weight")
    }
    _difficulty_cache["value"] = (named, time.monotonic(), value)
    return value


def _ts(moment: datetime) -> float:
    return moment.timestamp()


# --- keys ------------------------------------------------------------------------


def org_key(org_id: int, category_id: int | None = None) -> str:
    return f"org:{org_id}" if category_id is None else f"org:{org_id}:cat:{category_id}"


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def platform_key(category_id: int | None = None) -> str:
    return PLATFORM if category_id is None else f"{PLATFORM}:cat:{category_id}"


def _subject(key: str) -> tuple[int | None, int | None, int | None]:
    """(org id, user id, category id) of a key."""
    parts = key.split(":")
    org = int(parts[1]) if parts[0] == "org" else None
    user = int(parts[1]) if parts[0] == "user" else None
    category = int(parts[-1]) if "cat" in parts else None
    return org, user, category


class Deltas(dict):
    """key → Sums, with the platform rows following every organisation row."""

    def add_org(self, org_id: int, category_id: int, sums: Sums, sign: float = 1.0) -> None:
        for key in (
            org_key(org_id),
            org_key(org_id, category_id),
            platform_key(),
            platform_key(category_id),
        ):
            self.setdefault(key, Sums()).add(sums, sign)

    def add_user(self, user_id: int, sums: Sums, sign: float = 1.0) -> None:
        self.setdefault(user_key(user_id), Sums()).add(sums, sign)


# --- the epoch -----------------------------------------------------------------------


def current_epoch(*, lock: bool = False) -> datetime:
    """The epoch the stored sums are scaled to; created at the first use.

    ``lock`` serialises with the full recompute, which re-bases every row.
    """
    query = ScoreEpoch.objects.filter(pk=1)
    if lock:
        query = query.select_for_update()
    row = query.first()
    if row is None:
        ScoreEpoch.objects.get_or_create(pk=1, defaults={"epoch": timezone.now()})
        row = query.first()
    return row.epoch


# --- writing deltas --------------------------------------------------------------------


def apply_deltas(deltas: dict[str, Sums]) -> None:
    """Add the deltas to their rows in one statement (rows are created as needed).

    Keys in sorted order, so two writers lock shared rows in the same order.
    """
    rows = [(key, deltas[key]) for key in sorted(deltas)]
    if not rows:
        return
    table = ScoreState._meta.db_table
    columns = ["key", "org_id", "user_id", "category_id", *formulas.SUM_FIELDS]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    params: list = []
    for key, sums in rows:
        params += [key, *_subject(key), *(getattr(sums, f) for f in formulas.SUM_FIELDS)]
    updates = ", ".join(f"{f} = s.{f} + excluded.{f}" for f in formulas.SUM_FIELDS)
    sql = (
        f"INSERT INTO {table} AS s ({', '.join(columns)}) VALUES {placeholders} "
        f"ON CONFLICT (key) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- events: arrivals, escalations away, reopens -------------------------------------------


def event_deltas(items: Iterable[tuple[int, CaseEvent]], *, epoch: datetime) -> Deltas:
    """The deltas of (category id, event) pairs; kinds that count nothing add nothing."""
    half_life = settings.SCORES_HALF_LIFE.total_seconds()
    e0 = _ts(epoch)
    deltas = Deltas()
    for category_id, event in items:
        kind = str(event.kind)
        if kind not in COUNTED_EVENT_KINDS:
            continue
        w = formulas.recency(_ts(event.at), e0, half_life)
        if event.org_id is not None:
            deltas.add_org(event.org_id, category_id, formulas.event_sums(kind, weight=w))
        from_org = (event.payload or {}).get("from_org")
        if kind == "escalated" and isinstance(from_org, int):
            deltas.add_org(from_org, category_id, formulas.event_sums(kind, weight=w, leaving=True))
    return deltas


def record_events(items: Iterable[tuple[int, CaseEvent]]) -> None:
    """Count timeline events (routing, escalation, reopen) into the index: one statement.

    Called in the transaction that appends them: the case services, ``move_case`` and
    the bulk sweep (one call per batch).
    """
    items = list(items)
    if not any(str(event.kind) in COUNTED_EVENT_KINDS for _, event in items):
        return
    apply_deltas(event_deltas(items, epoch=current_epoch(lock=True)))


# --- ratings --------------------------------------------------------------------------------


def timeline_entries(case_id: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=at,
            kind=kind,
            org_id=org_id,
            actor_id=actor_id,
            reason=str((payload or {}).get("reason", "")),
        )
        for at, kind, org_id, actor_id, payload in CaseEvent.objects.filter(case_id=case_id)
        .order_by("seq")
        .values_list("at", "kind", "org_id", "actor_id", "payload")
    ]


def attribution_rows(case: Case, until: datetime) -> list[ScoreShare]:
    """The attribution of a rated case, from its timeline (unsaved rows)."""
    found = formulas.attribute(
        timeline_entries(case.pk), until=until, assignee_id=case.assignee_id, youth_id=case.youth_id
    )
    rows = [
        ScoreShare(case_id=case.pk, org_id=org, share=share, on_time=found.on_time[org])
        for org, share in sorted(found.shares.items())
    ]
    rows += [ScoreShare(case_id=case.pk, user_id=user, share=1.0) for user in sorted(found.staff)]
    return rows


def rating_deltas(
    *,
    values: dict,
    rated_at: datetime,
    category_id: int,
    shares: Iterable[ScoreShare],
    epoch: datetime,
    sign: float = 1.0,
    deltas: Deltas | None = None,
) -> Deltas:
    """One rating's contribution to every subject it is attributed to."""
    w = weights()
    deltas = deltas if deltas is not None else Deltas()
    quality = formulas.rating_quality(
        timeliness=values["timeliness"],
        attitude=values["attitude"],
        outcome=values["outcome"],
        solved=values["solved"],
        weights=w,
    )
    solved_value = w.solved_values[values["solved"]]
    weight = formulas.recency(
        _ts(rated_at), _ts(epoch), w.half_life_seconds
    ) * difficulty_by_category().get(category_id, 1.0)
    for row in shares:
        sums = formulas.rating_sums(
            quality=quality,
            solved_value=solved_value,
            weight=weight,
            share=row.share,
            on_time=row.on_time,
        )
        if row.org_id is not None:
            deltas.add_org(row.org_id, category_id, sums, sign)
        if row.user_id is not None:
            deltas.add_user(row.user_id, sums, sign)
    return deltas


def rating_values(rating: Rating) -> dict:
    return {
        "timeliness": rating.timeliness,
        "attitude": rating.attitude,
        "outcome": rating.outcome,
        "solved": rating.solved,
    }


def record_rating(
    case: Case, rating: Rating, *, previous: dict | None = None, reattribute: bool = True
) -> None:
    """Count a rating into the scores, replacing what the case counted before, if anything.

    ``previous`` holds the old values and ``rated_at`` of a rating that is being
    replaced (an edit, or a new rating after a reopen). A new rating attributes
    the case afresh from its timeline; an edit keeps the attribution.
    """
    epoch = current_epoch(lock=True)
    deltas = Deltas()
    old_shares = list(ScoreShare.objects.filter(case_id=case.pk))
    if previous is not None and old_shares:
        rating_deltas(
            values=previous,
            rated_at=previous["rated_at"],
            category_id=case.category_id,
            shares=old_shares,
            epoch=epoch,
            sign=-1.0,
            deltas=deltas,
        )
    shares = old_shares
    if reattribute or not old_shares:
        ScoreShare.objects.filter(case_id=case.pk).delete()
        shares = ScoreShare.objects.bulk_create(attribution_rows(case, rating.created_at))
    rating_deltas(
        values=rating_values(rating),
        rated_at=rating.created_at,
        category_id=case.category_id,
        shares=shares,
        epoch=epoch,
        deltas=deltas,
    )
    apply_deltas(deltas)


# --- the full recompute -------------------------------------------------------------------


def _f8() -> str:
    """Float arithmetic in the aggregates: PostgreSQL would otherwise take constants and
    parameters as numeric, several times slower over a million rows."""
    return "::float8" if connection.vendor == "postgresql" else ""


def _epoch_seconds_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _from_org_sql() -> str:
    if connection.vendor == "postgresql":
        return "(e.payload->>'from_org')::bigint"
    return "CAST(json_extract(e.payload, '$.from_org') AS INTEGER)"


def _case_sql(column: str, mapping: dict, default: float) -> tuple[str, list]:
    F8 = _f8()
    if not mapping:
        return f"%s{F8}", [default]
    whens = " ".join(f"WHEN %s THEN %s{F8}" for _ in mapping)
    params: list = []
    for key, value in mapping.items():
        params += [key, float(value)]
    return f"(CASE {column} {whens} ELSE %s{F8} END)", [*params, default]


def _rating_aggregate(epoch: datetime) -> tuple[str, list]:
    """One pass over attribution × ratings × cases, by (org, user, category).

    Each rating's weight, quality and solved value are computed once (the inner
    query), then spread over its attribution rows and summed.
    """
    F8 = _f8()
    w = weights()
    difficulty, difficulty_params = _case_sql("c.category_id", difficulty_by_category(), 1.0)
    solved, solved_params = _case_sql("r.solved", dict(w.solved_values), 0.0)
    star = w.star_weights
    star_total = sum(star[k] for k in ("timeliness", "attitude", "outcome", "solved"))
    rated = (
        f"SELECT r.case_id, c.category_id, "
        f"POWER(2{F8}, ({_epoch_seconds_sql('r.created_at')} - %s{F8}) / %s{F8}) "
        f"* {difficulty} AS w, "
        f"(%s{F8} * (r.timeliness - 1) / 4{F8} + %s{F8} * (r.attitude - 1) / 4{F8}"
        f" + %s{F8} * (r.outcome - 1) / 4{F8} + %s{F8} * {solved}) / %s{F8} AS q, "
        f"{solved} AS sv "
        f"FROM {Rating._meta.db_table} r JOIN {Case._meta.db_table} c ON c.id = r.case_id"
    )
    rated_params = [
        _ts(epoch),
        w.half_life_seconds,
        *difficulty_params,
        star["timeliness"],
        star["attitude"],
        star["outcome"],
        star["solved"],
        *solved_params,
        star_total,
        *solved_params,
    ]
    sql = (
        "SELECT sh.org_id, sh.user_id, "
        "CASE WHEN sh.org_id IS NULL THEN NULL ELSE x.category_id END AS category, "
        "SUM(sh.share * x.w), SUM(sh.share * x.w * x.q), SUM(sh.share * x.w * x.sv), "
        "SUM(CASE WHEN sh.on_time THEN sh.share * x.w ELSE 0 END) "
        f"FROM {ScoreShare._meta.db_table} sh JOIN ({rated}) x ON x.case_id = sh.case_id "
        # Staff are scored over all categories: their rows need no category split.
        "GROUP BY sh.org_id, sh.user_id, CASE WHEN sh.org_id IS NULL THEN NULL "
        "ELSE x.category_id END"
    )
    return sql, rated_params


def _event_aggregate(epoch: datetime) -> tuple[str, list]:
    """One pass over the counted timeline events, by (holder, from org, category, kind).

    Only escalations need the organisation they left, read from the payload.
    """
    F8 = _f8()
    kinds = ", ".join(["%s"] * len(COUNTED_EVENT_KINDS))
    sql = (
        f"SELECT e.org_id, CASE WHEN e.kind = 'escalated' THEN {_from_org_sql()} END, "
        "c.category_id, e.kind, "
        f"SUM(POWER(2{F8}, ({_epoch_seconds_sql('e.at')} - %s{F8}) / %s{F8})) "
        f"FROM {CaseEvent._meta.db_table} e "
        f"JOIN {Case._meta.db_table} c ON c.id = e.case_id "
        f"WHERE e.kind IN ({kinds}) "
        "GROUP BY 1, 2, 3, 4"
    )
    return sql, [_ts(epoch), settings.SCORES_HALF_LIFE.total_seconds(), *COUNTED_EVENT_KINDS]


def full_sums(epoch: datetime) -> Deltas:
    """Every subject's sums from scratch, scaled to ``epoch``: two aggregate queries.

    The rows are folded with plain lists (tens of thousands of groups for a large
    platform), then turned into ``Sums`` once per subject.
    """
    acc: dict[str, list[float]] = {}
    index = {name: i for i, name in enumerate(formulas.SUM_FIELDS)}

    def add(keys, values: dict[int, float]) -> None:
        for key in keys:
            row = acc.get(key)
            if row is None:
                row = acc[key] = [0.0] * len(formulas.SUM_FIELDS)
            for i, value in values.items():
                row[i] += value

    def org_keys(org_id, category_id):
        return (org_key(org_id), org_key(org_id, category_id), PLATFORM, platform_key(category_id))

    rated = (index["weight"], index["quality"], index["solved"], index["on_time"])
    with connection.cursor() as cursor:
        cursor.execute(*_rating_aggregate(epoch))
        for org_id, user_id, category_id, *values in cursor.fetchall():
            values = {i: float(v or 0.0) for i, v in zip(rated, values, strict=True)}
            if org_id is not None:
                add(org_keys(org_id, category_id), values)
            if user_id is not None:
                add((user_key(user_id),), values)
        cursor.execute(*_event_aggregate(epoch))
        for org_id, from_org, category_id, kind, weight in cursor.fetchall():
            if org_id is not None:
                field = "reopened" if kind == "disputed" else "arrived"
                add(org_keys(org_id, category_id), {index[field]: weight})
            if kind == "escalated" and from_org is not None:
                add(org_keys(from_org, category_id), {index["escalated_away"]: weight})
    sums = Deltas()
    for key, row in acc.items():
        sums[key] = Sums(*row)
    return sums


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _insert_rows(model, columns: list[str], rows: list[tuple]) -> None:
    """Many rows at once: COPY on PostgreSQL, else bulk_create.

    Values are keys, ids, dates and floats: nothing that needs escaping.
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        import io

        data = io.StringIO("".join("\t".join(_copy_text(v) for v in row) + "\n" for row in rows))
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN", data
            )
        return
    model.objects.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000
    )


def reattribute_all(progress: Callable[[int], None] | None = None, chunk: int = 500) -> int:
    """Derive every rated case's attribution from its timeline again (the slow path)."""
    ids = list(Rating.objects.order_by("case_id").values_list("case_id", flat=True))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        cases = Case.objects.filter(pk__in=part).only("id", "assignee_id", "youth_id")
        rated_at = dict(
            Rating.objects.filter(case_id__in=part).values_list("case_id", "created_at")
        )
        rows = [row for case in cases for row in attribution_rows(case, rated_at[case.pk])]
        ScoreShare.objects.filter(case_id__in=part).delete()
        ScoreShare.objects.bulk_create(rows, batch_size=2000)
        if progress:
            progress(len(part))
    return len(ids)


def recompute_scores(
    *,
    now: datetime | None = None,
    reattribute: bool = False,
    snapshot: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Rebuild every ``ScoreState`` from the ratings and the timeline, re-based to ``now``.

    Holds the epoch row's lock, so incremental updates wait and then land on the
    new rows. ``reattribute`` also derives each case's attribution from its
    timeline again. Writes today's snapshot for the trends. Returns the row count.
    """
    now = now or timezone.now()

    def step(name: str, done: int, total: int) -> None:
        if progress:
            progress(name, done, total)

    with transaction.atomic():
        current_epoch(lock=True)
        if reattribute:
            total = Rating.objects.count()
            done = 0

            def counted(n: int) -> None:
                nonlocal done
                done += n
                step("attribution", done, total)

            reattribute_all(counted)
        step("aggregate", 0, 1)
        _difficulty_cache.clear()
        sums = full_sums(now)
        step("aggregate", 1, 1)
        ScoreState.objects.all().delete()
        rows = [
            (key, *_subject(key), *(getattr(part, f) for f in formulas.SUM_FIELDS))
            for key, part in sums.items()
        ]
        _insert_rows(
            ScoreState, ["key", "org_id", "user_id", "category_id", *formulas.SUM_FIELDS], rows
        )
        ScoreEpoch.objects.filter(pk=1).update(epoch=now)
        step("write", len(rows), len(rows))
        if snapshot:
            write_snapshot(sums, now=now)
    logger.info("scores recomputed: %d subjects", len(rows))
    return len(rows)


def write_snapshot(sums: dict[str, Sums], *, now: datetime) -> int:
    """Today's scores of every organisation and staff member (for the trends)."""
    w = weights()
    day = timezone.localdate(now)
    platform = {key: value for key, value in sums.items() if key.startswith(PLATFORM)}
    means: dict[str, dict] = {}
    rows = []
    for key, part in sums.items():
        if key.startswith(PLATFORM):
            continue
        org, user, category = _subject(key)
        means_key = platform_key(category)
        if means_key not in means:
            means[means_key] = formulas.platform_means(platform.get(means_key, Sums()))
        result = formulas.scores(part, Sums(), decay=1.0, weights=w, means=means[means_key])
        rows.append(
            (
                day,
                key,
                org,
                user,
                category,
                result.evaluation,
                result.effectiveness,
                result.index,
                result.ratings,
            )
        )
    ScoreSnapshot.objects.filter(day=day).delete()
    columns = ["day", "key", "org_id", "user_id", "category_id", "evaluation"]
    _insert_rows(ScoreSnapshot, [*columns, "effectiveness", "index", "ratings"], rows)
    return len(rows)


def stored_sums() -> tuple[datetime, dict[str, Sums]]:
    """The stored rows, as (epoch, key → Sums): for checks and the selectors."""
    epoch = current_epoch()
    rows = ScoreState.objects.values_list("key", *formulas.SUM_FIELDS)
    return epoch, {
        key: Sums(**dict(zip(formulas.SUM_FIELDS, values, strict=True))) for key, *values in rows
    }


__all__ = [
    "apply_deltas",
    "current_epoch",
    "full_sums",
    "recompute_scores",
    "record_events",
    "record_rating",
    "stored_sums",
    "weights",
]
