"""Coordination with partner bodies ("协调解决问题"): referrals with their own deadlines."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import permissions
from ..errors import InvalidTransition, NotPermitted, ValidationFailed
from ..events import EventKind
from ..locks import lock_case
from ..models import Case, CoordinationTask, Organisation, User
from ..states import CaseState
from ._core import finish_change


def case_refer(
    *,
    case: Case | int,
    actor: User,
    partner: Organisation,
    instructions: str,
    due_at: datetime | None = None,
    required: bool = True,
    expected_version: int | None = None,
) -> CoordinationTask:
    """Give a coordination task to a partner body (education bureau, police, ...)."""
    instructions = (instructions or "").strip()
    errors = {}
    if not instructions:
        errors["instructions"] = [str(_("Say what the partner should do."))]
    if (
        partner is None
        or partner.kind
        not in (Organisation.Kind.PARTNER, Organisation.Kind.SOCIAL, Organisation.Kind.STATION)
        or not partner.is_active
    ):
        errors["partner"] = [str(_("Choose an active partner body."))]
    if due_at is not None and due_at <= timezone.now():
        errors["due_at"] = [str(_("The deadline must be in the future."))]
    if errors:
        raise ValidationFailed(field_errors=errors)
    with transaction.atomic():
        case = lock_case(case, expected_version=expected_version)
        if case.state != CaseState.COORDINATING:
            raise InvalidTransition(_("Coordination tasks are given while coordinating."))
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        task = CoordinationTask.objects.create(
            case=case,
            partner=partner,
            instructions=instructions,
            due_at=due_at,
            remind_at=_task_reminder_point(case, due_at),
            required=required,
        )
        finish_change(
            case,
            kind=EventKind.REFERRED,
            actor=actor,
            from_state=case.state,
            payload={
                "task": task.pk,
                "partner": partner.pk,
                "required": required,
                "due_at": due_at.isoformat() if due_at else None,
            },
        )
    return task


def _task_reminder_point(case: Case, due_at: datetime | None) -> datetime | None:
    """When the SLA sweep reminds the partner: the case's policy's reminder share of the
    time from now to the task's deadline (wall-clock time, like the deadline itself)."""
    if due_at is None:
        return None
    from workflows import sla

    policy = sla.policy_for(category_code=case.category.code, urgency=case.urgency)
    now = timezone.now()
    return now + (due_at - now) * policy.reminder_fraction


def _lock_task(task: CoordinationTask | int, expected_version: int | None):
    pk = task.pk if isinstance(task, CoordinationTask) else task
    try:
        case_id = CoordinationTask.objects.values_list("case_id", flat=True).get(pk=pk)
    except CoordinationTask.DoesNotExist:
        raise ValidationFailed(field_errors={"task": [str(_("No such task."))]}) from None
    case = lock_case(case_id, expected_version=expected_version)
    if not case.is_open:
        # A withdrawn, rejected or closed case takes no more coordination work.
        raise InvalidTransition(_("The case is closed; its coordination tasks are too."))
    task = CoordinationTask.objects.select_for_update().get(pk=pk)
    if task.status != CoordinationTask.Status.OPEN:
        raise InvalidTransition(_("This coordination task is already finished."))
    return case, task


def coordination_complete(
    *,
    task: CoordinationTask | int,
    actor: User,
    result: str,
    expected_version: int | None = None,
) -> CoordinationTask:
    """The partner body reports back on its task."""
    result = (result or "").strip()
    if not result:
        raise ValidationFailed(field_errors={"result": [str(_("Say what was done."))]})
    with transaction.atomic():
        case, task = _lock_task(task, expected_version)
        if not (
            permissions.has_role_at(
                actor, task.partner_id, permissions.PARTNER, permissions.HANDLER
            )
            or permissions.is_case_handler(case, actor)
        ):
            raise NotPermitted()
        task.status = CoordinationTask.Status.DONE
        task.result = result
        task.finished_at = timezone.now()
        task.save(update_fields=["status", "result", "finished_at"])
        finish_change(
            case,
            kind=EventKind.REFERRAL_DONE,
            actor=actor,
            from_state=case.state,
            payload={"task": task.pk, "partner": task.partner_id},
        )
    return task


def coordination_waive(
    *,
    task: CoordinationTask | int,
    actor: User,
    reason: str,
    expected_version: int | None = None,
) -> CoordinationTask:
    """The handler decides a coordination task is no longer needed."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(field_errors={"reason": [str(_("Say why."))]})
    with transaction.atomic():
        case, task = _lock_task(task, expected_version)
        if not permissions.is_case_handler(case, actor):
            raise NotPermitted()
        task.status = CoordinationTask.Status.WAIVED
        task.result = reason
        task.finished_at = timezone.now()
        task.save(update_fields=["status", "result", "finished_at"])
        finish_change(
            case,
            kind=EventKind.REFERRAL_WAIVED,
            actor=actor,
            from_state=case.state,
            payload={"task": task.pk, "partner": task.partner_id},
        )
    return task
