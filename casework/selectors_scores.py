"""Reads for the scores: rankings per level and category with trends, complaints, reviews.

A caller sees only their own subtree: the organisations they supervise (and
everything below); a platform admin sees all. Each function runs a fixed
number of queries whatever the number of organisations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import permissions
from . import scores as formulas
from .models import Complaint, Membership, Organisation, ScoreSnapshot, ScoreState, User
from .services.scores import current_epoch, org_key, platform_sums, user_key, weights


@dataclass(frozen=True)
class RankingRow:
    rank: int
    subject_id: int
    name: str
    level: int | None
    scores: formulas.Scores
    trend: list[tuple[str, float]]  # (day, index) of the nightly snapshots, oldest first
    change: float | None  # index now minus the oldest snapshot's


def supervised_paths(user: User | None) -> list[str] | None:
    """The roots of the caller's subtree(s); None means everything (admins)."""
    if user is None or not user.is_authenticated:
        return []
    if user.is_superuser:
        return None
    return [r.org_path for r in permissions.roles_of(user) if r.role == permissions.SUPERVISOR]


def _subtree(paths: list[str] | None) -> Q:
    if paths is None:
        return Q()
    query = Q(pk__in=[])
    for path in paths:
        query |= Q(path__startswith=path)
    return query


def _read(keys: list[str]) -> dict[str, formulas.Sums]:
    rows = ScoreState.objects.filter(key__in=keys).values_list("key", *formulas.SUM_FIELDS)
    return {
        key: formulas.Sums(**dict(zip(formulas.SUM_FIELDS, values, strict=True)))
        for key, *values in rows
    }


def _trends(keys: list[str], days: int) -> dict[str, list[tuple[str, float]]]:
    since = timezone.localdate() - timedelta(days=days)
    trends: dict[str, list[tuple[str, float]]] = {}
    for key, day, index in (
        ScoreSnapshot.objects.filter(key__in=keys, day__gte=since)
        .order_by("day")
        .values_list("key", "day", "index")
    ):
        trends.setdefault(key, []).append((day.isoformat(), round(index, 2)))
    return trends


def _rank(subjects, key_of, platform: formulas.Sums, *, sort_by: str) -> list[RankingRow]:
    w = weights()
    epoch = current_epoch()
    now = timezone.now().timestamp()
    decay = formulas.decay_to(now, epoch.timestamp(), w.half_life_seconds)
    keys = [key_of(s) for s in subjects]
    sums = _read(keys)
    trends = _trends(keys, settings.SCORES_TREND_DAYS)
    computed = []
    for subject, key in zip(subjects, keys, strict=True):
        result = formulas.scores(sums.get(key, formulas.Sums()), platform, decay=decay, weights=w)
        trend = trends.get(key, [])
        change = round(result.index - trend[0][1], 2) if trend else None
        computed.append((subject, result, trend, change))
    computed.sort(key=lambda item: (-getattr(item[1], sort_by), item[0][0]))
    return [
        RankingRow(
            rank=i + 1,
            subject_id=subject[0],
            name=subject[1],
            level=subject[2],
            scores=result,
            trend=trend,
            change=change,
        )
        for i, (subject, result, trend, change) in enumerate(computed)
    ]


def org_rankings(
    user: User | None,
    *,
    level: int | None = None,
    category_id: int | None = None,
    sort_by: str = "index",
) -> list[RankingRow]:
    """Organisations of the caller's subtree, best first, with their trend.

    ``level`` keeps one level of the tree; ``category_id`` scores only the cases
    of that category. Partner bodies hold no cases and are left out.
    """
    paths = supervised_paths(user)
    if paths == []:
        return []
    orgs = Organisation.objects.filter(_subtree(paths)).exclude(kind=Organisation.Kind.PARTNER)
    if level is not None:
        orgs = orgs.filter(level=level)
    subjects = list(orgs.order_by("pk").values_list("pk", "name", "level"))
    platform = platform_sums(category_id)
    return _rank(subjects, lambda s: org_key(s[0], category_id), platform, sort_by=sort_by)


def staff_rankings(user: User | None, *, sort_by: str = "evaluation") -> list[RankingRow]:
    """Staff (handlers and verifiers) of the caller's subtree, by their evaluation score."""
    paths = supervised_paths(user)
    if paths == []:
        return []
    members = Membership.objects.filter(
        role__in=[Membership.Role.HANDLER, Membership.Role.VERIFIER]
    )
    if paths is not None:
        members = members.filter(_members_under(paths))
    seen: dict[int, tuple] = {}
    for user_id, username, level in members.values_list(
        "user_id", "user__username", "organisation__level"
    ).order_by("user_id"):
        seen.setdefault(user_id, (user_id, username, level))
    platform = platform_sums()
    return _rank(list(seen.values()), lambda s: user_key(s[0]), platform, sort_by=sort_by)


def _members_under(paths: list[str]) -> Q:
    query = Q(pk__in=[])
    for path in paths:
        query |= Q(organisation__path__startswith=path)
    return query


def org_scores(org: Organisation, *, category_id: int | None = None) -> formulas.Scores:
    """One organisation's scores now (no scoping: callers check who may see them)."""
    w = weights()
    key = org_key(org.pk, category_id)
    decay = formulas.decay_to(
        timezone.now().timestamp(), current_epoch().timestamp(), w.half_life_seconds
    )
    return formulas.scores(
        _read([key]).get(key, formulas.Sums()),
        platform_sums(category_id),
        decay=decay,
        weights=w,
    )


def complaints_for(user: User | None, *, open_only: bool = True) -> QuerySet[Complaint]:
    """Complaints about organisations of the caller's subtree, the most urgent first."""
    paths = supervised_paths(user)
    if paths == []:
        return Complaint.objects.none()
    query = Complaint.objects.all()
    if paths is not None:
        where = Q(pk__in=[])
        for path in paths:
            where |= Q(org__path__startswith=path)
        query = query.filter(where)
    if open_only:
        query = query.filter(status=Complaint.Status.OPEN)
    return query.select_related("case", "org").order_by("due_at")


def hidden_cases_for(user: User | None):
    """Cases of the caller's subtree hidden after reports, waiting for a review."""
    from .models import Case

    paths = supervised_paths(user)
    if paths == []:
        return Case.objects.none()
    query = Case.objects.filter(hidden_from_public=True, reports__review__isnull=True)
    if paths is not None:
        where = Q(pk__in=[])
        for path in paths:
            where |= Q(org__path__startswith=path)
        query = query.filter(where)
    return query.distinct().select_related("org", "category")
