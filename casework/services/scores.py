"""Keeping the scores current: O(1) updates on every rating, reopen and escalation, and
the full recompute that must agree with them (docs/scores.md).

Incremental: each rating, reopen, arrival or escalation becomes a few deltas to
``ScoreState`` rows (the organisation, the organisation in the case's category,
the staff members), written by one upsert statement under the shared form of the
scores advisory lock: writers for different organisations share no row and no
lock. The platform's sums are read as the sum of the organisation rows. Full:
one ``INSERT … SELECT`` aggregates the ratings, their attribution
(``ScoreShare``) and the timeline into every row, re-based to a new epoch, under
the exclusive form of the lock; then the day's snapshot for the trends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    ScoreEvent,
    ScoreShare,
    ScoreSnapshot,
    ScoreState,
)
from ..scores import MOVE_KINDS, Sums, TimelineEntry

logger = logging.getLogger(__name__)

# The kinds whose events move the index's counters.
COUNTED_EVENT_KINDS = (*sorted(MOVE_KINDS), "disputed")


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

STATE_COLUMNS = ["key", "org_id", "user_id", "category_id", *formulas.SUM_FIELDS]


def org_key(org_id: int, category_id: int | None = None) -> str:
    return f"org:{org_id}" if category_id is None else f"org:{org_id}:cat:{category_id}"


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def _subject(key: str) -> tuple[int | None, int | None, int | None]:
    """(org id, user id, category id) of a key."""
    parts = key.split(":")
    org = int(parts[1]) if parts[0] == "org" else None
    user = int(parts[1]) if parts[0] == "user" else None
    category = int(parts[-1]) if "cat" in parts else None
    return org, user, category


class Deltas(dict):
    """key → Sums: an organisation's deltas go to its row and its row in the category.

    No platform row is written: the platform's sums are the sum of the organisation
    rows (``platform_sums``), so two writers for different organisations share no row.
    """

    def add_org(self, org_id: int, category_id: int, sums: Sums, sign: float = 1.0) -> None:
        for key in (org_key(org_id), org_key(org_id, category_id)):
            self.setdefault(key, Sums()).add(sums, sign)

    def add_user(self, user_id: int, sums: Sums, sign: float = 1.0) -> None:
        self.setdefault(user_key(user_id), Sums()).add(sums, sign)


# --- the epoch -----------------------------------------------------------------------

# The advisory lock that keeps writers and the full recompute apart. Writers hold its
# shared form (they never wait for each other), the recompute its exclusive form.
SCORES_LOCK = 7_270_001


def hold_scores(*, exclusive: bool = False) -> None:
    """Take the scores lock until the end of the transaction (PostgreSQL; SQLite has one
    writer at a time anyway).

    Shared: every incremental update, so the recompute waits for them and they wait for
    it; exclusive: the recompute, which re-bases every row to a new epoch.
    """
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [SCORES_LOCK])


def _lock_statement() -> tuple[str, list] | None:
    if connection.vendor != "postgresql":
        return None
    return "SELECT pg_advisory_xact_lock_shared(%s)", [SCORES_LOCK]


def _epoch_sql(extra_columns: str = "", join: str = "") -> str:
    return f"SELECT e.epoch{extra_columns} FROM {ScoreEpoch._meta.db_table} e {join} WHERE e.id = 1"


def locked_epoch() -> datetime:
    """For a writer: the shared lock, then the epoch (one round trip on PostgreSQL)."""
    if connection.vendor != "postgresql":
        return current_epoch()
    rows = _run([_lock_statement(), (_epoch_sql(), [])], fetch=True)
    return rows[0][0] if rows else current_epoch()


def current_epoch() -> datetime:
    """The epoch the stored sums are scaled to; created at the first use.

    Only the full recompute moves it. A writer reads it after taking the shared lock
    (``locked_epoch``), so it sees the epoch of the rows it is about to add to.
    """
    row = ScoreEpoch.objects.filter(pk=1).values_list("epoch", flat=True).first()
    if row is None:
        ScoreEpoch.objects.get_or_create(pk=1, defaults={"epoch": timezone.now()})
        row = ScoreEpoch.objects.filter(pk=1).values_list("epoch", flat=True).first()
    return row


# --- writing deltas --------------------------------------------------------------------


def _run(statements: list[tuple[str, list] | None], *, fetch: bool = False) -> list | None:
    """Run the statements in order, in one round trip on PostgreSQL (psycopg2 sends them
    as one string; each still reads the data committed before it starts), one by one
    elsewhere. Returns the last statement's rows when ``fetch``.

    A busy server answers every round trip late: the update of one rating is a few
    small statements, and sending them together keeps its cost near one round trip.
    """
    statements = [statement for statement in statements if statement is not None]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
        return cursor.fetchall() if fetch else None


def upsert_statement(deltas: dict[str, Sums]) -> tuple[str, list] | None:
    """One statement that adds the deltas to their rows (creating rows as needed).

    Keys in sorted order, so two writers lock shared rows in the same order.
    """
    rows = [(key, deltas[key]) for key in sorted(deltas)]
    if not rows:
        return None
    table = ScoreState._meta.db_table
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(STATE_COLUMNS)) + ")"] * len(rows))
    params: list = []
    for key, sums in rows:
        params += [key, *_subject(key), *(getattr(sums, f) for f in formulas.SUM_FIELDS)]
    updates = ", ".join(f"{f} = s.{f} + excluded.{f}" for f in formulas.SUM_FIELDS)
    sql = (
        f"INSERT INTO {table} AS s ({', '.join(STATE_COLUMNS)}) VALUES {placeholders} "
        f"ON CONFLICT (key) DO UPDATE SET {updates}"
    )
    return sql, params


def apply_deltas(deltas: dict[str, Sums]) -> None:
    """Add the deltas to their rows in one statement."""
    _run([upsert_statement(deltas)])


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
    with transaction.atomic(savepoint=False):
        apply_deltas(event_deltas(items, epoch=locked_epoch()))


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


def attribution_rows(
    case: Case, until: datetime, entries: list[TimelineEntry] | None = None
) -> list[ScoreShare]:
    """The attribution of a rated case, from its timeline (unsaved rows)."""
    if entries is None:
        entries = timeline_entries(case.pk)
    found = formulas.attribute(
        entries, until=until, assignee_id=case.assignee_id, youth_id=case.youth_id
    )
    category_id = case.category_id
    rows = [
        ScoreShare(
            case_id=case.pk,
            category_id=category_id,
            org_id=org,
            share=share,
            on_time=found.on_time[org],
        )
        for org, share in sorted(found.shares.items())
    ]
    rows += [
        ScoreShare(case_id=case.pk, category_id=category_id, user_id=user, share=1.0)
        for user in sorted(found.staff)
    ]
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


@dataclass(frozen=True)
class Share:
    """A stored attribution row, as the deltas need it."""

    org_id: int | None
    user_id: int | None
    share: float
    on_time: bool


def _payload(value) -> dict:
    if isinstance(value, str):  # the PostgreSQL backend leaves jsonb to the field
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _epoch_and_shares(
    case_id: int, *, timeline: bool = False
) -> tuple[datetime, list[Share], list[TimelineEntry] | None]:
    """For a writer: the shared lock, the epoch, the case's attribution rows and, with
    ``timeline``, its timeline (one round trip on PostgreSQL)."""
    if connection.vendor == "postgresql":
        sql = (
            "SELECT 0, e.epoch, sh.org_id, sh.user_id, sh.share, sh.on_time, NULL, NULL, sh.id "
            f"FROM {ScoreEpoch._meta.db_table} e "
            f"LEFT JOIN {ScoreShare._meta.db_table} sh ON sh.case_id = %s WHERE e.id = 1"
        )
        params = [case_id]
        if timeline:
            sql += (
                " UNION ALL SELECT 1, ev.at, ev.org_id, ev.actor_id, NULL, NULL, ev.kind, "
                f"ev.payload, ev.seq FROM {CaseEvent._meta.db_table} ev WHERE ev.case_id = %s"
            )
            params.append(case_id)
        rows = _run([_lock_statement(), (f"{sql} ORDER BY 1, 9", params)], fetch=True)
        if rows and rows[0][0] == 0:
            shares = [Share(*row[2:6]) for row in rows if row[0] == 0 and row[4] is not None]
            entries = [
                TimelineEntry(
                    at=at,
                    kind=kind,
                    org_id=org_id,
                    actor_id=actor_id,
                    reason=str(_payload(payload).get("reason", "")),
                )
                for part, at, org_id, actor_id, _, _, kind, payload, _ in rows
                if part == 1
            ]
            return rows[0][1], shares, entries if timeline else None
    epoch = current_epoch()
    rows = ScoreShare.objects.filter(case_id=case_id).order_by("pk")
    shares = [Share(*row) for row in rows.values_list("org_id", "user_id", "share", "on_time")]
    return epoch, shares, timeline_entries(case_id) if timeline else None


def _replace_shares_statements(case_id: int, rows: list[ScoreShare]) -> list[tuple[str, list]]:
    table = ScoreShare._meta.db_table
    statements = [(f"DELETE FROM {table} WHERE case_id = %s", [case_id])]
    if rows:
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
        params = [
            p
            for r in rows
            for p in (case_id, r.category_id, r.org_id, r.user_id, r.share, r.on_time)
        ]
        statements.append(
            (
                f"INSERT INTO {table} (case_id, category_id, org_id, user_id, share, on_time) "
                f"VALUES {values}",
                params,
            )
        )
    return statements


def record_rating(
    case: Case, rating: Rating, *, previous: dict | None = None, reattribute: bool = True
) -> None:
    """Count a rating into the scores, replacing what the case counted before, if anything.

    ``previous`` holds the old values and ``rated_at`` of a rating that is being
    replaced (an edit, or a new rating after a reopen). A new rating attributes
    the case afresh from its timeline; an edit keeps the attribution.

    On PostgreSQL it is two round trips: the shared lock with one query for the
    epoch, the attribution and (for a new rating) the timeline; then the attribution
    replaced (new rating) with the upsert.
    """
    with transaction.atomic(savepoint=False):
        epoch, old_shares, entries = _epoch_and_shares(case.pk, timeline=reattribute)
        deltas = Deltas()
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
        shares: list = old_shares
        statements: list = []
        if reattribute or not old_shares:
            shares = attribution_rows(case, rating.created_at, entries)
            statements = _replace_shares_statements(case.pk, shares)
        rating_deltas(
            values=rating_values(rating),
            rated_at=rating.created_at,
            category_id=case.category_id,
            shares=shares,
            epoch=epoch,
            deltas=deltas,
        )
        _run([*statements, upsert_statement(deltas)])


# --- the full recompute -------------------------------------------------------------------


def _f8() -> str:
    """Float arithmetic in the aggregates: PostgreSQL would otherwise take constants and
    parameters as numeric, several times slower over a million rows."""
    return "::float8" if connection.vendor == "postgresql" else ""


def _epoch_seconds_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        # date_part is float8; EXTRACT would compute a numeric first (PostgreSQL 14+).
        return f"date_part('epoch', {column})"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _case_sql(column: str, mapping: dict, default: float) -> tuple[str, list]:
    F8 = _f8()
    if not mapping:
        return f"%s{F8}", [default]
    whens = " ".join(f"WHEN %s THEN %s{F8}" for _ in mapping)
    params: list = []
    for key, value in mapping.items():
        params += [key, float(value)]
    return f"(CASE {column} {whens} ELSE %s{F8} END)", [*params, default]


def _rated_sql(epoch: datetime) -> tuple[str, list]:
    """Attribution × ratings, by (org or staff member, category): the rating sums.

    One parallel-friendly join and hash aggregate over the attribution rows and the
    ratings only: the case's category is copied on its attribution rows. Each
    rating's recency, quality and solved value are computed once, where the ratings
    are read, and the four sums multiply them by each attribution row's share.
    The group key is one number (an organisation's id, or minus a staff member's),
    so the planner expects few groups and hashes rather than sorts two million
    rows; the difficulty is a factor per category, applied to the grouped sums
    rather than to every row.
    """
    F8 = _f8()
    w = weights()
    difficulty, difficulty_params = _case_sql("category_id", difficulty_by_category(), 1.0)
    solved, solved_params = _case_sql("r.solved", dict(w.solved_values), 0.0)
    star = w.star_weights
    star_total = sum(star[k] for k in ("timeliness", "attitude", "outcome", "solved"))
    recency = f"POWER(2{F8}, ({_epoch_seconds_sql('r.created_at')} - %s{F8}) / %s{F8})"
    quality = (
        f"(%s{F8} * (r.timeliness - 1) / 4{F8} + %s{F8} * (r.attitude - 1) / 4{F8}"
        f" + %s{F8} * (r.outcome - 1) / 4{F8} + %s{F8} * {solved}) / %s{F8}"
    )
    per_rating = (
        f"SELECT r.case_id AS case_id, {recency} AS p, {quality} AS q, {solved} AS s "
        f"FROM {Rating._meta.db_table} r"
    )
    per_rating_params = [
        _ts(epoch),
        w.half_life_seconds,
        star["timeliness"],
        star["attitude"],
        star["outcome"],
        star["solved"],
        *solved_params,
        star_total,
        *solved_params,
    ]
    # The empty second branch makes the ratings an append relation: PostgreSQL then
    # computes p, q and s once per rating where it reads them (and still in
    # parallel), where a plain subquery would be flattened and each of the four sums
    # would evaluate the power (and the quality) again for every attribution row.
    ratings = f"{per_rating} UNION ALL {per_rating} WHERE 1 = 0"
    part = "sh.share * r.p"
    grouped = (
        "SELECT COALESCE(sh.org_id, -sh.user_id) AS subject, sh.category_id AS category_id, "
        f"SUM({part}) AS w, SUM({part} * r.q) AS q, SUM({part} * r.s) AS sv, "
        f"SUM(CASE WHEN sh.on_time THEN {part} ELSE 0{F8} END) AS ot "
        f"FROM {ScoreShare._meta.db_table} sh JOIN ({ratings}) r ON r.case_id = sh.case_id "
        "GROUP BY COALESCE(sh.org_id, -sh.user_id), sh.category_id"
    )
    sql = (
        "SELECT CASE WHEN subject > 0 THEN subject END AS org_id, "
        "CASE WHEN subject < 0 THEN -subject END AS user_id, category_id, "
        f"{difficulty} * w AS w, {difficulty} * q AS q, {difficulty} * sv AS sv, "
        f"{difficulty} * ot AS ot FROM ({grouped}) g"
    )
    return sql, [*difficulty_params * 4, *per_rating_params * 2]


def _events_sql(epoch: datetime) -> tuple[str, list]:
    """The counted timeline events, by (holder, org escalated from, category, kind).

    Read from their narrow copies (``ScoreEvent``: written by a trigger in the
    statement that appends each counted event, and only for the counted kinds, with
    the case's category and, for an escalation, the organisation it left, read from
    the payload), not from the timeline joined with every case. Migration 0027 gives
    the planner the joint distinct count of the group columns, so it aggregates in
    parallel.
    """
    F8 = _f8()
    sql = (
        "SELECT e.org_id AS org_id, e.from_org_id AS from_org, "
        "e.category_id AS category_id, e.kind AS kind, "
        f"SUM(POWER(2{F8}, ({_epoch_seconds_sql('e.at')} - %s{F8}) / %s{F8})) AS r "
        f"FROM {ScoreEvent._meta.db_table} e "
        "GROUP BY 1, 2, 3, 4"
    )
    return sql, [_ts(epoch), settings.SCORES_HALF_LIFE.total_seconds()]


# The trigger (migration 0027) that writes a ``ScoreEvent`` row for each counted event.
SCORE_EVENT_TRIGGER = "casework_caseevent_to_scoreevent"


def fill_score_events() -> int:
    """Write the ``ScoreEvent`` row of every counted event that lacks one, in one statement
    (PostgreSQL): for a bulk load that switched the trigger off (``generate_load_data``)."""
    kinds = ", ".join(["%s"] * len(COUNTED_EVENT_KINDS))
    table = ScoreEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (event_id, category_id, org_id, from_org_id, kind, at) "
            "SELECT e.id, c.category_id, e.org_id, CASE WHEN e.kind = 'escalated' "
            "THEN (e.payload->>'from_org')::bigint END, e.kind, e.at "
            f"FROM {CaseEvent._meta.db_table} e JOIN {Case._meta.db_table} c ON c.id = e.case_id "
            f"WHERE e.kind IN ({kinds}) "
            f"AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.event_id = e.id)",
            list(COUNTED_EVENT_KINDS),
        )
        return cursor.rowcount


def _full_select(epoch: datetime) -> tuple[str, list]:
    """Every ``ScoreState`` row from scratch, scaled to ``epoch``: one statement.

    Two passes over the data (the rating sums and the event sums, each grouped in
    the database to tens of thousands of rows); the organisation rows, its rows per
    category and the staff rows are then summed from those small results. Portable:
    PostgreSQL and SQLite run the same text.
    """
    Z = f"0{_f8()}"
    rated, rated_params = _rated_sql(epoch)
    events, event_params = _events_sql(epoch)
    visits, visit_params = _visits_sql(epoch)  # station-visit ratings (intake)
    arrived = f"CASE WHEN kind = 'disputed' THEN {Z} ELSE r END"
    reopened = f"CASE WHEN kind = 'disputed' THEN r ELSE {Z} END"
    none = "CAST(NULL AS BIGINT)"
    sums = ", ".join(f"SUM({f}) AS {f}" for f in formulas.SUM_FIELDS)
    fields = ", ".join(formulas.SUM_FIELDS)
    sql = (
        f"WITH rated AS MATERIALIZED ({rated}), "
        f"events AS MATERIALIZED ({events}), "
        "parts AS ("
        f"SELECT org_id, category_id, w AS weight, q AS quality, sv AS solved, ot AS on_time, "
        f"{Z} AS arrived, {Z} AS escalated_away, {Z} AS reopened "
        "FROM rated WHERE org_id IS NOT NULL "
        f"UNION ALL SELECT org_id, category_id, {Z}, {Z}, {Z}, {Z}, {arrived}, {Z}, {reopened} "
        "FROM events WHERE org_id IS NOT NULL "
        f"UNION ALL SELECT from_org, category_id, {Z}, {Z}, {Z}, {Z}, {Z}, r, {Z} "
        "FROM events WHERE from_org IS NOT NULL "
        f"UNION ALL {visits}), "
        f"by_category AS MATERIALIZED (SELECT org_id, category_id, {sums} "
        "FROM parts GROUP BY org_id, category_id) "
        f"SELECT 'org:' || org_id || ':cat:' || category_id, org_id, {none}, category_id, {fields} "
        "FROM by_category "
        f"UNION ALL SELECT 'org:' || org_id, org_id, {none}, {none}, {sums} "
        "FROM by_category GROUP BY org_id "
        f"UNION ALL SELECT 'user:' || user_id, {none}, user_id, {none}, SUM(w), SUM(q), SUM(sv), "
        f"SUM(ot), {Z}, {Z}, {Z} FROM rated WHERE user_id IS NOT NULL GROUP BY user_id"
    )
    return sql, [*rated_params, *event_params, *visit_params]


def _sums_of(values) -> Sums:
    return Sums(*(float(v or 0.0) for v in values))


def _split(rows):
    """(key, org, user, category, sums...) rows as (key, the sums' values)."""
    return [(row[0], row[4:]) for row in rows]


def full_sums(epoch: datetime) -> dict[str, Sums]:
    """Every subject's sums from scratch, scaled to ``epoch`` (what the recompute writes)."""
    with connection.cursor() as cursor:
        cursor.execute(*_full_select(epoch))
        return {key: _sums_of(values) for key, values in _split(cursor.fetchall())}


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
        cases = Case.objects.filter(pk__in=part).only(
            "id", "assignee_id", "youth_id", "category_id"
        )
        rated_at = dict(
            Rating.objects.filter(case_id__in=part).values_list("case_id", "created_at")
        )
        rows = [row for case in cases for row in attribution_rows(case, rated_at[case.pk])]
        ScoreShare.objects.filter(case_id__in=part).delete()
        ScoreShare.objects.bulk_create(rows, batch_size=2000)
        if progress:
            progress(len(part))
    return len(ids)


RECOMPUTE_WORK_MEM = "64MB"


def _settings_for_the_aggregate() -> None:
    """For this transaction only (PostgreSQL): no JIT compilation (on a busy machine it
    cost more than the query it compiled, seconds), and room to hash a million cases
    and ratings in memory rather than in batches on disk."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = %s", [RECOMPUTE_WORK_MEM])


NEW_STATE = "casework_scores_new"


def _write_state(sql: str, params: list) -> int:
    """Replace every ``ScoreState`` row with the rows of the full select; how many.

    PostgreSQL: the select fills a temporary table (``CREATE TABLE … AS`` runs it in
    parallel, which ``INSERT … SELECT`` would not), and set-based statements bring
    the rows in line with it: one update of the sums of every subject that has a
    row; then, only when the counts show there are any, the new subjects added and
    the rows of subjects that no longer count removed. An update that changes only
    the sums touches no index and, with the free space the table keeps on each page
    (migration 0025), writes the new row version on the same page (a HOT update),
    which also reclaims the versions an earlier recompute left there: rewriting
    tens of thousands of rows costs about one heap write each, where deleting and
    inserting them again wrote every index of the table.
    Elsewhere: the rows come back and are inserted afresh.
    """
    state = ScoreState._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            found = cursor.fetchall()
            cursor.execute(f"DELETE FROM {state}")
            _insert_rows(ScoreState, STATE_COLUMNS, found)
            return len(found)
        columns = ", ".join(STATE_COLUMNS)
        sums = ", ".join(f"{f} = n.{f}" for f in formulas.SUM_FIELDS)
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{NEW_STATE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {NEW_STATE} ({columns}) ON COMMIT DROP AS {sql}", params
        )
        rows = cursor.rowcount
        cursor.execute(f"UPDATE {state} s SET {sums} FROM {NEW_STATE} n WHERE n.key = s.key")
        updated = cursor.rowcount  # keys are unique on both sides
        if updated < rows:
            cursor.execute(
                f"INSERT INTO {state} ({columns}) SELECT {columns} FROM {NEW_STATE} n "
                f"WHERE NOT EXISTS (SELECT 1 FROM {state} s WHERE s.key = n.key)"
            )
        cursor.execute(f"SELECT count(*) FROM {state}")
        if cursor.fetchone()[0] > rows:
            cursor.execute(
                f"DELETE FROM {state} s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {NEW_STATE} n WHERE n.key = s.key)"
            )
        return rows


def recompute_scores(
    *,
    now: datetime | None = None,
    reattribute: bool = False,
    snapshot: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Rebuild every ``ScoreState`` from the ratings and the timeline, re-based to ``now``.

    One aggregate statement computes every row in the database (``_full_select``),
    written by ``_write_state``. Holds the scores lock exclusively, so incremental
    updates wait and then land on the new rows and the new epoch. ``reattribute``
    also derives each case's attribution from its timeline again. Writes today's
    snapshot for the trends. Returns the row count.
    """
    now = now or timezone.now()

    def step(name: str, done: int, total: int) -> None:
        if progress:
            progress(name, done, total)

    with transaction.atomic():
        hold_scores(exclusive=True)
        _settings_for_the_aggregate()
        current_epoch()  # the row exists before it is moved
        # The sweep's queued score updates are counted below from the timeline itself.
        from .score_queue import forget_pending

        forget_pending()
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
        rows = _write_state(*_full_select(now))
        ScoreEpoch.objects.filter(pk=1).update(epoch=now)
        step("aggregate", 1, 1)
        if snapshot:
            # PostgreSQL: from the temporary table ``_write_state`` filled (the same rows).
            write_snapshot(now=now, source=NEW_STATE if connection.vendor == "postgresql" else None)
    logger.info("scores recomputed: %d subjects", rows)
    return rows


def platform_of(sums: dict[str, Sums]) -> dict[int | None, Sums]:
    """The platform's sums (key None) and per category, from the organisation rows."""
    platform: dict[int | None, Sums] = {}
    for key, part in sums.items():
        org, _user, category = _subject(key)
        if org is not None:
            platform.setdefault(category, Sums()).add(part)
    return platform


def platform_sums(category_id: int | None = None) -> Sums:
    """The platform's sums (in one category): the sum of the organisation rows."""
    from django.db.models import Sum

    rows = ScoreState.objects.filter(org_id__isnull=False)
    rows = (
        rows.filter(category_id__isnull=True)
        if category_id is None
        else rows.filter(category_id=category_id)
    )
    totals = rows.aggregate(**{f: Sum(f) for f in formulas.SUM_FIELDS})
    return _sums_of(totals[f] for f in formulas.SUM_FIELDS)


def snapshot_rows(sums: dict[str, Sums], *, day) -> list[tuple]:
    """The snapshot rows of ``sums`` (scaled to the day), by the formulas in Python.

    ``write_snapshot`` computes the same in SQL; a test checks that they agree.
    """
    w = weights()
    platform = platform_of(sums)
    means = {category: formulas.platform_means(part) for category, part in platform.items()}
    neutral = formulas.platform_means(Sums())
    rows = []
    for key, part in sums.items():
        org, user, category = _subject(key)
        result = formulas.scores(
            part, Sums(), decay=1.0, weights=w, means=means.get(category, neutral)
        )
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
    return rows


def _clamp_sql(value: str) -> str:
    if connection.vendor == "postgresql":
        return f"GREATEST(0{_f8()}, LEAST(1{_f8()}, {value}))"
    return f"MAX(0.0, MIN(1.0, {value}))"


def _snapshot_sql(day, source: str | None = None) -> tuple[str, list]:
    """``formulas.scores`` of every stored row (scaled to now, so no decay) as one
    ``INSERT … SELECT``: the platform means per category from the organisation rows,
    each subject shrunk towards its category's means (staff: the overall ones).

    ``source``: a table holding the same rows as ``ScoreState`` (the recompute's
    temporary table, which it has just copied into ``ScoreState``), else that table.
    """
    F8 = _f8()
    w = weights()
    c = f"%s{F8}"
    clamp = _clamp_sql

    def ratio(num: str, den: str, default: float) -> str:
        return f"CASE WHEN {den} > 0 THEN {clamp(f'{num} / {den}')} ELSE {default!r}{F8} END"

    def shrunk(total: str, count: str, mean: str) -> str:
        return clamp(f"({c} * {mean} + {total}) / ({c} + {count})")

    ew = w.effectiveness_weights
    ew_total = ew["solved"] + ew["on_time"] + ew["not_reopened"] + ew["kept"]
    iw = w.index_weights
    state = source or ScoreState._meta.db_table
    sql = (
        f"INSERT INTO {ScoreSnapshot._meta.db_table} (day, key, org_id, user_id, category_id, "
        'evaluation, effectiveness, "index", ratings) '
        "WITH platform AS (SELECT category_id AS cat, SUM(weight) AS w, SUM(quality) AS q, "
        "SUM(solved) AS s, SUM(on_time) AS t, SUM(arrived) AS a, "
        "SUM(escalated_away) AS e, SUM(reopened) AS r "
        f"FROM {state} WHERE org_id IS NOT NULL GROUP BY category_id), "
        "means AS (SELECT cat, "
        f"{ratio('q', 'w', 0.5)} AS mq, {ratio('s', 'w', 0.5)} AS ms, "
        f"{ratio('t', 'w', 1.0)} AS mt, {ratio('r', 'a', 0.0)} AS mr, "
        f"{ratio('e', 'a', 0.0)} AS me FROM platform), "
        "shares AS (SELECT x.key, x.org_id, x.user_id, x.category_id, x.weight AS n, "
        f"{shrunk('x.quality', 'x.weight', 'COALESCE(m.mq, 0.5)')} AS quality, "
        f"{shrunk('x.solved', 'x.weight', 'COALESCE(m.ms, 0.5)')} AS solved, "
        f"{shrunk('x.on_time', 'x.weight', 'COALESCE(m.mt, 1.0)')} AS on_time, "
        f"{shrunk('x.reopened', 'x.arrived', 'COALESCE(m.mr, 0.0)')} AS reopen, "
        f"{shrunk('x.escalated_away', 'x.arrived', 'COALESCE(m.me, 0.0)')} AS escalated "
        f"FROM {state} x LEFT JOIN means m ON COALESCE(m.cat, 0) = COALESCE(x.category_id, 0)), "
        "scored AS (SELECT key, org_id, user_id, category_id, n, 100 * quality AS evaluation, "
        f"100 * (%s{F8} * solved + %s{F8} * on_time + %s{F8} * (1 - reopen) "
        f"+ %s{F8} * (1 - escalated)) / %s{F8} AS effectiveness FROM shares), "
        "based AS (SELECT key, org_id, user_id, category_id, n, evaluation, effectiveness, "
        f"(%s{F8} * evaluation + %s{F8} * effectiveness) / %s{F8} AS base FROM scored) "
        "SELECT %s, key, org_id, user_id, category_id, evaluation, effectiveness, "
        f"CASE WHEN %s{F8} > 0 AND effectiveness >= %s{F8} "
        f"THEN (CASE WHEN base * effectiveness / %s{F8} > 100 THEN 100{F8} "
        f"ELSE base * effectiveness / %s{F8} END) "
        f"ELSE (CASE WHEN base > 100 THEN 100{F8} ELSE base END) END, n FROM based"
    )
    c_value = w.prior_strength
    threshold = w.boost_threshold
    params = [
        *[c_value, c_value] * 5,
        ew["solved"],
        ew["on_time"],
        ew["not_reopened"],
        ew["kept"],
        ew_total,
        iw["evaluation"],
        iw["effectiveness"],
        iw["evaluation"] + iw["effectiveness"],
        day,
        threshold,
        threshold,
        threshold,
        threshold,
    ]
    return sql, params


def write_snapshot(*, now: datetime, source: str | None = None) -> int:
    """Today's scores of every organisation and staff member (for the trends), computed
    in the database from the stored rows, which the recompute has just scaled to now.

    ``source``: see ``_snapshot_sql``; the recompute passes its temporary table of the
    rows it wrote (50,000 narrow rows in the session's own buffers, where the score
    rows' table keeps half of each page free and the versions of earlier runs).
    """
    day = timezone.localdate(now)
    ScoreSnapshot.objects.filter(day=day).delete()
    with connection.cursor() as cursor:
        cursor.execute(*_snapshot_sql(day, source))
        return cursor.rowcount


# --- station visits (casework.services.intake): the youth's rating of a station visit -----------


def visit_sums(stars: int, weight: float) -> Sums:
    """A visit rating counts for the station like a case rating whose every part is the
    visit's stars mapped to 0..1 (docs/scores.md, "Station visits")."""
    quality = (stars - 1) / 4
    return Sums(weight=weight, quality=weight * quality, solved=weight * quality, on_time=weight)


def record_visit_rating(rating, *, category_id: int) -> None:
    """Count one station-visit rating into the station's rows: one statement."""
    with transaction.atomic(savepoint=False):
        epoch = locked_epoch()
        weight = (
            formulas.recency(
                _ts(rating.created_at), _ts(epoch), settings.SCORES_HALF_LIFE.total_seconds()
            )
            * settings.SCORES_VISIT_WEIGHT
        )
        deltas = Deltas()
        deltas.add_org(rating.station_id, category_id, visit_sums(rating.stars, weight))
        apply_deltas(deltas)


def _visits_sql(epoch: datetime) -> tuple[str, list]:
    """The visit ratings as rows of the full recompute's ``parts`` (``visit_sums`` in SQL)."""
    from ..models import VisitRating

    F8 = _f8()
    Z = f"0{F8}"
    w = f"(POWER(2{F8}, ({_epoch_seconds_sql('v.created_at')} - %s{F8}) / %s{F8}) * %s{F8})"
    q = f"{w} * (v.stars - 1) / 4{F8}"
    sql = (
        f"SELECT v.station_id, c.category_id, {w}, {q}, {q}, {w}, {Z}, {Z}, {Z} "
        f"FROM {VisitRating._meta.db_table} v JOIN {Case._meta.db_table} c ON c.id = v.case_id"
    )
    one = [
        _ts(epoch),
        settings.SCORES_HALF_LIFE.total_seconds(),
        float(settings.SCORES_VISIT_WEIGHT),
    ]
    return sql, one * 4


def stored_sums() -> tuple[datetime, dict[str, Sums]]:
    """The stored rows, as (epoch, key → Sums): for checks and the snapshot."""
    epoch = current_epoch()
    rows = ScoreState.objects.values_list("key", *formulas.SUM_FIELDS)
    return epoch, {key: _sums_of(values) for key, *values in rows}


__all__ = [
    "apply_deltas",
    "current_epoch",
    "full_sums",
    "hold_scores",
    "locked_epoch",
    "platform_sums",
    "recompute_scores",
    "record_events",
    "record_rating",
    "stored_sums",
    "weights",
]
