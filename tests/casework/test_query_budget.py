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


# PostgreSQL: the lock reads the actor's memberships with the case, and every write of
# the change goes in one statement (casework.services._core._write_change), each a
# prepared statement (casework.prepared).
TRANSITION_POSTGRESQL = [
    "SAVEPOINT",  # the service's transaction
    "lock the case row, read it with its organisation, category and the actor's memberships, "
    "reserve the message's id (one SELECT … FOR UPDATE OF)",
    "one statement: INSERT the question message and the timeline event, UPDATE the case's "
    "changed columns, end the step's task, insert the route record and the next task, "
    "link them, INSERT the outbox event",
    "RELEASE SAVEPOINT",
]

# Elsewhere (SQLite: no writing CTEs), the same rows one statement at a time.
FLOW_ELSEWHERE = [
    "UPDATE … RETURNING: end the open task",
    "INSERT the route's record and the next task (one statement)",
    "INSERT the two task links (one statement)",
]
TRANSITION_ELSEWHERE = [
    "SAVEPOINT",
    "lock the case row, read it with its organisation and category",
    "the actor's memberships (once per request)",
    "INSERT the question message",
    "INSERT the timeline event (hash chain head on the case)",
    "UPDATE the case: only the changed columns",
    *FLOW_ELSEWHERE,
    "INSERT the outbox event (one row; the delivery worker finds the recipients)",
    "RELEASE SAVEPOINT",
]

# accept from the intake task: the step's page finds the task (one query) and calls the service.
TASK_COMPLETION_POSTGRESQL = [
    "the task, in the person's inbox scope (their memberships read in the same query), "
    "with its case",
    "SAVEPOINT",
    "lock the case row, read it with its organisation, category and the actor's memberships",
    "one statement: INSERT the timeline event, UPDATE the case (state, clock, version, chain "
    "head and assignee together), end the intake task, insert the route record and the next "
    "task, link them, INSERT the outbox event",
    "RELEASE SAVEPOINT",
]
TASK_COMPLETION_ELSEWHERE = [
    "the actor's memberships (once per request)",
    "the task, in the person's inbox scope, with its case",
    "SAVEPOINT",
    "lock the case row, read it with its organisation and category",
    "INSERT the timeline event",
    "UPDATE the case (state, clock, version, chain head and assignee together)",
    *FLOW_ELSEWHERE,
    "INSERT the outbox event",
    "RELEASE SAVEPOINT",
]


def expected(postgresql: list[str], elsewhere: list[str]) -> list[str]:
    return postgresql if connection.vendor == "postgresql" else elsewhere


def test_one_transition_costs_the_pinned_statements(tree):
    case = case_in(tree, CaseState.COORDINATING)
    handler = as_new_request(tree.handler)

    sql = statements(
        lambda: services.case_request_info(case=case.pk, actor=handler, question="什么时候开始的？")
    )

    assert len(sql) == len(expected(TRANSITION_POSTGRESQL, TRANSITION_ELSEWHERE)), "\n".join(sql)
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

    # The youth's permission is the case's youth_id: no membership read of the actor
    # elsewhere (on PostgreSQL they come with the lock anyway); the handlers who hear of
    # it are found by the delivery worker, after the commit.
    way_back = [s for s in TRANSITION_ELSEWHERE if "actor's memberships" not in s]
    assert len(sql) == len(expected(TRANSITION_POSTGRESQL, way_back)), "\n".join(sql)
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

    assert len(sql) == len(expected(TASK_COMPLETION_POSTGRESQL, TASK_COMPLETION_ELSEWHERE)), (
        "\n".join(sql)
    )
    case.refresh_from_db()
    assert case.state == CaseState.ACCEPTED and case.assignee_id == tree.handler.pk
    (task,) = CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES)
    assert task.flow_task.name == "schedule_verification"
    assert CaseTask.objects.get(pk=task_id).owner_id == tree.handler.pk
