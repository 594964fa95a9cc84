"""Ratings, evaluation scores, help effectiveness, complaints and reports (docs/scores.md).

Every weight of the score formulas is here; casework.services.scores reads them
through ``weights()``. Changing one takes full effect at the next full recompute
(nightly, or ``python manage.py recompute_scores``).
"""

from datetime import timedelta

# Recency: a rating (or reopen, escalation) loses half its weight every half-life.
SCORES_HALF_LIFE = timedelta(days=180)
# Shrinkage: a subject's mean is a Bayesian average with this many imaginary ratings at
# the platform mean, so a handful of ratings cannot swing a small office.
SCORES_PRIOR_STRENGTH = 10.0
# One rating as a number in 0..1: stars (1..5 → 0..1) and the solved answer, weighted.
SCORES_STAR_WEIGHTS = {"timeliness": 0.25, "attitude": 0.25, "outcome": 0.3, "solved": 0.2}
SCORES_SOLVED_VALUES = {"solved": 1.0, "partly": 0.5, "not_solved": 0.0}
# Case difficulty per category code: a hard case's rating counts more. A category not
# named here weighs its own ``Category.difficulty_weight`` (1 unless an admin set it).
SCORES_CATEGORY_DIFFICULTY = {
    "psychological": 1.5,
    "safety": 1.5,
    "legal": 1.3,
    "hardship": 1.2,
    "family": 1.2,
    "employment": 1.0,
    "study": 1.0,
    "other": 0.8,
}
# Help effectiveness (帮扶成效), 0..100: the weighted shares.
SCORES_EFFECTIVENESS_WEIGHTS = {"solved": 0.4, "on_time": 0.3, "not_reopened": 0.15, "kept": 0.15}
# The combined index: evaluation and effectiveness, then the proportional boost from the
# threshold up (index x effectiveness / threshold, at most 100).
SCORES_INDEX_WEIGHTS = {"evaluation": 0.5, "effectiveness": 0.5}
SCORES_BOOST_THRESHOLD = 80.0
# Rankings: how far back the trend looks (nightly snapshots).
SCORES_TREND_DAYS = 30

# A rating whose mean star is at most this, or "not solved", offers a dispute.
CASEWORK_LOW_RATING_AVERAGE = 2.5
# How long a youth's complaint (吐槽) may wait for the supervisors' answer.
CASEWORK_COMPLAINT_RESPONSE_TIME = timedelta(days=3)
# Independent reports (distinct people) that hide a case from public pages until review.
CASEWORK_REPORTS_TO_HIDE = 3
