"""What the public may know about a case: ONE redaction rule for every public surface.

The public progress page, the API's public endpoint and Open311 all build their
output from :func:`public_view`, so the rule of ARCHITECTURE.md section 7 lives
here and nowhere else: category, a coarse (city-level) region, the stage, dates to
the day, the handling level, escalations, the outcome and the rating; nothing that
identifies the youth (no name, contact, title, description, notes, messages,
evidence, age, school, staff names). A case in a sensitive category, or one its
youth kept private, shows only whether it is still in progress.

``public_view`` reads only the case and rows already loaded with it (use
:func:`public_queryset` to load them in a fixed number of queries); given
``events`` and ``region_names`` it touches no database at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from .models import Case, CaseEvent, Region
from .states import OPEN_STATES, STAGE_OF_STATE

# Timeline kinds a member of the public may see (by kind and date only, never the
# payload's message ids, actors or free text). Comments, assignments and reminders
# are internal.
PUBLIC_EVENT_KINDS = (
    "submitted",
    "accepted",
    "rejected",
    "appealed",
    "verification_scheduled",
    "verification_confirmed",
    "info_requested",
    "info_provided",
    "resolved",
    "feedback_given",
    "rated",
    "disputed",
    "auto_closed",
    "withdrawn",
    "escalated",
    "transferred",
    "delegated",
    "referred",
    "referral_done",
    "referral_waived",
)

# Stages in the order the public steps appear ("线上接收诉求 → … → 接受青年评价").
PUBLIC_STAGES = ("intake", "verification", "coordination", "paused", "feedback", "rating", "closed")


def coarse_region_code(region_code: str) -> str:
    """The city a GB/T 2260 code belongs to (``440105`` -> ``440100``): never finer."""
    code = (region_code or "").strip()
    if len(code) != 6 or not code.isdigit():
        return ""
    if code.endswith("0000"):
        return code  # already a province
    return code[:4] + "00"


def is_private(case: Case) -> bool:
    """Sensitive categories and cases the youth kept private show only their progress."""
    return bool(case.category.sensitive) or not case.is_public


def _day(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (
        timezone.localdate(value).isoformat()
        if timezone.is_aware(value)
        else value.date().isoformat()
    )


def _public_events(case: Case, events: Iterable[CaseEvent] | None) -> list[CaseEvent]:
    if events is None:
        events = case.events.all()  # uses the prefetch of public_queryset when present
    return sorted(
        (e for e in events if e.kind in PUBLIC_EVENT_KINDS), key=lambda e: (e.seq, e.pk or 0)
    )


def _region(code: str, region_names: Mapping[str, str] | None) -> str:
    if not code:
        return ""
    if region_names is not None:
        return region_names.get(code, "")
    return Region.objects.filter(code=code).values_list("name", flat=True).first() or ""


def public_view(
    case: Case,
    *,
    events: Iterable[CaseEvent] | None = None,
    region_names: Mapping[str, str] | None = None,
) -> dict:
    """The redacted public picture of ``case`` as plain JSON-ready data.

    Keys for a case the public may follow: ``reference``, ``private`` (False),
    ``in_progress``, ``state``, ``stage``, ``category`` (code) and
    ``category_name``, ``region_code`` (city level) and ``region``,
    ``handling_level`` (1 province .. 4 branch or station), ``submitted_on``,
    ``closed_on``, ``last_update`` ({kind, on}), ``escalations`` ([{on, reason}]),
    ``escalation_count``, ``outcome``, ``rating`` ({timeliness, attitude, outcome,
    solved} or None) and ``timeline`` ([{kind, on}]).

    A private case (sensitive category, or not public) has only ``reference``,
    ``private`` (True) and ``in_progress``.
    """
    in_progress = case.state in OPEN_STATES
    if is_private(case):
        return {"reference": case.reference, "private": True, "in_progress": in_progress}

    timeline = _public_events(case, events)
    region_code = coarse_region_code(case.region_code)
    escalations = [
        {"on": _day(e.at), "reason": str((e.payload or {}).get("reason", ""))}
        for e in timeline
        if e.kind == "escalated"
    ]
    last = timeline[-1] if timeline else None
    rating = getattr(case, "rating", None) if _has_rating(case) else None
    return {
        "reference": case.reference,
        "private": False,
        "in_progress": in_progress,
        "state": case.state,
        "stage": STAGE_OF_STATE.get(case.state, ""),
        "category": case.category.code,
        "category_name": case.category.name,
        "region_code": region_code,
        "region": _region(region_code, region_names),
        "handling_level": case.org.level,
        "submitted_on": _day(case.submitted_at),
        "closed_on": _day(case.closed_at),
        "last_update": {"kind": last.kind, "on": _day(last.at)} if last else None,
        "escalations": escalations,
        "escalation_count": len(escalations),
        "outcome": case.outcome or None,
        "rating": (
            {
                "timeliness": rating.timeliness,
                "attitude": rating.attitude,
                "outcome": rating.outcome,
                "solved": rating.solved,
            }
            if rating is not None
            else None
        ),
        "timeline": [{"kind": e.kind, "on": _day(e.at)} for e in timeline],
    }


def _has_rating(case: Case) -> bool:
    # A reverse one-to-one raises when absent; select_related caches the absence too.
    try:
        return case.rating is not None
    except Case.rating.RelatedObjectDoesNotExist:
        return False


# The youth's own words: never shown on a public surface, so never read (or decrypted) for one.
PUBLIC_UNREAD = ("title", "description", "outcome_note")


def public_queryset() -> QuerySet[Case]:
    """Cases with everything ``public_view`` reads, in two queries whatever their number.

    The encrypted texts (``PUBLIC_UNREAD``) are left out: no public surface shows them.
    """
    qs = Case.objects.select_related("category", "org", "rating").defer(*PUBLIC_UNREAD)
    return qs.prefetch_related(
        Prefetch(
            "events",
            queryset=CaseEvent.objects.filter(kind__in=PUBLIC_EVENT_KINDS)
            .only("id", "case_id", "seq", "kind", "at", "payload")
            .order_by("seq"),
        )
    )


def region_names_for(cases: Iterable[Case]) -> dict[str, str]:
    """One query for the coarse region names of many cases (pass to ``public_view``)."""
    codes = {coarse_region_code(c.region_code) for c in cases} - {""}
    return dict(Region.objects.filter(code__in=codes).values_list("code", "name"))


def day(value: date | datetime | None) -> str | None:
    """Dates to the day, in the platform's time zone (for callers that add their own dates)."""
    if isinstance(value, datetime) or value is None:
        return _day(value)
    return value.isoformat()
