"""The score formulas (casework.scores): plain data, no database; properties with hypothesis."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casework import scores as f

W = f.Weights(
    half_life_seconds=180 * 86400,
    prior_strength=10.0,
    star_weights={"timeliness": 0.25, "attitude": 0.25, "outcome": 0.3, "solved": 0.2},
    solved_values={"solved": 1.0, "partly": 0.5, "not_solved": 0.0},
    effectiveness_weights={"solved": 0.4, "on_time": 0.3, "not_reopened": 0.15, "kept": 0.15},
    index_weights={"evaluation": 0.5, "effectiveness": 0.5},
    boost_threshold=80.0,
)
SOLVED = ["solved", "partly", "not_solved"]
ORDER = {"not_solved": 0, "partly": 1, "solved": 2}

stars = st.integers(min_value=1, max_value=5)
ratings = st.tuples(stars, stars, stars, st.sampled_from(SOLVED))
weights = st.floats(min_value=0.01, max_value=3.0)


def quality(r):
    return f.rating_quality(timeliness=r[0], attitude=r[1], outcome=r[2], solved=r[3], weights=W)


def add_rating(sums: f.Sums, platform: f.Sums, r, weight=1.0, on_time=True):
    part = f.rating_sums(
        quality=quality(r), solved_value=W.solved_values[r[3]], weight=weight, on_time=on_time
    )
    sums.add(part)
    platform.add(part)


def org_with(rs, other=()):
    org, platform = f.Sums(), f.Sums()
    for r, w in rs:
        add_rating(org, platform, r, w)
    for r, w in other:
        add_rating(f.Sums(), platform, r, w)
    return org, platform


def all_scores(s: f.Scores):
    return [s.evaluation, s.effectiveness, s.index]


# --- properties -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(ratings, weights), max_size=30),
    st.lists(st.tuples(ratings, weights), max_size=30),
    st.floats(min_value=0, max_value=50),
    st.floats(min_value=0, max_value=5),
    st.floats(min_value=0, max_value=5),
    st.floats(min_value=0.001, max_value=1.0),
)
def test_scores_stay_within_0_and_100(own, others, arrived, escalated, reopened, decay):
    org, platform = org_with(own, others)
    org.arrived, org.escalated_away, org.reopened = arrived, escalated, reopened
    platform.add(f.Sums(arrived=arrived, escalated_away=escalated, reopened=reopened))
    result = f.scores(org, platform, decay=decay, weights=W)
    for value in all_scores(result):
        assert 0.0 <= value <= 100.0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ratings, weights), max_size=20), ratings, ratings, weights)
def test_a_better_rating_never_lowers_a_score(history, a, b, weight):
    """Of two ratings, the one no worse in every part leaves every score no lower."""
    pairs = list(zip(a[:3], b[:3], strict=True))
    worse = (*(min(x, y) for x, y in pairs), min(a[3], b[3], key=ORDER.get))
    better = (*(max(x, y) for x, y in pairs), max(a[3], b[3], key=ORDER.get))
    results = []
    for r in (worse, better):
        org, platform = org_with(history)
        add_rating(org, platform, r, weight)
        results.append(f.scores(org, platform, decay=1.0, weights=W))
    for low, high in zip(all_scores(results[0]), all_scores(results[1]), strict=True):
        assert high >= low - 1e-9


@settings(max_examples=200, deadline=None)
@given(ratings, st.lists(st.tuples(ratings, weights), min_size=1, max_size=20))
def test_one_rating_moves_a_small_office_far_more_than_a_large_one(base, others):
    """Shrinkage: the first rating moves an office at most 1/(C+1) of the way, the fourth
    at most 1/(C+4), and the most one rating can move an office with 300 ratings is
    a tenth of what it can move one with 3."""
    # A platform of 10,000 ratings' weight, so its own mean barely moves.
    scale = 10_000 / sum(w for _, w in others)
    background = [(r, w * scale) for r, w in others]
    extremes = [(1, 1, 1, "not_solved"), (5, 5, 5, "solved")]
    moves = {}
    for n in (0, 3, 300):
        largest = 0.0
        for new in extremes:
            org, platform = org_with([(base, 1.0)] * n, background)
            before = f.scores(org, platform, decay=1.0, weights=W).evaluation
            add_rating(org, platform, new)
            after = f.scores(org, platform, decay=1.0, weights=W).evaluation
            largest = max(largest, abs(after - before))
        moves[n] = largest
    drift = 100 / 10_000
    assert moves[0] <= 100 / (W.prior_strength + 1) + drift
    assert moves[3] <= 100 / (W.prior_strength + 4) + drift
    assert moves[300] <= moves[3] / 10


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(ratings, st.integers(0, 3), st.floats(min_value=0, max_value=400)),
        max_size=25,
    ),
    st.sampled_from([0, 1, 2]),
)
def test_incremental_sums_agree_with_a_recompute_from_scratch(events, edit_index):
    """Adding ratings one by one (and replacing one, as an edit does) equals summing afresh,
    whatever the epoch the sums are scaled to."""
    now = 1_000 * 86400.0
    epoch_old, epoch_new = 0.0, now
    incremental = {}
    kept = []
    for r, org, days_ago in events:
        t = now - days_ago * 86400
        part = f.rating_sums(
            quality=quality(r),
            solved_value=W.solved_values[r[3]],
            weight=f.recency(t, epoch_old, W.half_life_seconds),
        )
        incremental.setdefault(org, f.Sums()).add(part)
        kept.append([r, org, t])
    if kept and edit_index < len(kept):
        r, org, t = kept[edit_index]
        new_r = (5, 5, 5, "solved")
        w = f.recency(t, epoch_old, W.half_life_seconds)
        incremental[org].add(
            f.rating_sums(quality=quality(r), solved_value=W.solved_values[r[3]], weight=w), -1
        )
        incremental[org].add(f.rating_sums(quality=quality(new_r), solved_value=1.0, weight=w))
        kept[edit_index][0] = new_r
    full = {}
    for r, org, t in kept:
        full.setdefault(org, f.Sums()).add(
            f.rating_sums(
                quality=quality(r),
                solved_value=W.solved_values[r[3]],
                weight=f.recency(t, epoch_new, W.half_life_seconds),
            )
        )
    platform = f.total(full.values())
    for org, sums in full.items():
        a = f.scores(
            incremental[org],
            f.total(incremental.values()),
            decay=f.decay_to(now, epoch_old, W.half_life_seconds),
            weights=W,
        )
        b = f.scores(sums, platform, decay=1.0, weights=W)
        assert a.evaluation == pytest.approx(b.evaluation, abs=1e-6)
        assert a.index == pytest.approx(b.index, abs=1e-6)
        assert a.ratings == pytest.approx(b.ratings, rel=1e-9, abs=1e-12)


# --- attribution --------------------------------------------------------------------------


def at(hours):
    return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hours)


def entry(hours, kind, org, actor=None, reason=""):
    return f.TimelineEntry(at=at(hours), kind=kind, org_id=org, actor_id=actor, reason=reason)


def test_an_escalated_case_is_shared_by_the_time_each_level_held_it():
    # Given a case held 6 hours by the district, escalated on a breach, then 18 hours by the city
    timeline = [
        entry(0, "submitted", 3, actor=99),
        entry(0, "routed", 3),
        entry(1, "accepted", 3, actor=7),
        entry(6, "escalated", 2, reason="sla_breach"),
        entry(10, "resolved", 2, actor=8),
    ]
    # When it is rated 24 hours after submission
    result = f.attribute(timeline, until=at(24), assignee_id=8, youth_id=99)
    # Then the district has a quarter, missed its deadline; the city three quarters
    assert result.shares == pytest.approx({3: 0.25, 2: 0.75})
    assert result.on_time == {3: False, 2: True}
    assert result.staff == {7, 8}


def test_a_case_that_never_waited_goes_to_its_last_holder():
    timeline = [entry(0, "submitted", 3, actor=99), entry(0, "escalated", 2, reason="manual")]
    result = f.attribute(timeline, until=at(0), assignee_id=None, youth_id=99)
    assert result.shares == {2: 1.0}
    assert result.staff == set()


def test_events_after_the_rating_do_not_change_the_attribution():
    timeline = [entry(0, "routed", 3), entry(5, "transferred", 4)]
    assert f.attribute(timeline, until=at(4), assignee_id=None, youth_id=1).shares == {3: 1.0}


def test_the_boost_is_proportional_from_the_threshold():
    assert f.combined_index(60, 79.9, W) == pytest.approx((60 + 79.9) / 2)
    assert f.combined_index(60, 100, W) == pytest.approx(80 * 100 / 80)
    assert f.combined_index(100, 100, W) == 100


def test_low_rating():
    assert f.is_low_rating(timeliness=2, attitude=3, outcome=2, solved="solved", low=2.5)
    assert f.is_low_rating(timeliness=5, attitude=5, outcome=5, solved="not_solved", low=2.5)
    assert not f.is_low_rating(timeliness=3, attitude=3, outcome=2, solved="partly", low=2.5)


# --- the worked example of docs/scores.md ---------------------------------------------------


def test_worked_example_in_docs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "scores.md").read_text()
    block = re.search(r"```worked-example\n(.*?)```", text, re.S).group(1)
    expected = {k.strip(): float(v) for k, v in (line.split("=") for line in block.splitlines())}

    q1 = f.rating_quality(timeliness=5, attitude=4, outcome=5, solved="solved", weights=W)
    q2 = f.rating_quality(timeliness=2, attitude=3, outcome=1, solved="not_solved", weights=W)
    org = f.Sums()
    org.add(f.rating_sums(quality=q1, solved_value=1.0, weight=1.5 * 1.0))
    half_life_ago = f.recency(-W.half_life_seconds, 0.0, W.half_life_seconds)
    org.add(f.rating_sums(quality=q2, solved_value=0.0, weight=half_life_ago * 1.0, share=0.75))
    org.arrived = 1.0 + half_life_ago
    platform = f.Sums(
        weight=100, quality=70, solved=60, on_time=90, arrived=120, escalated_away=12, reopened=6
    )
    result = f.scores(org, platform, decay=1.0, weights=W)

    assert q1 == pytest.approx(expected["quality_1"], abs=1e-4)
    assert q2 == pytest.approx(expected["quality_2"], abs=1e-4)
    assert result.evaluation == pytest.approx(expected["evaluation"], abs=1e-4)
    assert result.effectiveness == pytest.approx(expected["effectiveness"], abs=1e-4)
    assert result.index == pytest.approx(expected["index"], abs=1e-4)


def test_settings_hold_the_weights_the_tests_use(settings):
    from casework.services.scores import weights as from_settings

    assert from_settings() == W
