"""Routing events: who holds a case. They change the holder, never the state.

escalate (to the parent), transfer (to a sibling), delegate (down the tree),
reassign and pull up (supervisors), assign (a handler in the organisation).
Each is one timeline event; the open human task follows the case.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..errors import InvalidTransition, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import Case, CaseMessage, Membership, Organisation, User
from ._core import finish_change
from .scores import record_events

ESCALATION_REASONS = ("sla_breach", "beyond_capacity", "manual", "reopened", "appeal")
HOLDING_KINDS = (Organisation.Kind.LEAGUE, Organisation.Kind.STATION, Organisation.Kind.SOCIAL)


def move_case(
    case: Case,
    *,
    to_org: Organisation,
    actor: User | None,
    kind: str,
    reason: str,
    note: str = "",
    restart_clock: bool = True,
):
    """Hand a locked case to another organisation and record why.

    The stage clock restarts at the new holder and the handler assignment is
    cleared; the open task moves with the case (``finish_change`` syncs it).
    """
    from workflows import sla

    from_org_id = case.org_id
    case.org = to_org
    case.assignee = None
    if kind == EventKind.ESCALATED:
        case.escalation_count += 1
    if restart_clock and case.state != "awaiting_youth":
        sla.restart_clock(case, timezone.now())
    payload = {"from_org": from_org_id, "to_org": to_org.pk, "reason": reason}
    if note:
        # The staff member's words may name the youth: keep them as an internal message
        # and let the timeline point at it, so the payload stays free of personal text.
        msg = CaseMessage.objects.create(
            case=case, author=actor, kind=CaseMessage.Kind.NOTE, body=note, internal=True
        )
        payload["message"] = msg.pk
    event = finish_change(case, kind=kind, actor=actor, from_state=case.state, payload=payload)
    # Arrivals and escalations away feed the help-effectiveness index (docs/scores.md).
    record_events([(case.category_id, event)])
    return event


def _open_case(case: Case) -> None:
    if not case.is_open:
        raise InvalidTransition(_("The case is closed; it cannot be moved."))


def _holding_org(org: Organisation | None, field: str = "org") -> Organisation:
    if org is None or not org.is_active or org.kind not in HOLDING_KINDS:
        raise ValidationFailed(
            field_errors={field: [str(_("Choose an active organisation that handles cases."))]}
        )
    return org


def case_escalate(
    *,
    case: Case | int,
    actor: User | None,
    reason: str,
    note: str = "",
    expected_version: int | None = None,
) -> Case:
    """Move the case one level up, to the parent organisation ("上下联动")."""
    if reason not in ESCALATION_REASONS:
        raise ValidationFailed(field_errors={"reason": [str(_("Choose a reason."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        if actor is not None and not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        parent = case.org.parent_org()
        if parent is None:
            raise InvalidTransition(_("The case is already at the top level."))
        move_case(
            case, to_org=parent, actor=actor, kind=EventKind.ESCALATED, reason=reason, note=note
        )
    return case


def case_transfer(
    *,
    case: Case | int,
    actor: User,
    to_org: Organisation,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """Hand the case to another organisation at the same level under the same parent."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(field_errors={"reason": [str(_("Say why."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        _holding_org(to_org)
        if (
            to_org.pk == case.org_id
            or to_org.level != case.org.level
            or to_org.parent_path() != case.org.parent_path()
        ):
            raise ValidationFailed(
                field_errors={"org": [str(_("Transfer only to a sibling organisation."))]}
            )
        move_case(
            case,
            to_org=to_org,
            actor=actor,
            kind=EventKind.TRANSFERRED,
            reason="manual",
            note=reason,
        )
    return case


def case_delegate(
    *,
    case: Case | int,
    actor: User,
    to_org: Organisation,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """Hand the case down to a child organisation or an offline service station."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(field_errors={"reason": [str(_("Say why."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        _holding_org(to_org)
        if to_org.pk == case.org_id or not to_org.path.startswith(case.org.path):
            raise ValidationFailed(field_errors={"org": [str(_("Delegate only down the tree."))]})
        move_case(
            case, to_org=to_org, actor=actor, kind=EventKind.DELEGATED, reason="manual", note=reason
        )
    return case


def case_reassign(
    *,
    case: Case | int,
    actor: User,
    to_org: Organisation,
    reason: str,
    expected_version: int | None = None,
) -> Case:
    """A supervisor moves the case to any organisation in their subtree."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(field_errors={"reason": [str(_("Say why."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        if not permissions.supervises_path(actor, case.org.path):
            raise NotPermitted()
        _holding_org(to_org)
        if to_org.pk == case.org_id or not permissions.supervises_path(actor, to_org.path):
            raise ValidationFailed(
                field_errors={"org": [str(_("Choose another organisation you supervise."))]}
            )
        move_case(
            case,
            to_org=to_org,
            actor=actor,
            kind=EventKind.REASSIGNED,
            reason="manual",
            note=reason,
        )
    return case


def case_pull_up(
    *, case: Case | int, actor: User, reason: str, expected_version: int | None = None
) -> Case:
    """A supervisor takes the case up to their own organisation."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(field_errors={"reason": [str(_("Say why."))]})
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        own = [
            r
            for r in permissions.roles_of(actor)
            if r.role == permissions.SUPERVISOR
            and case.org.path.startswith(r.org_path)
            and r.org_id != case.org_id
        ]
        if not own:
            raise NotPermitted()
        # The nearest supervised ancestor: the smallest step up that the supervisor can take.
        target_id = max(own, key=lambda r: len(r.org_path)).org_id
        move_case(
            case,
            to_org=Organisation.objects.get(pk=target_id),
            actor=actor,
            kind=EventKind.ESCALATED,
            reason="manual",
            note=reason,
        )
    return case


def case_assign(
    *, case: Case | int, actor: User, assignee: User, expected_version: int | None = None
) -> Case:
    """Give the case to one handler of the holding organisation."""
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        _open_case(case)
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        if not Membership.objects.filter(
            user=assignee, organisation_id=case.org_id, role=Membership.Role.HANDLER
        ).exists():
            raise ValidationFailed(
                field_errors={"assignee": [str(_("Choose a handler of this organisation."))]}
            )
        previous = case.assignee_id
        case.assignee = assignee
        finish_change(
            case,
            kind=EventKind.ASSIGNED,
            actor=actor,
            from_state=case.state,
            payload={"from_user": previous, "to_user": assignee.pk},
        )
    return case
