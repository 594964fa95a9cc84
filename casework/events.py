"""Timeline constructors and the per-case hash chain.

Every change to a case appends exactly one ``CaseEvent`` in the same
transaction. Each event stores the SHA-256 of its canonical content, which
includes the previous event's hash, so editing or removing any event breaks
every hash after it. The chain head lives on the (locked) case row, so
appending costs one INSERT and no scan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Case, CaseEvent, User
from .prepared import instance_maker


class EventKind(models.TextChoices):
    SUBMITTED = "submitted", _("submitted")
    ROUTED = "routed", _("routed")
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    APPEALED = "appealed", _("appealed")
    VERIFICATION_SCHEDULED = "verification_scheduled", _("sent for offline verification")
    VERIFICATION_CONFIRMED = "verification_confirmed", _("verification confirmed")
    # Verification visits at a station (casework.services.stations, docs/stations.md).
    VISIT_BOOKED = "visit_booked", _("visit booked")
    VISIT_PROPOSED = "visit_proposed", _("visit time proposed by the station")
    VISIT_CONFIRMED = "visit_confirmed", _("visit time confirmed")
    VISIT_RESCHEDULED = "visit_rescheduled", _("visit moved to another time")
    VISIT_CANCELLED = "visit_cancelled", _("visit cancelled")
    VISIT_REMINDER = "visit_reminder", _("visit reminder")
    VISIT_NO_SHOW = "visit_no_show", _("the youth did not come to the visit")
    VISIT_REBOOK = "visit_rebook", _("another visit to be booked after a missed one")
    INFO_REQUESTED = "info_requested", _("information requested")
    INFO_PROVIDED = "info_provided", _("information provided")
    RESOLVED = "resolved", _("resolved")
    FEEDBACK_GIVEN = "feedback_given", _("feedback given")
    RATED = "rated", _("rated")
    DISPUTED = "disputed", _("disputed and reopened")
    AUTO_CLOSED = "auto_closed", _("closed when the rating window ended")
    WITHDRAWN = "withdrawn", _("withdrawn")
    ASSIGNED = "assigned", _("assigned")
    REASSIGNED = "reassigned", _("reassigned")
    ESCALATED = "escalated", _("escalated")
    TRANSFERRED = "transferred", _("transferred")
    DELEGATED = "delegated", _("delegated")
    REFERRED = "referred", _("coordination task referred")
    REFERRAL_DONE = "referral_done", _("coordination task completed")
    REFERRAL_WAIVED = "referral_waived", _("coordination task waived")
    COMMENT = "comment", _("comment")
    # SLA sweep (workflows.sla, casework.services.sweep): a reminder before a stage's
    # deadline, and the critical alert when the top level misses one (nowhere to escalate).
    SLA_REMINDER = "sla_reminder", _("deadline reminder")
    SLA_BREACH = "sla_breach", _("deadline missed at the top level: critical alert")
    # The sweep also watches coordination tasks and complaints (docs/sla.md, section 4).
    REFERRAL_REMINDER = "referral_reminder", _("coordination task deadline reminder")
    REFERRAL_OVERDUE = "referral_overdue", _("coordination task overdue")
    COMPLAINT_OVERDUE = "complaint_overdue", _("complaint answer overdue")
    # Ratings, complaints and reports (casework.services.ratings, docs/scores.md).
    RATING_EDITED = "rating_edited", _("rating changed")
    COMPLAINT = "complaint", _("complaint about the handling")
    COMPLAINT_ANSWERED = "complaint_answered", _("complaint answered")
    HIDDEN_PENDING_REVIEW = "hidden_pending_review", _("hidden from public pages pending review")
    REVIEWED = "reviewed", _("reports reviewed")
    # Staff attached a file (casework.services.evidence); the payload names it by id and hash.
    EVIDENCE_ADDED = "evidence_added", _("evidence added")
    # Staff-entered and hand-off intake (casework.services.intake): the youth's claim code
    # went out, the youth took the case into their own account, the youth rated the visit.
    CLAIM_CODE_SENT = "claim_code_sent", _("claim code sent to the youth")
    CLAIMED = "claimed", _("claimed by the youth")
    VISIT_RATED = "visit_rated", _("station visit rated")


def canonical_time(at: datetime) -> str:
    """The event time as hashed: UTC, ISO 8601 with microseconds."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(
    *,
    case_id: int,
    seq: int,
    kind: str,
    from_state: str,
    to_state: str,
    actor_id: int | None,
    org_id: int | None,
    at: datetime,
    payload: dict,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an event's content and its predecessor's hash."""
    content = {
        "case": case_id,
        "seq": seq,
        "kind": kind,
        "from": from_state or "",
        "to": to_state or "",
        "actor": actor_id,
        "org": org_id,
        "at": canonical_time(at),
        "payload": payload,
        "prev": prev_hash or "",
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def event_hash(event: CaseEvent) -> str:
    return compute_hash(
        case_id=event.case_id,
        seq=event.seq,
        kind=event.kind,
        from_state=event.from_state,
        to_state=event.to_state,
        actor_id=event.actor_id,
        org_id=event.org_id,
        at=event.at,
        payload=event.payload,
        prev_hash=event.prev_hash,
    )


def build_event(
    case: Case,
    *,
    kind: str,
    actor: User | None = None,
    from_state: str = "",
    to_state: str = "",
    payload: dict | None = None,
    at: datetime | None = None,
) -> CaseEvent:
    """Make the next event of ``case`` (unsaved) and move the chain head on ``case``.

    The caller holds the case row lock and saves both the case and the event
    in the same transaction (``bulk_create`` for sweeps).
    """
    # A JSON round trip now guarantees the stored payload hashes the same when read back.
    clean_payload = json.loads(json.dumps(payload or {}, ensure_ascii=False))
    event = instance_maker(CaseEvent)(
        {
            "case_id": case.pk,
            "seq": case.last_event_seq + 1,
            "kind": str(kind),
            "from_state": str(from_state or ""),
            "to_state": str(to_state or ""),
            "actor_id": actor.pk if actor is not None else None,
            "org_id": case.org_id,
            "at": at or timezone.now(),
            "payload": clean_payload,
            "prev_hash": case.last_event_hash,
        }
    )
    event.hash = event_hash(event)
    case.last_event_seq = event.seq
    case.last_event_hash = event.hash
    return event


def append_event(case: Case, **kwargs) -> CaseEvent:
    """Build and save the next event; the caller saves ``case`` (its chain head moved)."""
    event = build_event(case, **kwargs)
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainBreak:
    case_id: int
    seq: int
    event_id: int
    problem: str


def verify_events(events: Iterable[CaseEvent]) -> ChainBreak | None:
    """Check one case's events, in seq order; return the first break, or None."""
    expected_prev = ""
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            return ChainBreak(event.case_id, event.seq, event.pk, f"expected seq {expected_seq}")
        if event.prev_hash != expected_prev:
            return ChainBreak(event.case_id, event.seq, event.pk, "previous hash does not match")
        if event_hash(event) != event.hash:
            return ChainBreak(event.case_id, event.seq, event.pk, "content does not match hash")
        expected_prev = event.hash
        expected_seq += 1
    return None


def verify_timeline(events: list[CaseEvent], *, case_id: int, head_seq: int, head_hash: str):
    """Verify one case's events (in seq order) and that they end at the case's recorded head.

    The head check catches events removed from the end, which the chain alone cannot.
    """
    broken = verify_events(events)
    if broken:
        return broken
    last = events[-1] if events else None
    if (last.seq if last else 0) != head_seq or (last.hash if last else "") != head_hash:
        return ChainBreak(case_id, head_seq, 0, "events are missing after the last one")
    return None


def verify_case(case: Case) -> ChainBreak | None:
    """Verify a case's whole timeline against its recorded head."""
    events = list(CaseEvent.objects.filter(case=case).order_by("seq"))
    return verify_timeline(
        events, case_id=case.pk, head_seq=case.last_event_seq, head_hash=case.last_event_hash
    )
