"""Manual routing between organisation levels: escalate, transfer, delegate, pull up,
reassign, refer. Each is one timeline event and the open task follows the case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from casework import services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.events import EventKind, verify_case
from casework.models import CaseEvent, CoordinationTask
from casework.states import CaseState
from tests.casework.steps import case_in, kinds, snapshot
from workflows.models import OPEN_TASK_STATUSES, CaseTask
from workflows.selectors import inbox_for


def inbox_cases(user) -> list[int]:
    return [task.case_id for task in inbox_for(user)]


def last_event(case) -> CaseEvent:
    return CaseEvent.objects.filter(case=case).order_by("-seq").first()


def open_task_org(case) -> int:
    return CaseTask.objects.get(case=case, status__in=OPEN_TASK_STATUSES).org_id


def test_manual_escalation_beyond_capacity_moves_the_case_up_with_a_fresh_clock(tree):
    # given a coordinating case at the district, half-way through its stage
    case = case_in(tree, CaseState.COORDINATING)
    old_due = case.stage_due_at
    assert case.pk in inbox_cases(tree.handler)

    # when its handler escalates it: beyond the district's capacity
    case = services.case_escalate(
        case=case, actor=tree.handler, reason="beyond_capacity", note="需要市级协调教育局"
    )

    # then it is at the city, in the same state, unassigned, with a restarted clock
    assert case.org == tree.city
    assert case.state == CaseState.COORDINATING
    assert case.escalation_count == 1
    assert case.assignee_id is None
    assert case.stage_due_at >= old_due
    event = last_event(case)
    assert event.kind == EventKind.ESCALATED
    assert event.payload["reason"] == "beyond_capacity"
    assert (event.payload["from_org"], event.payload["to_org"]) == (tree.haizhu.pk, tree.city.pk)
    # the free-text note is kept out of the payload (it may name the youth)
    assert "需要" not in str(event.payload)
    assert verify_case(case) is None
    # and the task moved from the district's inbox to the city's
    assert case.pk in inbox_cases(tree.city_handler)
    assert case.pk not in inbox_cases(tree.handler)


def test_escalation_needs_a_known_reason_a_handler_and_a_parent(tree):
    case = case_in(tree, CaseState.SUBMITTED)
    before = snapshot(case)

    with pytest.raises(ValidationFailed):
        services.case_escalate(case=case, actor=tree.handler, reason="bored")
    with pytest.raises(NotPermitted):
        services.case_escalate(case=case, actor=tree.baiyun_handler, reason="manual")
    with pytest.raises(NotPermitted):
        services.case_escalate(case=case, actor=tree.youth, reason="manual")
    assert snapshot(case) == before

    # at the top there is nowhere to go
    services.case_escalate(case=case, actor=tree.handler, reason="manual")
    services.case_escalate(case=case, actor=tree.city_handler, reason="manual")
    with pytest.raises(InvalidTransition):
        services.case_escalate(case=case, actor=tree.province_handler, reason="manual")


def test_a_closed_case_cannot_be_moved(tree):
    case = case_in(tree, CaseState.WITHDRAWN)

    with pytest.raises(InvalidTransition):
        services.case_escalate(case=case, actor=tree.handler, reason="manual")
    with pytest.raises(InvalidTransition):
        services.case_transfer(case=case, actor=tree.handler, to_org=tree.baiyun, reason="辖区")


def test_transfer_goes_to_a_sibling_only(tree):
    case = case_in(tree, CaseState.SUBMITTED)

    with pytest.raises(ValidationFailed):
        services.case_transfer(case=case, actor=tree.handler, to_org=tree.city, reason="辖区")
    with pytest.raises(ValidationFailed):
        services.case_transfer(case=case, actor=tree.handler, to_org=tree.baiyun, reason=" ")

    case = services.case_transfer(
        case=case, actor=tree.handler, to_org=tree.baiyun, reason="青年实际住在白云"
    )

    assert case.org == tree.baiyun
    assert case.escalation_count == 0
    assert last_event(case).kind == EventKind.TRANSFERRED
    assert case.pk in inbox_cases(tree.baiyun_handler)
    assert case.pk not in inbox_cases(tree.handler)


def test_delegation_goes_down_to_a_child_or_a_station(tree):
    case = case_in(tree, CaseState.SUBMITTED)

    with pytest.raises(ValidationFailed):
        services.case_delegate(case=case, actor=tree.handler, to_org=tree.city, reason="下沉")
    with pytest.raises(ValidationFailed):  # a partner body does not hold cases
        services.case_delegate(case=case, actor=tree.handler, to_org=tree.partner, reason="下沉")

    case = services.case_delegate(
        case=case, actor=tree.handler, to_org=tree.haizhu_branch, reason="街道就近处理"
    )
    assert case.org == tree.haizhu_branch
    assert last_event(case).kind == EventKind.DELEGATED
    assert case.pk in inbox_cases(tree.branch_handler)
    assert case.pk not in inbox_cases(tree.handler)

    # "一键转至线下": another case straight to the offline service station
    other = services.case_delegate(
        case=case_in(tree, CaseState.SUBMITTED),
        actor=tree.handler,
        to_org=tree.station,
        reason="一键转至线下",
    )
    assert other.org == tree.station
    assert open_task_org(other) == tree.station.pk


def test_supervisor_pulls_a_case_up_to_their_own_organisation(tree):
    case = case_in(tree, CaseState.ACCEPTED)

    with pytest.raises(NotPermitted):
        services.case_pull_up(case=case, actor=tree.handler, reason="督办")

    case = services.case_pull_up(case=case, actor=tree.city_supervisor, reason="市级督办")

    assert case.org == tree.city
    event = last_event(case)
    assert (event.kind, event.payload["reason"]) == (EventKind.ESCALATED, "manual")
    assert event.actor == tree.city_supervisor
    assert case.pk in inbox_cases(tree.city_handler)
    assert case.pk not in inbox_cases(tree.handler)


def test_supervisor_reassigns_within_their_subtree_only(tree):
    case = case_in(tree, CaseState.SUBMITTED)

    with pytest.raises(NotPermitted):
        services.case_reassign(case=case, actor=tree.handler, to_org=tree.baiyun, reason="均衡")
    with pytest.raises(ValidationFailed):
        services.case_reassign(
            case=case, actor=tree.city_supervisor, to_org=tree.other_city, reason="均衡"
        )

    case = services.case_reassign(
        case=case, actor=tree.city_supervisor, to_org=tree.baiyun, reason="工作量均衡"
    )

    assert case.org == tree.baiyun
    assert last_event(case).kind == EventKind.REASSIGNED
    assert case.pk in inbox_cases(tree.baiyun_handler)


def test_referral_has_its_own_deadline_and_blocks_resolve_until_done_or_waived(tree):
    case = case_in(tree, CaseState.COORDINATING)
    due = timezone.now() + timedelta(days=5)

    # given a required coordination task for the education bureau
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请联系学校", due_at=due
    )
    assert (task.status, task.due_at, task.required) == ("open", due, True)

    # then resolving is refused while it is open
    with pytest.raises(InvalidTransition):
        services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="已解决")

    # when the partner completes it, resolving works
    services.coordination_complete(task=task, actor=tree.partner_staff, result="学校已处理")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="已解决")
    assert case.state == CaseState.RESOLVED
    assert kinds(case)[-3:] == [EventKind.REFERRED, EventKind.REFERRAL_DONE, EventKind.RESOLVED]


def test_a_waived_or_optional_referral_does_not_block_resolve(tree):
    case = case_in(tree, CaseState.COORDINATING)
    required = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请联系学校"
    )
    services.case_refer(
        case=case,
        actor=tree.handler,
        partner=tree.partner,
        instructions="可选：回访",
        required=False,
    )

    services.coordination_waive(task=required, actor=tree.handler, reason="青年已自行解决")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="partly", note="部分解决")

    assert case.state == CaseState.RESOLVED
    assert CoordinationTask.objects.get(pk=required.pk).status == "waived"


def test_referral_input_is_checked(tree):
    case = case_in(tree, CaseState.COORDINATING)

    with pytest.raises(ValidationFailed) as error:
        services.case_refer(
            case=case,
            actor=tree.handler,
            partner=tree.city,  # a league committee is not a partner body
            instructions="",
            due_at=timezone.now() - timedelta(hours=1),
        )

    assert set(error.value.field_errors) == {"partner", "instructions", "due_at"}


def test_escalation_of_a_paused_case_keeps_the_paused_clock(tree):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    paused = case.sla_paused_remaining

    case = services.case_escalate(case=case, actor=tree.handler, reason="manual")

    assert case.org == tree.city
    assert case.stage_due_at is None
    assert case.sla_paused_remaining == paused
