"""Score writers side by side (PostgreSQL, real threads, each with its own connection).

Ratings for different organisations share no score row and no exclusive lock, so
neither waits for the other; ratings for the same organisation queue on its rows and
all count; the full recompute waits for open writers and loses none of them.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
from django.db import OperationalError, close_old_connections, connection, transaction

from casework import services
from casework.models import Organisation, Rating
from casework.services.scores import full_sums, recompute_scores, stored_sums
from casework.states import CaseState
from tests.casework.steps import advance, case_in, submit
from tests.casework.test_concurrency import race
from tests.casework.test_scores_recompute import assert_agree
from tests.conftest import member
from tests.factories import OrganisationFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

GOOD = {"timeliness": 5, "attitude": 4, "outcome": 5, "solved": "solved"}
LOW = {"timeliness": 1, "attitude": 2, "outcome": 1, "solved": "not_solved"}


def baiyun_case(tree, state):
    """A case of another youth, routed to Baiyun and handled and verified there: it shares
    no organisation and no staff member with the Haizhu cases."""
    station = OrganisationFactory(
        parent=tree.baiyun,
        level=4,
        region_code="440111",
        kind=Organisation.Kind.STATION,
        routes_by_region=False,
    )
    baiyun = dataclasses.replace(
        tree,
        handler=tree.baiyun_handler,
        station=station,
        verifier=member(station, "verifier", "baiyun_verifier"),
    )
    case = submit(tree, youth=tree.other_youth, region="440111")
    assert case.org_id == tree.baiyun.pk
    return advance(baiyun, case, state)


class OpenTransaction:
    """Run ``call`` in a thread, inside a transaction that stays open until ``close()``."""

    def __init__(self, call):
        self.call = call
        self.ready = threading.Event()
        self.release = threading.Event()
        self.result: list = []
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            close_old_connections()
            with transaction.atomic():
                self.result.append(self.call())
                self.ready.set()
                assert self.release.wait(60)
        except BaseException as exc:
            self.result.append(exc)
        finally:
            self.ready.set()
            connection.close()

    def __enter__(self):
        self.thread.start()
        started = self.ready.wait(60)
        if not (started and self.result and not isinstance(self.result[0], BaseException)):
            self.__exit__()
            pytest.fail(f"the open transaction did not start: {self.result}")
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def rate_within_lock_timeout(case, actor):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
        return services.case_rate(case=case.pk, actor=actor, **GOOD)


def test_ratings_for_different_organisations_do_not_wait_on_each_other(tree):
    haizhu = case_in(tree, CaseState.FEEDBACK_GIVEN)
    baiyun = baiyun_case(tree, CaseState.FEEDBACK_GIVEN)
    # While Haizhu's rating transaction is open (its score rows written, not committed)
    with OpenTransaction(lambda: services.case_rate(case=haizhu.pk, actor=tree.youth, **LOW)):
        # Baiyun's rating goes through without waiting for a lock
        rated = rate_within_lock_timeout(baiyun, tree.other_youth)
        assert rated.state == CaseState.CLOSED
    assert Rating.objects.filter(case_id__in=[haizhu.pk, baiyun.pk]).count() == 2
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))
    assert stored[f"org:{tree.baiyun.pk}"].weight > 0 and stored[f"org:{tree.haizhu.pk}"].weight > 0


def test_a_second_rating_for_the_same_organisation_queues_on_its_rows(tree):
    """The control for the test above: the lock timeout does catch a wait."""
    first, second = (case_in(tree, CaseState.FEEDBACK_GIVEN) for _ in range(2))
    holding = OpenTransaction(lambda: services.case_rate(case=first.pk, actor=tree.youth, **LOW))
    with holding, pytest.raises(OperationalError, match="lock timeout"):
        rate_within_lock_timeout(second, tree.youth)
    assert Rating.objects.filter(case_id=second.pk).count() == 0


def test_concurrent_ratings_and_edits_for_one_organisation_all_count(tree):
    cases = [case_in(tree, CaseState.FEEDBACK_GIVEN) for _ in range(4)]
    edited = case_in(tree, CaseState.CLOSED)
    calls = [
        (lambda c=c, v=v: services.case_rate(case=c.pk, actor=tree.youth, **v))
        for c, v in zip(cases, [GOOD, LOW, GOOD, LOW], strict=True)
    ]
    calls.append(lambda: services.rating_edit(case=edited.pk, actor=tree.youth, **LOW))
    results = race(*calls)
    assert not [r for r in results if isinstance(r, BaseException)], results
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))


def test_the_recompute_waits_for_an_open_rating_and_keeps_it(tree):
    open_case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    case_in(tree, CaseState.CLOSED)
    done: list = []

    def run_recompute():
        try:
            close_old_connections()
            done.append(recompute_scores())
        finally:
            connection.close()

    with OpenTransaction(lambda: services.case_rate(case=open_case.pk, actor=tree.youth, **LOW)):
        recompute = threading.Thread(target=run_recompute)
        recompute.start()
        recompute.join(1.0)
        assert recompute.is_alive() and not done  # waiting for the rating to commit
    recompute.join(60)
    assert done
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))
    assert stored[f"org:{tree.haizhu.pk}"].weight > 0
