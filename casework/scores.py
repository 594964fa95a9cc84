"""Score formulas: plain functions over plain data, no database (docs/scores.md).

Everything a score needs is kept as running sums per subject (an organisation,
a staff member, an organisation within one category, the platform). Each
contribution carries a recency weight ``2 ** ((t - t0) / half_life)`` scaled to
a fixed epoch ``t0``, so adding or removing one is O(1); reading divides by
``2 ** ((now - t0) / half_life)`` to bring the sums to "now". Ratios of sums
(weighted means) do not need that step, counts (the evidence behind a mean)
do. The nightly recompute re-bases ``t0`` so the weights stay small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# The running sums of one subject. "rated" sums are over ratings (weight = share x
# recency x difficulty); "event" sums are over timeline events (weight = recency).
SUM_FIELDS = (
    "weight",  # sum of rating weights: the evidence behind the rating means
    "quality",  # sum of weight x rating quality (0..1)
    "solved",  # sum of weight x solved value (solved 1, partly 0.5, not solved 0)
    "on_time",  # sum of weight x (1 if this organisation missed no deadline on the case)
    "arrived",  # sum of recency over cases that came to this organisation
    "escalated_away",  # sum of recency over escalations out of this organisation
    "reopened",  # sum of recency over reopens (disputes) while it held the case
)


@dataclass(frozen=True)
class Weights:
    """Every tunable number of the formulas (config/settings/scores.py)."""

    half_life_seconds: float
    prior_strength: float
    star_weights: Mapping[str, float]  # timeliness, attitude, outcome, solved
    solved_values: Mapping[str, float]  # solved, partly, not_solved
    effectiveness_weights: Mapping[str, float]  # solved, on_time, not_reopened, kept
    index_weights: Mapping[str, float]  # evaluation, effectiveness
    boost_threshold: float  # effectiveness (0..100) from which the index is boosted


@dataclass
class Sums:
    weight: float = 0.0
    quality: float = 0.0
    solved: float = 0.0
    on_time: float = 0.0
    arrived: float = 0.0
    escalated_away: float = 0.0
    reopened: float = 0.0

    def add(self, other: Sums | Mapping[str, float], sign: float = 1.0) -> Sums:
        get = other.get if isinstance(other, Mapping) else lambda k, d=0.0: getattr(other, k)
        for name in SUM_FIELDS:
            setattr(self, name, getattr(self, name) + sign * get(name, 0.0))
        return self

    def scaled(self, factor: float) -> Sums:
        return Sums(**{name: getattr(self, name) * factor for name in SUM_FIELDS})

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SUM_FIELDS}


# --- one rating -----------------------------------------------------------------


def rating_quality(
    *, timeliness: int, attitude: int, outcome: int, solved: str, weights: Weights
) -> float:
    """A rating as one number in 0..1: weighted stars (1..5 mapped to 0..1) and the answer."""
    w = weights.star_weights
    parts = {
        "timeliness": (timeliness - 1) / 4,
        "attitude": (attitude - 1) / 4,
        "outcome": (outcome - 1) / 4,
        "solved": weights.solved_values[solved],
    }
    total = sum(w[k] for k in parts)
    return sum(w[k] * parts[k] for k in parts) / total


def recency(t: float, epoch: float, half_life: float) -> float:
    """The weight of something that happened at ``t`` (seconds), relative to ``epoch``."""
    return 2.0 ** ((t - epoch) / half_life)


def decay_to(now: float, epoch: float, half_life: float) -> float:
    """The factor that turns epoch-scaled sums into sums as of ``now``."""
    return 2.0 ** ((epoch - now) / half_life)


def is_low_rating(*, timeliness: int, attitude: int, outcome: int, solved: str, low: float) -> bool:
    """Low or "not solved": the youth is offered a dispute."""
    return solved == "not_solved" or (timeliness + attitude + outcome) / 3 <= low


# --- attribution ----------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    """What attribution needs from one timeline event."""

    at: datetime
    kind: str
    org_id: int | None  # the holder after the event
    actor_id: int | None
    reason: str = ""  # payload["reason"] of routing events


MOVE_KINDS = frozenset({"routed", "escalated", "transferred", "delegated", "reassigned"})
# Events whose actor handled the case (supervisors' moves do not make them a handler).
HANDLER_KINDS = frozenset(
    {
        "accepted",
        "verification_scheduled",
        "verification_confirmed",
        "info_requested",
        "referred",
        "resolved",
        "feedback_given",
    }
)


@dataclass
class Attribution:
    shares: dict[int, float] = field(default_factory=dict)  # org id -> share of the holding time
    on_time: dict[int, bool] = field(default_factory=dict)  # org id -> missed no deadline
    staff: set[int] = field(default_factory=set)


def attribute(
    entries: Sequence[TimelineEntry], *, until: datetime, assignee_id: int | None, youth_id: int
) -> Attribution:
    """Who is scored for a case: each holder by the time it held it, and its handlers.

    The holder after each event is the event's organisation; the time from one
    event to the next belongs to that holder, the last holder keeps the case
    until ``until`` (the rating). A case that moved in no measurable time goes
    to its last holder.
    """
    result = Attribution()
    held: dict[int, float] = {}
    missed: set[int] = set()
    holder = None
    entries = [entry for entry in entries if entry.at <= until]
    for i, entry in enumerate(entries):
        if entry.kind == "escalated" and entry.reason == "sla_breach" and holder is not None:
            missed.add(holder)
        if entry.kind == "sla_breach" and entry.org_id is not None:
            missed.add(entry.org_id)
        if entry.org_id is not None:
            holder = entry.org_id
        end = entries[i + 1].at if i + 1 < len(entries) else until
        if holder is not None:
            held[holder] = held.get(holder, 0.0) + max((end - entry.at).total_seconds(), 0.0)
        if (
            entry.kind in HANDLER_KINDS
            and entry.actor_id is not None
            and entry.actor_id != youth_id
        ):
            result.staff.add(entry.actor_id)
    total = sum(held.values())
    if total > 0:
        result.shares = {org: seconds / total for org, seconds in held.items() if seconds > 0}
    elif holder is not None:
        result.shares = {holder: 1.0}
    result.on_time = {org: org not in missed for org in result.shares}
    if assignee_id is not None:
        result.staff.add(assignee_id)
    return result


def rating_sums(
    *, quality: float, solved_value: float, weight: float, share: float = 1.0, on_time: bool = True
) -> Sums:
    """One rating's contribution to one subject's sums."""
    w = weight * share
    return Sums(weight=w, quality=w * quality, solved=w * solved_value, on_time=w * on_time)


def event_sums(kind: str, *, weight: float, leaving: bool = False) -> Sums:
    """One timeline event's contribution: an arrival, an escalation away, a reopen."""
    if kind == "disputed":
        return Sums(reopened=weight)
    if kind == "escalated" and leaving:
        return Sums(escalated_away=weight)
    if kind in MOVE_KINDS and not leaving:
        return Sums(arrived=weight)
    return Sums()


# --- reading a subject's scores -------------------------------------------------


def shrunk(total: float, count: float, prior_mean: float, prior_strength: float) -> float:
    """Bayesian average: ``prior_strength`` imaginary observations at the platform mean."""
    return (prior_strength * prior_mean + total) / (prior_strength + count)


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


@dataclass(frozen=True)
class Scores:
    evaluation: float  # 0..100, the 青年评议标准分
    effectiveness: float  # 0..100, help effectiveness
    index: float  # 0..100, combined, with the proportional boost
    ratings: float  # effective number of ratings as of now (after decay)
    solved_share: float
    on_time_share: float
    reopen_rate: float
    escalated_share: float


def platform_means(platform: Sums) -> dict[str, float]:
    """The platform-wide means the subjects are shrunk towards (neutral when empty)."""

    def ratio(num: float, den: float, default: float) -> float:
        return _clamp(num / den) if den > 0 else default

    return {
        "quality": ratio(platform.quality, platform.weight, 0.5),
        "solved": ratio(platform.solved, platform.weight, 0.5),
        "on_time": ratio(platform.on_time, platform.weight, 1.0),
        "reopened": ratio(platform.reopened, platform.arrived, 0.0),
        "escalated_away": ratio(platform.escalated_away, platform.arrived, 0.0),
    }


def combined_index(evaluation: float, effectiveness: float, weights: Weights) -> float:
    """The overall index; a high help-effectiveness boosts it in proportion (the seed's rule).

    From ``boost_threshold`` up, the index is multiplied by effectiveness /
    threshold ("当'帮扶成效'单项获得高分值时，指数总分值作同比例加权计算"), capped at 100.
    """
    w = weights.index_weights
    base = (w["evaluation"] * evaluation + w["effectiveness"] * effectiveness) / (
        w["evaluation"] + w["effectiveness"]
    )
    threshold = weights.boost_threshold
    factor = effectiveness / threshold if threshold > 0 and effectiveness >= threshold else 1.0
    return min(100.0, base * factor)


def scores(
    sums: Sums, platform: Sums, *, decay: float, weights: Weights, means: dict | None = None
) -> Scores:
    """A subject's scores from its epoch-scaled sums, the platform's, and the decay to now.

    ``means``: ``platform_means(platform)`` when the caller scores many subjects at once.
    """
    means = means or platform_means(platform)
    c = weights.prior_strength
    now_sums = sums.scaled(decay)
    n = now_sums.weight
    quality = _clamp(shrunk(now_sums.quality, n, means["quality"], c))
    solved = _clamp(shrunk(now_sums.solved, n, means["solved"], c))
    on_time = _clamp(shrunk(now_sums.on_time, n, means["on_time"], c))
    arrived = now_sums.arrived
    reopen = _clamp(shrunk(now_sums.reopened, arrived, means["reopened"], c))
    escalated = _clamp(shrunk(now_sums.escalated_away, arrived, means["escalated_away"], c))
    ew = weights.effectiveness_weights
    effectiveness = (
        100
        * (
            ew["solved"] * solved
            + ew["on_time"] * on_time
            + ew["not_reopened"] * (1 - reopen)
            + ew["kept"] * (1 - escalated)
        )
        / (ew["solved"] + ew["on_time"] + ew["not_reopened"] + ew["kept"])
    )
    evaluation = 100 * quality
    return Scores(
        evaluation=evaluation,
        effectiveness=effectiveness,
        index=combined_index(evaluation, effectiveness, weights),
        ratings=n,
        solved_share=solved,
        on_time_share=on_time,
        reopen_rate=reopen,
        escalated_share=escalated,
    )


def total(items: Iterable[Sums]) -> Sums:
    result = Sums()
    for item in items:
        result.add(item)
    return result


def finite(value: float) -> bool:
    return math.isfinite(value)
