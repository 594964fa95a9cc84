"""Domain settings: every number a platform operator may want to tune."""

from datetime import timedelta

# How long a youth may appeal a rejection, and how long the rating window stays open.
CASEWORK_APPEAL_WINDOW = timedelta(days=14)
CASEWORK_RATING_WINDOW = timedelta(days=7)
# The second reopen of a case (dispute) escalates it one level up.
CASEWORK_REOPENS_BEFORE_ESCALATION = 1

# Stage durations in hours until SLA policies say otherwise, and how urgency shortens them.
SLA_DEFAULT_HOURS = {"accept": 24, "verify": 72, "resolve": 240, "feedback": 48}
SLA_URGENCY_FACTOR = {"low": 1.5, "normal": 1, "high": 0.5, "urgent": 0.25}

# Evidence uploads (casework.services.evidence): the largest file staff may attach.
CASEWORK_EVIDENCE_MAX_BYTES = 10 * 1024 * 1024
