"""The stage clock on the case: set on submit, restarted per stage, paused for the youth.

Deadlines are in business time (workflows.calendar); these tests state the
expected deadline through the same calendar and policy, and check the clock
*moves* (restart, keep, pause, resume) as the lifecycle requires. Time is
frozen on ordinary working days in Asia/Shanghai (March 2025, no holidays).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from casework import services
from casework.models import Case
from casework.states import CaseState
from tests.casework.steps import submit
from workflows import sla

SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 3, 10, 10, 0, tzinfo=SH)


@pytest.fixture(autouse=True)
def _fresh_policies():
    sla.invalidate()
    yield
    sla.invalidate()


@pytest.fixture
def clock():
    with freeze_time(MONDAY_10) as frozen:
        yield frozen


def _due(case, clock_name, start):
    return sla.due_after(case, clock_name, start)


def _fresh(case) -> Case:
    return Case.objects.select_related("category").get(pk=case.pk)


def test_submit_starts_the_accept_clock(tree, clock):
    case = submit(tree)

    case = _fresh(case)
    assert case.stage_started_at == MONDAY_10
    assert case.stage_due_at == _due(case, "accept", MONDAY_10)
    assert case.stage_due_at > MONDAY_10
    assert case.sla_paused_remaining is None


def test_urgent_cases_are_due_sooner(tree, clock):
    normal = _fresh(submit(tree))
    urgent = _fresh(submit(tree, urgency="urgent"))

    assert urgent.stage_due_at < normal.stage_due_at


def test_each_new_stage_restarts_the_clock_and_verification_keeps_its_clock(tree, clock):
    case = submit(tree)

    clock.tick(timedelta(hours=2))
    t1 = MONDAY_10 + timedelta(hours=2)
    case = services.case_accept(case=case, actor=tree.handler)
    case = _fresh(case)
    assert (case.stage_started_at, case.stage_due_at) == (t1, _due(case, "verify", t1))
    verify_due = case.stage_due_at

    # accepted → verifying is the same "verify" stage: the clock keeps running.
    clock.tick(timedelta(hours=1))
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    assert _fresh(case).stage_due_at == verify_due

    clock.tick(timedelta(hours=1))
    t3 = t1 + timedelta(hours=2)
    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings="属实"
    )
    case = _fresh(case)
    assert (case.stage_started_at, case.stage_due_at) == (t3, _due(case, "resolve", t3))

    clock.tick(timedelta(hours=1))
    t4 = t3 + timedelta(hours=1)
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="好")
    assert _fresh(case).stage_due_at == _due(case, "feedback", t4)

    case = services.case_give_feedback(case=case, actor=tree.handler, message="结果")
    case = _fresh(case)
    # The rating window is counted in calendar days, not business time.
    assert case.stage_due_at == t4 + sla.stage_duration(
        "rating", category_code="study", urgency="normal"
    )

    case = services.case_rate(
        case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=5, solved="solved"
    )
    assert _fresh(case).stage_due_at is None


def test_awaiting_youth_pauses_and_provide_info_resumes_where_it_stopped(tree, clock):
    case = submit(tree)
    case = services.case_accept(case=case, actor=tree.handler)
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings="属实"
    )
    due_before = _fresh(case).stage_due_at

    # When the handler asks a question a working day later
    clock.tick(timedelta(days=1))
    asked = MONDAY_10 + timedelta(days=1)
    case = services.case_request_info(case=case, actor=tree.handler, question="请补充")

    # Then the clock stops, keeping the working time that was left
    case = _fresh(case)
    remaining = sla.current_calendar().between(asked, due_before)
    assert case.stage_due_at is None
    assert case.sla_paused_remaining == remaining
    assert remaining > timedelta(0)

    # And a week of waiting for the youth costs the handler nothing
    clock.tick(timedelta(days=7))
    answered = asked + timedelta(days=7)
    case = services.case_provide_info(case=case, actor=tree.youth, answer="材料")

    case = _fresh(case)
    assert case.state == CaseState.COORDINATING
    assert case.sla_paused_remaining is None
    assert case.stage_due_at == sla.current_calendar().add(answered, remaining)
    assert sla.current_calendar().between(answered, case.stage_due_at) == remaining
    assert case.stage_due_at > due_before


def test_paused_clock_is_not_restarted_by_an_escalation_and_resumes_at_the_new_level(tree, clock):
    case = submit(tree)
    case = services.case_accept(case=case, actor=tree.handler)
    case = services.case_request_info(case=case, actor=tree.handler, question="请补充")
    paused = _fresh(case).sla_paused_remaining

    case = services.case_escalate(case=case, actor=tree.handler, reason="manual")

    case = _fresh(case)
    assert (case.org_id, case.stage_due_at, case.sla_paused_remaining) == (
        tree.city.pk,
        None,
        paused,
    )


def test_escalation_restarts_the_stage_clock_at_the_new_level(tree, clock):
    case = submit(tree)
    case = services.case_accept(case=case, actor=tree.handler)

    clock.tick(timedelta(days=2))
    moved = MONDAY_10 + timedelta(days=2)
    case = services.case_escalate(case=case, actor=tree.handler, reason="sla_breach")

    case = _fresh(case)
    assert case.org_id == tree.city.pk
    assert case.stage_started_at == moved
    assert case.stage_due_at == _due(case, "verify", moved)
    assert case.sla_breached is False


def test_appeal_restarts_the_accept_clock_at_the_parent(tree, clock):
    case = submit(tree)
    case = services.case_reject(case=case, actor=tree.handler, reason="out_of_scope")
    assert _fresh(case).stage_due_at is None

    clock.tick(timedelta(days=1))
    case = services.case_appeal(case=case, actor=tree.youth)

    case = _fresh(case)
    appealed = MONDAY_10 + timedelta(days=1)
    assert case.stage_due_at == _due(case, "accept", appealed)


@pytest.mark.parametrize("how", ["withdraw", "reject"])
def test_finished_cases_have_no_running_or_paused_clock(tree, clock, how):
    case = submit(tree)
    case = services.case_accept(case=case, actor=tree.handler)
    if how == "withdraw":
        case = services.case_request_info(case=case, actor=tree.handler, question="?")
        case = services.case_withdraw(case=case, actor=tree.youth)
    else:
        case = services.case_reject(case=case, actor=tree.handler, reason="abuse")

    case = _fresh(case)
    assert (case.stage_due_at, case.sla_paused_remaining) == (None, None)


def test_dispute_restarts_the_resolve_clock(tree, clock):
    from tests.casework.steps import case_in

    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    clock.tick(timedelta(days=1))
    disputed = MONDAY_10 + timedelta(days=1)

    case = services.case_dispute(case=case, actor=tree.youth, reason="没解决")

    assert _fresh(case).stage_due_at == _due(case, "resolve", disputed)
