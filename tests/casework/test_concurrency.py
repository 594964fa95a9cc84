"""Two people acting on the same case at the same moment (PostgreSQL, real threads).

Each thread has its own database connection. ``lock_case`` takes the row lock
(SELECT ... FOR UPDATE) and then compares the version: the second writer waits
for the first to commit, reads the new row and is told exactly what happened:
``CaseConflict`` when it acted on a version it had seen, ``InvalidTransition``
when the case has moved on to a state its action does not start from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection

from casework import services
from casework.errors import CaseConflict, CaseworkError, InvalidTransition
from casework.events import verify_case
from casework.models import Case, CaseEvent
from casework.states import CaseState
from tests.casework.steps import case_in

# serialized_rollback: the flush after each test must not lose the categories seeded by
# migration 0003.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROUNDS = 5


def race(*calls: Callable[[], object]) -> list:
    """Run the calls at the same moment, each in a thread with its own connection.

    Returns what each call returned or raised, in the order given.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            close_old_connections()
            barrier.wait(timeout=10)
            results[i] = call()
        except BaseException as exc:  # reported to the test, which decides
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing call hung"
    return results


def assert_consistent(case_pk: int, *, events: int):
    case = Case.objects.get(pk=case_pk)
    assert CaseEvent.objects.filter(case_id=case_pk).count() == events == case.last_event_seq
    assert verify_case(case) is None
    return case


def _unexpected(results):
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, CaseworkError)]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_accept_races_reject_with_expected_versions(tree, round_):
    case = case_in(tree, CaseState.SUBMITTED)
    seen = Case.objects.get(pk=case.pk).version
    events_before = case.last_event_seq

    accept, reject = race(
        lambda: services.case_accept(case=case.pk, actor=tree.handler, expected_version=seen),
        lambda: services.case_reject(
            case=case.pk, actor=tree.city_supervisor, reason="duplicate", expected_version=seen
        ),
    )

    assert _unexpected([accept, reject]) == []
    winners = [r for r in (accept, reject) if isinstance(r, Case)]
    losers = [r for r in (accept, reject) if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1
    assert type(losers[0]) is CaseConflict
    after = assert_consistent(case.pk, events=events_before + 1)
    assert after.version == seen + 1
    assert after.state == winners[0].state
    assert after.state in (CaseState.ACCEPTED, CaseState.REJECTED)
    last = CaseEvent.objects.get(case_id=case.pk, seq=after.last_event_seq)
    assert last.kind == ("accepted" if after.state == CaseState.ACCEPTED else "rejected")


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_accepts_without_expected_version(tree, round_):
    case = case_in(tree, CaseState.SUBMITTED)
    events_before = case.last_event_seq

    results = race(
        lambda: services.case_accept(case=case.pk, actor=tree.handler),
        lambda: services.case_accept(case=case.pk, actor=tree.city_supervisor),
    )

    assert _unexpected(results) == []
    winners = [r for r in results if isinstance(r, Case)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 1
    assert type(losers[0]) is InvalidTransition
    after = assert_consistent(case.pk, events=events_before + 1)
    assert after.state == CaseState.ACCEPTED
    assert after.version == 1
    assert after.assignee_id == winners[0].assignee_id


@pytest.mark.parametrize("round_", range(3))
def test_youth_withdraws_while_the_handler_escalates(tree, round_):
    """A state change racing a routing event: one wins, the other gets a conflict."""
    case = case_in(tree, CaseState.ACCEPTED)
    seen = Case.objects.get(pk=case.pk).version
    events_before = case.last_event_seq

    withdraw, escalate = race(
        lambda: services.case_withdraw(case=case.pk, actor=tree.youth, expected_version=seen),
        lambda: services.case_escalate(
            case=case.pk, actor=tree.handler, reason="manual", expected_version=seen
        ),
    )

    assert _unexpected([withdraw, escalate]) == []
    assert sum(isinstance(r, Case) for r in (withdraw, escalate)) == 1
    assert sum(type(r) is CaseConflict for r in (withdraw, escalate)) == 1, (withdraw, escalate)
    after = assert_consistent(case.pk, events=events_before + 1)
    if isinstance(withdraw, Case):
        assert (after.state, after.org_id) == (CaseState.WITHDRAWN, tree.haizhu.pk)
    else:
        assert (after.state, after.org_id) == (CaseState.ACCEPTED, tree.city.pk)


def test_many_comments_at_once_keep_one_contiguous_chain(tree):
    """Writers that do not conflict queue on the row lock; the chain stays whole."""
    case = case_in(tree, CaseState.ACCEPTED)
    events_before, version_before = case.last_event_seq, case.version
    people = [tree.handler, tree.city_supervisor, tree.province_supervisor, tree.youth]

    results = race(
        *[
            (lambda who=who: services.case_comment(case=case.pk, actor=who, body="同时备注"))
            for who in people
        ]
    )

    assert all(isinstance(r, Case) for r in results), results
    after = assert_consistent(case.pk, events=events_before + len(people))
    assert after.version == version_before + len(people)
    seqs = list(CaseEvent.objects.filter(case_id=case.pk).values_list("seq", flat=True))
    assert seqs == list(range(1, events_before + len(people) + 1))
