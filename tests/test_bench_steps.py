"""The operations the transition and task benchmarks repeat, on the test tree.

The benchmarks time these steps by the thousand on a loaded database; here a
few of each show that they keep working as the services change, and that what
they leave behind is sound: the hash chain verifies and the flow follows.
"""

import pytest

from bench import task, transition
from casework.events import verify_case
from casework.models import Case
from casework.states import CaseState
from tests.casework.steps import case_in
from tests.factories import MembershipFactory
from workflows.models import OPEN_TASK_STATUSES, CaseTask

pytestmark = pytest.mark.django_db


def open_node(case: Case) -> str:
    (only,) = CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES)
    return only.flow_task.name


def test_the_transition_cycle_repeats_on_the_same_cases(tree):
    cases = [case_in(tree, CaseState.COORDINATING), case_in(tree, CaseState.VERIFYING)]
    step = transition.worker(0, 1)

    for _ in range(12):
        step()

    for case in cases:
        case.refresh_from_db()
        assert verify_case(case) is None
    states = {}
    for case, started in zip(cases, (CaseState.COORDINATING, CaseState.VERIFYING), strict=True):
        assert case.state in (CaseState.AWAITING_YOUTH, started)
        states[case.state] = open_node(case)
    assert states.get(CaseState.AWAITING_YOUTH, "youth_turn") == "youth_turn"
    assert states.get(CaseState.COORDINATING, "coordination") == "coordination"
    assert states.get(CaseState.VERIFYING, "verification") == "verification"
    kinds = set(
        Case.objects.filter(pk__in=[c.pk for c in cases]).values_list("events__kind", flat=True)
    )
    assert {"info_requested", "info_provided"} <= kinds


def test_the_task_walk_completes_every_human_step(tree):
    # the benchmark's handlers also verify for their organisation
    MembershipFactory(user=tree.handler, organisation=tree.haizhu, role="verifier")
    case = case_in(tree, CaseState.SUBMITTED)
    step = task.worker(0, 1)

    for _ in range(5):
        step()

    case.refresh_from_db()
    assert case.state == CaseState.FEEDBACK_GIVEN
    assert open_node(case) == "youth_turn"
    assert verify_case(case) is None
    done = CaseTask.objects.filter(case=case, status="DONE").values_list("flow_task", flat=True)
    names = {node.name for node in done}
    assert {"intake", "schedule_verification", "verification", "coordination", "feedback"} <= names
