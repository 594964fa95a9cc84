"""Intake channels (docs/stations.md, "Intake channels"): claim codes and station-visit ratings."""

from datetime import timedelta

# A staff-entered or handed-over case: how long the youth's claim code stays valid, and
# how many wrong tries lock it (staff can then send a new code).
INTAKE_CLAIM_CODE_TTL = timedelta(days=3)
INTAKE_CLAIM_MAX_ATTEMPTS = 5
# How much one station-visit rating weighs in the station's scores, against 1 for a
# case rating (docs/scores.md, "Station visits").
SCORES_VISIT_WEIGHT = 0.5
