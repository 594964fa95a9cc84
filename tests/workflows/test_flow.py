"""The case flow never disagrees with the case.

Every path below is driven through the casework services, and after every
single call the flow is checked against the case: exactly one open task, on
the node the state calls for, held by the organisation that should hold it;
no open task and a finished process once the case is closed, rejected or
withdrawn.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from casework import services
from casework.errors import CaseworkError
from casework.models import Case
from casework.states import TERMINAL_STATES, CaseState
from workflows import engine
from workflows.flows import CaseFlow
from workflows.models import OPEN_TASK_STATUSES, CaseProcess, CaseTask
from workflows.selectors import inbox_for

pytestmark = pytest.mark.django_db

# Written out again here, not imported from the flow, so that a wrong map fails.
EXPECTED_NODE = {
    "submitted": "intake",
    "accepted": "schedule_verification",
    "verifying": "verification",
    "coordinating": "coordination",
    "awaiting_youth": "youth_turn",
    "resolved": "feedback",
    "feedback_given": "youth_turn",
}


def assert_flow_agrees(case) -> Case:
    """The flow of ``case`` matches its state and holder; returns the case as stored."""
    case = Case.objects.get(pk=case.pk)
    processes = list(CaseProcess.objects.filter(case=case).order_by("pk"))
    assert processes, "the case has no process"
    *older, current = processes
    for process in older:
        assert process.status == "DONE" and process.finished is not None
    open_tasks = list(CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES))
    if case.state in TERMINAL_STATES:
        assert open_tasks == []
        assert current.status == "DONE"
        assert current.finished is not None
        assert not CaseTask.objects.filter(case=case, finished__isnull=True).exists()
    else:
        assert current.status == "NEW" and current.finished is None
        assert len(open_tasks) == 1, open_tasks
        (task,) = open_tasks
        assert task.process_id == current.pk
        assert task.flow_task.name == EXPECTED_NODE[case.state], (case.state, task.flow_task)
        if task.flow_task.name == "verification":
            assert task.org_id == (case.station_id or case.org_id)
        else:
            assert task.org_id == case.org_id
    return case


def open_task(case) -> CaseTask:
    return CaseTask.objects.get(case=case, status__in=OPEN_TASK_STATUSES)


def node_names(process) -> list[str]:
    return [t.flow_task.name for t in process.task_set.order_by("pk")]


def submit(tree, **kw) -> Case:
    case = services.case_submit(
        youth=kw.pop("youth", tree.youth),
        category=tree.category(kw.pop("category", "study")),
        region_code=kw.pop("region", "440105"),
        title="学习上遇到困难",
        description="我在学校被同学欺负了，不敢告诉老师",
        **kw,
    )
    return assert_flow_agrees(case)


# Each step moves the case one state further along the happy path.
def accept(tree, case):
    return services.case_accept(case=case, actor=tree.handler)


def schedule(tree, case, station="station"):
    station = getattr(tree, station) if station else None
    return services.case_schedule_verification(case=case, actor=tree.handler, station=station)


def confirm(tree, case):
    return services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings="情况属实"
    )


def resolve(tree, case):
    return services.case_resolve(
        case=case, actor=tree.handler, outcome=Case.Outcome.SOLVED, note="已协调学校处理"
    )


def give_feedback(tree, case):
    return services.case_give_feedback(case=case, actor=tree.handler, message="问题已解决")


PATH = {
    "accepted": accept,
    "verifying": schedule,
    "coordinating": confirm,
    "resolved": resolve,
    "feedback_given": give_feedback,
}
ORDER = ["submitted", "accepted", "verifying", "coordinating", "resolved", "feedback_given"]


def case_in(tree, state: str) -> Case:
    """A new case driven to ``state`` along the happy path, checked after every step."""
    if state == "awaiting_youth":
        case = case_in(tree, "accepted")
        services.case_request_info(case=case, actor=tree.handler, question="请补充材料")
        return assert_flow_agrees(case)
    case = submit(tree)
    for next_state in ORDER[1 : ORDER.index(state) + 1]:
        PATH[next_state](tree, case)
        case = assert_flow_agrees(case)
        assert case.state == next_state
    return case


# --- whole paths ------------------------------------------------------------


def test_happy_path_from_submission_to_closing(tree):
    # given a new case at the district committee
    case = submit(tree)
    assert case.org == tree.haizhu
    first = open_task(case)
    assert first.flow_task is CaseFlow.intake

    # when it goes through every step, then the flow follows after each call
    accept(tree, case)
    assert_flow_agrees(case)
    schedule(tree, case)
    case = assert_flow_agrees(case)
    assert open_task(case).org == tree.station
    confirm(tree, case)
    assert_flow_agrees(case)
    coordination = open_task(case)
    referral = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请学校调查"
    )
    assert_flow_agrees(case)
    services.coordination_complete(task=referral, actor=tree.partner_staff, result="已处理")
    assert_flow_agrees(case)
    assert open_task(case).pk == coordination.pk  # referring does not end the step
    resolve(tree, case)
    assert_flow_agrees(case)
    give_feedback(tree, case)
    assert_flow_agrees(case)
    services.case_rate(
        case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=4, solved="solved"
    )
    case = assert_flow_agrees(case)

    assert case.state == CaseState.CLOSED
    (process,) = case.processes.all()
    assert node_names(process) == [
        "start",
        "route",
        "intake",
        "route",
        "schedule_verification",
        "route",
        "verification",
        "route",
        "coordination",
        "route",
        "feedback",
        "route",
        "youth_turn",
        "route",
        "end",
    ]
    # who finished each human step is on record
    owners = {t.flow_task.name: t.owner for t in process.task_set.filter(owner__isnull=False)}
    assert owners["intake"] == tree.handler
    assert owners["verification"] == tree.verifier
    assert owners["youth_turn"] == tree.youth


def test_reject_at_intake_ends_the_process(tree):
    case = submit(tree)
    services.case_reject(case=case, actor=tree.handler, reason=Case.RejectReason.OUT_OF_SCOPE)
    case = assert_flow_agrees(case)
    assert case.state == CaseState.REJECTED
    assert node_names(case.processes.get())[-2:] == ["route", "end"]


def test_verifier_disconfirms_and_the_case_is_rejected(tree):
    case = case_in(tree, "verifying")
    services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=False, findings="与事实不符"
    )
    case = assert_flow_agrees(case)
    assert case.state == CaseState.REJECTED
    assert case.reject_reason == Case.RejectReason.NOT_CONFIRMED
    verification = case.flow_tasks.get(flow_task=CaseFlow.verification)
    assert verification.status == "DONE" and verification.owner == tree.verifier


def test_appeal_starts_a_new_process_at_the_parent(tree):
    # given a case rejected at the district
    case = submit(tree)
    services.case_reject(case=case, actor=tree.handler, reason=Case.RejectReason.OUT_OF_SCOPE)
    assert_flow_agrees(case)

    # when the youth appeals
    services.case_appeal(case=case, actor=tree.youth, statement="我的问题属实")

    # then a second process waits for intake at the city, the first is finished
    case = assert_flow_agrees(case)
    assert case.state == CaseState.SUBMITTED and case.org == tree.city
    first, second = case.processes.order_by("pk")
    assert first.status == "DONE" and second.status == "NEW"
    assert open_task(case).process == second
    assert open_task(case).org == tree.city

    # and the new process runs on normally
    services.case_accept(case=case, actor=tree.city_handler)
    case = assert_flow_agrees(case)
    assert open_task(case).flow_task is CaseFlow.schedule_verification


@pytest.mark.parametrize("state", ["accepted", "verifying", "coordinating"])
def test_request_and_provide_info_pause_and_resume_the_step(tree, state):
    case = case_in(tree, state)
    asker = tree.verifier if state == "verifying" else tree.handler

    services.case_request_info(case=case, actor=asker, question="请补充材料")
    case = assert_flow_agrees(case)
    assert case.state == CaseState.AWAITING_YOUTH
    assert open_task(case).flow_task is CaseFlow.youth_turn
    assert inbox_for(asker) == []  # nothing for staff to do while the youth answers

    services.case_provide_info(case=case, actor=tree.youth, answer="已补充")
    case = assert_flow_agrees(case)
    assert case.state == state
    assert [t.case_id for t in inbox_for(asker)] == [case.pk]


def test_a_dispute_reopens_and_the_second_dispute_escalates(tree):
    case = case_in(tree, "feedback_given")

    services.case_dispute(case=case, actor=tree.youth, reason="问题没有解决")
    case = assert_flow_agrees(case)
    assert case.state == CaseState.COORDINATING and case.org == tree.haizhu

    resolve(tree, case)
    assert_flow_agrees(case)
    give_feedback(tree, case)
    assert_flow_agrees(case)
    services.case_dispute(case=case, actor=tree.youth, reason="还是没有解决")
    case = assert_flow_agrees(case)

    assert case.state == CaseState.COORDINATING and case.org == tree.city
    assert [t.case_id for t in inbox_for(tree.city_handler)] == [case.pk]
    assert inbox_for(tree.handler) == []


@pytest.mark.parametrize(
    "state",
    [
        "submitted",
        "accepted",
        "verifying",
        "coordinating",
        "awaiting_youth",
        "resolved",
        "feedback_given",
    ],
)
def test_withdraw_from_any_open_state_ends_the_process(tree, state):
    case = case_in(tree, state)
    services.case_withdraw(case=case, actor=tree.youth, reason="不需要了")
    case = assert_flow_agrees(case)
    assert case.state == CaseState.WITHDRAWN
    assert inbox_for(tree.handler) == [] and inbox_for(tree.verifier) == []


def test_auto_close_after_the_rating_window_ends_the_process(tree):
    case = case_in(tree, "feedback_given")
    services.case_auto_close(case=case)
    case = assert_flow_agrees(case)
    assert case.state == CaseState.CLOSED


# --- routing moves the open task ----------------------------------------------


def _inbox_cases(user):
    return [t.case_id for t in inbox_for(user)]


@pytest.mark.parametrize("state", ["submitted", "coordinating", "awaiting_youth"])
def test_escalation_moves_the_open_task_to_the_parent(tree, state):
    case = case_in(tree, state)
    task = open_task(case)
    services.case_escalate(case=case, actor=tree.handler, reason="beyond_capacity")
    case = assert_flow_agrees(case)
    assert open_task(case).pk == task.pk  # the same step, moved, not a new one
    assert open_task(case).org == tree.city
    assert _inbox_cases(tree.handler) == []
    if state != "awaiting_youth":
        assert _inbox_cases(tree.city_handler) == [case.pk]


def test_escalation_while_verifying_leaves_the_step_with_the_station(tree):
    case = case_in(tree, "verifying")
    services.case_escalate(case=case, actor=tree.handler, reason="manual")
    case = assert_flow_agrees(case)
    assert case.org == tree.city
    assert open_task(case).org == tree.station
    assert _inbox_cases(tree.verifier) == [case.pk]


def test_verification_without_a_station_is_for_the_organisations_verifiers(tree):
    from tests.conftest import member

    own_verifier = member(tree.haizhu, "verifier", "haizhu_verifier")
    case = case_in(tree, "accepted")
    schedule(tree, case, station=None)
    case = assert_flow_agrees(case)
    assert open_task(case).org == tree.haizhu
    assert _inbox_cases(own_verifier) == [case.pk]
    assert _inbox_cases(tree.handler) == []  # a handler does not verify


def test_transfer_delegate_reassign_and_pull_up_move_the_task(tree):
    case = submit(tree)

    services.case_transfer(case=case, actor=tree.handler, to_org=tree.baiyun, reason="属白云区")
    assert_flow_agrees(case)
    assert _inbox_cases(tree.baiyun_handler) == [case.pk]
    assert _inbox_cases(tree.handler) == []

    services.case_reassign(
        case=case, actor=tree.city_supervisor, to_org=tree.haizhu, reason="退回海珠"
    )
    assert_flow_agrees(case)
    assert _inbox_cases(tree.handler) == [case.pk]
    assert _inbox_cases(tree.baiyun_handler) == []

    services.case_delegate(
        case=case, actor=tree.handler, to_org=tree.haizhu_branch, reason="街道更了解情况"
    )
    assert_flow_agrees(case)
    assert _inbox_cases(tree.branch_handler) == [case.pk]
    assert _inbox_cases(tree.handler) == []

    services.case_pull_up(case=case, actor=tree.city_supervisor, reason="市级督办")
    case = assert_flow_agrees(case)
    assert case.org == tree.city
    assert _inbox_cases(tree.city_handler) == [case.pk]
    assert _inbox_cases(tree.branch_handler) == []
    # supervisors above see it wherever it went
    assert _inbox_cases(tree.city_supervisor) == [case.pk]
    assert _inbox_cases(tree.province_supervisor) == [case.pk]


def test_assign_and_comment_leave_the_task_alone(tree):
    case = submit(tree)
    task = open_task(case)
    services.case_assign(case=case, actor=tree.handler, assignee=tree.handler)
    services.case_comment(case=case, actor=tree.handler, body="已电话联系")
    assert_flow_agrees(case)
    assert open_task(case).pk == task.pk


# --- engine -------------------------------------------------------------------


def test_route_serves_every_open_state_and_ends_every_terminal_one():
    for state in CaseState:
        node = CaseFlow.node_for_state(state)
        if state in TERMINAL_STATES:
            assert node is None
        else:
            assert node.name == EXPECTED_NODE[state]


def test_a_case_cannot_get_a_second_unfinished_process(tree):
    case = submit(tree)
    with pytest.raises(RuntimeError):
        engine.start_case_flow(case)


def test_sync_without_a_change_writes_nothing(tree, django_assert_num_queries):
    case = submit(tree)
    with django_assert_num_queries(1):  # one read of the open task
        engine.sync_case_tasks(case)


def test_completing_a_step_costs_a_bounded_number_of_queries(tree, django_assert_max_num_queries):
    # given a case whose state moved on from its open intake task (as a service leaves it)
    case = submit(tree)
    case.accept()  # in memory only: the engine must follow this object, not the database
    with django_assert_max_num_queries(9):
        engine.sync_case_tasks(case, actor=tree.handler)
    assert open_task(case).flow_task is CaseFlow.schedule_verification


def test_move_open_tasks_rehomes_many_cases_in_one_update(tree, django_assert_num_queries):
    # given three open cases, one of them with a station verifying it
    cases = [case_in(tree, "submitted"), case_in(tree, "coordinating"), case_in(tree, "verifying")]
    ids = [c.pk for c in cases]
    # when a sweep re-homes them in bulk (no services, no per-case work)
    Case.objects.filter(pk__in=ids).update(org=tree.city)

    with django_assert_num_queries(1):
        moved = engine.move_open_tasks(ids)

    # then the tasks follow their cases; the station keeps its verification
    assert moved == 2
    for case in cases:
        assert_flow_agrees(case)
    assert open_task(cases[2]).org == tree.station
    assert sorted(_inbox_cases(tree.city_handler)) == sorted(ids[:2])
    assert engine.move_open_tasks(ids) == 0


def test_move_open_tasks_leaves_finished_tasks_alone(tree):
    case = submit(tree)
    services.case_withdraw(case=case, actor=tree.youth)
    Case.objects.filter(pk=case.pk).update(org=tree.city)
    assert engine.move_open_tasks(Case.objects.filter(pk=case.pk).values("pk")) == 0
    assert not CaseTask.objects.filter(case=case, org=tree.city).exists()


def test_stage_clock_does_not_matter_to_the_flow(tree):
    # a breached clock is the sweep's business; the flow only follows state and holder
    case = submit(tree)
    Case.objects.filter(pk=case.pk).update(stage_due_at=timezone.now() - timedelta(days=3))
    services.case_escalate(case=case, actor=None, reason="sla_breach")
    case = assert_flow_agrees(case)
    assert open_task(case).org == tree.city


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_people_finishing_the_same_step_at_once_leave_one_next_step(tree):
    # given a case waiting for intake, and its handler and a supervisor both on its page
    case = submit(tree)
    barrier = threading.Barrier(2)
    outcomes = []

    def act(actor):
        try:
            barrier.wait()
            services.case_accept(case=case.pk, actor=actor)
            outcomes.append("accepted")
        except CaseworkError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    # when both accept at the same moment
    threads = [
        threading.Thread(target=act, args=(u,)) for u in (tree.handler, tree.city_supervisor)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then one wins, the other is told why, and the flow has exactly one next step
    assert sorted(outcomes) == ["accepted", "invalid_state"]
    case = assert_flow_agrees(case)
    assert case.state == CaseState.ACCEPTED
    assert case.flow_tasks.filter(flow_task=CaseFlow.schedule_verification).count() == 1
