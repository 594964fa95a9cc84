"""The case states and the groups of them that the rules talk about."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseState(models.TextChoices):
    SUBMITTED = "submitted", _("submitted")
    ACCEPTED = "accepted", _("accepted")
    VERIFYING = "verifying", _("verifying")
    COORDINATING = "coordinating", _("coordinating")
    AWAITING_YOUTH = "awaiting_youth", _("awaiting the youth")
    RESOLVED = "resolved", _("resolved")
    FEEDBACK_GIVEN = "feedback_given", _("feedback given")
    CLOSED = "closed", _("closed")
    REJECTED = "rejected", _("rejected")
    WITHDRAWN = "withdrawn", _("withdrawn")


TERMINAL_STATES = frozenset({CaseState.CLOSED, CaseState.REJECTED, CaseState.WITHDRAWN})
OPEN_STATES = tuple(s for s in CaseState if s not in TERMINAL_STATES)
# States from which the handler may ask the youth for information (and return to).
PAUSABLE_STATES = (CaseState.ACCEPTED, CaseState.VERIFYING, CaseState.COORDINATING)
# States whose SLA stage clock escalates when it runs out (feedback_given's rating
# window closes the case instead; awaiting_youth has no running clock).
SLA_STAGE_STATES = (
    CaseState.SUBMITTED,
    CaseState.ACCEPTED,
    CaseState.VERIFYING,
    CaseState.COORDINATING,
    CaseState.RESOLVED,
)

# The five public steps of the seeds, and which states belong to each.
STAGE_OF_STATE = {
    CaseState.SUBMITTED: "intake",
    CaseState.ACCEPTED: "verification",
    CaseState.VERIFYING: "verification",
    CaseState.COORDINATING: "coordination",
    CaseState.AWAITING_YOUTH: "paused",
    CaseState.RESOLVED: "feedback",
    CaseState.FEEDBACK_GIVEN: "rating",
    CaseState.CLOSED: "closed",
    CaseState.REJECTED: "closed",
    CaseState.WITHDRAWN: "closed",
}
