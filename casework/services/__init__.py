"""Every write to a case goes through one of these functions.

Views, the API, admin actions, Celery tasks and commands only call them.
"""

from .cases import *  # noqa: F403
from .cases import __all__ as _case_services
from .coordination import case_refer, coordination_complete, coordination_waive
from .intake import (
    case_claim,
    handoff_receive,
    intake_enter,
    intake_resend_code,
    visit_rate,
)
from .privacy import (
    ErasureResult,
    erase_personal_data,
    export_personal_data,
    record_guardian_consent,
    record_personal_data_access,
    require_guardian_consent,
    retention_sweep,
)
from .ratings import (
    complaint_answer,
    complaint_submit,
    dispute_offered,
    rating_edit,
    report_submit,
    review_decide,
)
from .routing import (
    ESCALATION_REASONS,
    case_assign,
    case_delegate,
    case_escalate,
    case_pull_up,
    case_reassign,
    case_transfer,
)
from .scores import recompute_scores
from .stations import (
    SlotFull,
    visit_book,
    visit_confirm,
    visit_decide_no_show,
    visit_no_show,
    visit_propose,
    visit_reminder_sweep,
    visit_reschedule,
)
from .sweep import SweepResult, sla_sweep

__all__ = [
    *_case_services,
    "ESCALATION_REASONS",
    "SweepResult",
    "case_assign",
    "case_delegate",
    "case_escalate",
    "case_pull_up",
    "case_reassign",
    "case_refer",
    "case_transfer",
    "coordination_complete",
    "coordination_waive",
    # intake channels, claims and station-visit ratings (intake.py)
    "case_claim",
    "handoff_receive",
    "intake_enter",
    "intake_resend_code",
    "visit_rate",
    "sla_sweep",
    # ratings, complaints, reports (ratings.py) and scores (scores.py)
    "complaint_answer",
    "complaint_submit",
    "dispute_offered",
    "rating_edit",
    "recompute_scores",
    "report_submit",
    "review_decide",
    # personal data (privacy.py)
    "ErasureResult",
    "erase_personal_data",
    "export_personal_data",
    "record_guardian_consent",
    "record_personal_data_access",
    "require_guardian_consent",
    "retention_sweep",
    # verification visits at stations (stations.py)
    "SlotFull",
    "visit_book",
    "visit_confirm",
    "visit_decide_no_show",
    "visit_no_show",
    "visit_propose",
    "visit_reminder_sweep",
    "visit_reschedule",
]
