"""Aggregate figures for the public statistics page, in a fixed number of queries.

Nothing here identifies anyone: counts by stage, category, city and intake
channel, an on-time rate and the average rating.

On-time rate (documented definition): of the cases that reached a result (their
timeline has a ``resolved`` event), the share that never missed a stage deadline
on the way, i.e. whose timeline has no ``sla_breach`` event and no ``escalated``
event with reason ``sla_breach``. A case escalated for another reason (an appeal,
a reopening, capacity) still counts as on time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Avg, Count, Q

from .models import Case, CaseEvent, Category, Rating, Region
from .public import coarse_region_code
from .states import STAGE_OF_STATE

STAGE_ORDER = ("intake", "verification", "coordination", "paused", "feedback", "rating", "closed")


@dataclass
class PublicStats:
    total: int = 0
    by_stage: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[Category, int]] = field(default_factory=list)
    by_region: list[tuple[str, str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    resolved: int = 0
    on_time: int = 0
    ratings: int = 0
    avg_timeliness: float | None = None
    avg_attitude: float | None = None
    avg_outcome: float | None = None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.resolved if self.resolved else None

    @property
    def avg_rating(self) -> float | None:
        parts = [self.avg_timeliness, self.avg_attitude, self.avg_outcome]
        if any(p is None for p in parts):
            return None
        return sum(parts) / 3


def public_stats() -> PublicStats:
    """Every figure of the statistics page: six queries whatever the number of cases."""
    stats = PublicStats()

    by_state: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    for state, channel, n in (
        Case.objects.values_list("state", "channel").annotate(n=Count("pk")).order_by()
    ):
        by_state[state] += n
        by_channel[channel] += n
    stats.by_channel = [(c, by_channel[c]) for c in Case.Channel.values if by_channel[c]]
    stages: Counter[str] = Counter()
    for state, n in by_state.items():
        stages[STAGE_OF_STATE.get(state, "closed")] += n
    stats.total = sum(by_state.values())
    stats.by_stage = [(stage, stages[stage]) for stage in STAGE_ORDER if stages[stage]]

    counts = dict(Case.objects.values_list("category_id").annotate(n=Count("pk")).order_by())
    stats.by_category = [(c, counts[c.pk]) for c in Category.objects.all() if counts.get(c.pk)]

    cities: Counter[str] = Counter()
    for code, n in Case.objects.values_list("region_code").annotate(n=Count("pk")).order_by():
        cities[coarse_region_code(code) or ""] += n
    names = dict(Region.objects.filter(code__in=set(cities) - {""}).values_list("code", "name"))
    stats.by_region = sorted(
        ((code, names.get(code, ""), n) for code, n in cities.items()),
        key=lambda row: (-row[2], row[0]),
    )

    resolved_ids = CaseEvent.objects.filter(kind="resolved").values("case_id")
    late = (
        CaseEvent.objects.filter(case_id__in=resolved_ids)
        .filter(Q(kind="sla_breach") | Q(kind="escalated", payload__reason="sla_breach"))
        .values("case_id")
    )
    figures = Case.objects.filter(pk__in=resolved_ids).aggregate(
        resolved=Count("pk"), late=Count("pk", filter=Q(pk__in=late))
    )
    stats.resolved = figures["resolved"]
    stats.on_time = figures["resolved"] - figures["late"]

    rating = Rating.objects.aggregate(
        n=Count("pk"), t=Avg("timeliness"), a=Avg("attitude"), o=Avg("outcome")
    )
    stats.ratings = rating["n"]
    if rating["n"]:
        stats.avg_timeliness = float(rating["t"])
        stats.avg_attitude = float(rating["a"])
        stats.avg_outcome = float(rating["o"])
    return stats
