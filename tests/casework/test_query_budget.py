"""The statements one case transition and one task completion cost (docs/performance.md).

Pinned exactly, so that a change that adds a query to the hot path shows up
here and is either justified (and the number moved, with its reason) or
removed. Each case goes through the real services; the person comes as a new
request would bring them, with their memberships not read yet.

The lists below name every statement; inside the test's own transaction each
service's ``atomic`` is a savepoint (SAVEPOINT … RELEASE) where production has
BEGIN … COMMIT.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casework import services
from casework.models import User
from casework.states import CaseState
from tests.casework.steps import case_in
from workflows.models import OPEN_TASK_STATUSES, CaseTask

pytestmark = pytest.mark.django_db


def as_new_request(user: User) -> User:
    return User.objects.get(pk=user.pk)


def statements(call) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return [q["sql"] for q in captured.captured_queries]


# Ending one step's task and starting the next (workflows.engine._follow_known_step).
FLOW_POSTGRESQL = [
    "one statement: end the open task, insert the route record and the next task, link them",
]
FLOW_ELSEWHERE = [  # SQLite has no writing CTEs
    "UPDATE … RETURNING: end the open task",
    "INSERT the route's record and the next task (one statement)",
    "INSERT the two task links (one statement)",
]


def expected(steps: list[str]) -> list[str]:
    flow = FLOW_POSTGRESQL if connection.vendor == "postgresql" else FLOW_ELSEWHERE
    at = steps.index("FLOW")
    return steps[:at] + flow + steps[at + 1 :]


# request_info: a transition that also ends the step's task and starts the youth's turn.
TRANSITION = [
    "SAVEPOINT",  # the service's transaction
    "lock the case row, read it with its organisation and category (one SELECT … FOR UPDATE OF)",
    "the actor's memberships (once per request)",
    "INSERT the question message",
    "INSERT the timeline event (hash chain head on the case)",
    "UPDATE the case: only the changed columns",
    "FLOW",
    "INSERT the outbox event (one row; the delivery worker finds the recipients)",
    "RELEASE SAVEPOINT",
]

# accept from the intake task: the step's page finds the task (one query) and calls the service.
TASK_COMPLETION = [
    "the actor's memberships (once per request)",
    "the task, in the person's inbox scope, with its case",
    "SAVEPOINT",
    "lock the case row, read it with its organisation and category",
    "INSERT the timeline event",
    "UPDATE the case (state, clock, version, chain head and assignee together)",
    "FLOW",
    "INSERT the outbox event",
    "RELEASE SAVEPOINT",
]


def test_one_transition_costs_the_pinned_statements(tree):
    case = case_in(tree, CaseState.COORDINATING)
    handler = as_new_request(tree.handler)

    sql = statements(
        lambda: services.case_request_info(case=case.pk, actor=handler, question="什么时候开始的？")
    )

    assert len(sql) == len(expected(TRANSITION)), "\n".join(sql)
    assert sql[0].startswith("SAVEPOINT") and sql[-1].startswith("RELEASE SAVEPOINT")
    case.refresh_from_db()
    assert case.state == CaseState.AWAITING_YOUTH
    (task,) = CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES)
    assert task.flow_task.name == "youth_turn"


def test_the_way_back_costs_the_same(tree):
    case = case_in(tree, CaseState.COORDINATING)
    services.case_request_info(case=case.pk, actor=tree.handler, question="什么时候开始的？")
    youth = as_new_request(tree.youth)

    sql = statements(lambda: services.case_provide_info(case=case.pk, actor=youth, answer="上个月"))

    # The youth's permission is the case's youth_id: no membership read of the actor; the
    # handlers who hear of it are found by the delivery worker, after the commit.
    way_back = [s for s in TRANSITION if "actor's memberships" not in s]
    assert len(sql) == len(expected(way_back)), "\n".join(sql)
    case.refresh_from_db()
    assert case.state == CaseState.COORDINATING and case.resume_state == ""


def test_one_task_completion_costs_the_pinned_statements(tree):
    from workflows.selectors import task_for

    case = case_in(tree, CaseState.SUBMITTED)
    task_id = CaseTask.objects.get(case=case, status__in=OPEN_TASK_STATUSES).pk
    handler = as_new_request(tree.handler)

    def complete():
        task = task_for(handler, task_id)
        services.case_accept(case=task.case_id, actor=handler)

    sql = statements(complete)

    assert len(sql) == len(expected(TASK_COMPLETION)), "\n".join(sql)
    case.refresh_from_db()
    assert case.state == CaseState.ACCEPTED and case.assignee_id == tree.handler.pk
    (task,) = CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES)
    assert task.flow_task.name == "schedule_verification"
    assert CaseTask.objects.get(pk=task_id).owner_id == tree.handler.pk
