"""Who hears what: the event → recipients table, and the lookup behind it.

The table is plain data (docs/notifications.md prints the same table). The
lookup resolves any number of events with a fixed number of queries: one for
the organisations involved, one for every membership that can matter, one
for the people and their preferences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.db.models.functions import Length

from casework.models import Membership, Organisation, User

from .models import Audience

YOUTH = "youth"
HANDLERS = "handlers"  # handlers of the organisation holding the case
VERIFIERS = "verifiers"  # verifiers of the verifying station (or the holding org)
PARTNERS = "partners"  # staff of the partner body the event's coordination task is for
SUPERVISORS = "supervisors"  # supervisors at the holding org or any ancestor

# Keys are event kinds as strings so that kinds added later (sla_reminder,
# sla_breach, complaint) need no import of their definitions here.
RECIPIENTS: dict[str, tuple[str, ...]] = {
    "submitted": (YOUTH, HANDLERS),  # received
    "accepted": (YOUTH,),
    "rejected": (YOUTH,),
    "appealed": (HANDLERS, SUPERVISORS),
    "verification_scheduled": (YOUTH, VERIFIERS),
    "verification_confirmed": (HANDLERS,),
    "info_requested": (YOUTH,),
    "info_provided": (HANDLERS,),
    "resolved": (YOUTH,),
    "feedback_given": (YOUTH,),  # feedback, and the request to rate
    "rated": (HANDLERS,),
    "disputed": (HANDLERS, SUPERVISORS),  # reopened
    "withdrawn": (HANDLERS,),
    "escalated": (YOUTH, HANDLERS, SUPERVISORS),
    "transferred": (HANDLERS,),
    "delegated": (HANDLERS,),
    "reassigned": (HANDLERS,),
    "referred": (PARTNERS,),  # coordination task assigned
    "referral_done": (HANDLERS,),
    "referral_waived": (PARTNERS,),
    "sla_reminder": (HANDLERS,),
    "sla_breach": (HANDLERS, SUPERVISORS),
    "referral_reminder": (PARTNERS,),  # the partner body's task is due soon
    "referral_overdue": (HANDLERS, PARTNERS),  # it is past due: chase it or waive it
    "complaint_overdue": (HANDLERS, SUPERVISORS),  # of the organisation complained about
    "complaint": (HANDLERS, SUPERVISORS),
    "complaint_answered": (YOUTH,),
    "hidden_pending_review": (SUPERVISORS,),  # reports hid the case: review it
    # Verification visits at a station (casework.services.stations).
    "visit_booked": (VERIFIERS,),
    "visit_proposed": (YOUTH,),  # confirm the time
    "visit_confirmed": (VERIFIERS,),
    "visit_rescheduled": (YOUTH, VERIFIERS),
    "visit_cancelled": (VERIFIERS,),
    "visit_reminder": (YOUTH, VERIFIERS),
    "visit_no_show": (HANDLERS,),  # decide what next
    "visit_rebook": (YOUTH,),  # book another visit
}

GROUP_AUDIENCE = {
    YOUTH: Audience.YOUTH,
    HANDLERS: Audience.HANDLER,
    VERIFIERS: Audience.VERIFIER,
    PARTNERS: Audience.PARTNER,
    SUPERVISORS: Audience.SUPERVISOR,
}
# Someone in two groups hears once, as the first of these (the partner template,
# which tells the least, comes last).
AUDIENCE_ORDER = [
    Audience.YOUTH,
    Audience.HANDLER,
    Audience.VERIFIER,
    Audience.SUPERVISOR,
    Audience.PARTNER,
]


@dataclass
class Resolved:
    """One event's recipients: user id → audience, plus the facts the message needs."""

    org: tuple | None  # (pk, path, name, name_en, level)
    recipients: dict[int, str] = field(default_factory=dict)


def _holding_org_id(case, event) -> int:
    """The organisation whose handlers and supervisors hear: the one holding the case,
    unless the event names another (``notify_org``: a complaint's organisation)."""
    notify_org = (event.payload or {}).get("notify_org")
    if isinstance(notify_org, int):
        return notify_org
    return event.org_id or case.org_id


def _partner_id(event) -> int | None:
    payload = event.payload or {}
    value = payload.get("partner")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def resolve_recipients(pairs) -> tuple[list[Resolved], dict[int, User]]:
    """Resolve each (case, event) pair's recipients; three queries whatever the number."""
    groups_of = [RECIPIENTS.get(str(event.kind), ()) for _case, event in pairs]
    org_ids: set[int] = set()
    handler_orgs: set[int] = set()
    verifier_orgs: set[int] = set()
    partner_orgs: set[int] = set()
    for (case, event), groups in zip(pairs, groups_of, strict=True):
        if not groups:
            continue
        holding = _holding_org_id(case, event)
        org_ids.add(holding)
        if HANDLERS in groups:
            handler_orgs.add(holding)
        if VERIFIERS in groups:
            verifier_orgs.add(case.station_id or holding)
        if PARTNERS in groups and _partner_id(event):
            partner_orgs.add(_partner_id(event))

    orgs = {
        row[0]: row
        for row in Organisation.objects.filter(pk__in=org_ids).values_list(
            "pk", "path", "name", "name_en", "level"
        )
    }
    supervisor_paths: set[str] = set()
    step = Organisation.steplen
    for (case, event), groups in zip(pairs, groups_of, strict=True):
        if SUPERVISORS in groups and _holding_org_id(case, event) in orgs:
            path = orgs[_holding_org_id(case, event)][1]
            supervisor_paths.update(path[:i] for i in range(step, len(path) + 1, step))

    condition = Q(pk__in=[])
    if handler_orgs:
        condition |= Q(role=Membership.Role.HANDLER, organisation_id__in=handler_orgs)
    if verifier_orgs:
        condition |= Q(role=Membership.Role.VERIFIER, organisation_id__in=verifier_orgs)
    if partner_orgs:
        condition |= Q(
            role__in=[Membership.Role.PARTNER, Membership.Role.HANDLER],
            organisation_id__in=partner_orgs,
        )
    if supervisor_paths:
        condition |= Q(role=Membership.Role.SUPERVISOR, organisation__path__in=supervisor_paths)
    by_role_org: dict[tuple[str, int], list[int]] = {}
    by_supervisor_path: dict[str, list[int]] = {}
    if handler_orgs or verifier_orgs or partner_orgs or supervisor_paths:
        for user_id, org_id, path, role in Membership.objects.filter(condition).values_list(
            "user_id", "organisation_id", "organisation__path", "role"
        ):
            if role == Membership.Role.SUPERVISOR:
                by_supervisor_path.setdefault(path, []).append(user_id)
            else:
                by_role_org.setdefault((role, org_id), []).append(user_id)

    results: list[Resolved] = []
    for (case, event), groups in zip(pairs, groups_of, strict=True):
        holding = _holding_org_id(case, event)
        resolved = Resolved(org=orgs.get(holding))
        found: dict[int, str] = {}

        def add(user_ids, audience, found=found):
            for uid in user_ids:
                current = found.get(uid)
                if current is None or AUDIENCE_ORDER.index(audience) < AUDIENCE_ORDER.index(
                    current
                ):
                    found[uid] = audience

        for group in groups:
            audience = GROUP_AUDIENCE[group]
            if group == YOUTH:
                add([case.youth_id], audience)
            elif group == HANDLERS:
                add(by_role_org.get((Membership.Role.HANDLER, holding), []), audience)
            elif group == VERIFIERS:
                station = case.station_id or holding
                add(by_role_org.get((Membership.Role.VERIFIER, station), []), audience)
            elif group == PARTNERS and _partner_id(event):
                partner = _partner_id(event)
                add(by_role_org.get((Membership.Role.PARTNER, partner), []), audience)
                add(by_role_org.get((Membership.Role.HANDLER, partner), []), audience)
            elif group == SUPERVISORS and resolved.org:
                path = resolved.org[1]
                for i in range(step, len(path) + 1, step):
                    add(by_supervisor_path.get(path[:i], []), audience)
        # Staff who made the change need not be told about it; the youth always
        # hears about their own case (the receipt of a request they submitted).
        if event.actor_id is not None and found.get(event.actor_id) != Audience.YOUTH:
            found.pop(event.actor_id, None)
        resolved.recipients = found
        results.append(resolved)

    user_ids = {uid for r in results for uid in r.recipients}
    # Whether a person has an address is all the outbox needs: the database answers it, so
    # no encrypted field is loaded (and decrypted) per recipient here.
    users = (
        {
            u.pk: u
            for u in User.objects.filter(pk__in=user_ids, is_active=True)
            .select_related("notification_preference")
            .defer("password", "display_name", "email", "phone")
            # Empty stays empty when encrypted: a stored length of 0 means no address.
            .annotate(has_email=Length("email"), has_phone=Length("phone"))
        }
        if user_ids
        else {}
    )
    return results, users
