"""Ratings: giving, editing within the window, disputes after a low rating, refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from freezegun import freeze_time

from casework import services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.models import Case, Rating, ScoreShare
from casework.selectors_scores import org_scores
from casework.states import CaseState
from tests.casework.steps import case_in, kinds

pytestmark = pytest.mark.django_db

LOW = {"timeliness": 1, "attitude": 2, "outcome": 1, "solved": "not_solved"}
GOOD = {"timeliness": 5, "attitude": 5, "outcome": 5, "solved": "solved"}


def rate(tree, case, values):
    return services.case_rate(case=case, actor=tree.youth, **values)


@pytest.mark.parametrize("state", [CaseState.WITHDRAWN, CaseState.REJECTED])
def test_withdrawn_or_rejected_cases_cannot_be_rated(tree, state):
    case = case_in(tree, state)
    with translation.override("en"), pytest.raises(InvalidTransition) as refused:
        rate(tree, case, GOOD)
    with translation.override("en"):
        assert "withdrawn or rejected" in str(refused.value.message)
    assert not Rating.objects.filter(case=case).exists()


def test_bad_stars_are_refused_field_by_field(tree):
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    with pytest.raises(ValidationFailed) as refused:
        services.case_rate(
            case=case, actor=tree.youth, timeliness=0, attitude=6, outcome="x", solved="maybe"
        )
    assert set(refused.value.field_errors) == {"timeliness", "attitude", "outcome", "solved"}


def test_rating_closes_the_case_and_moves_the_score(tree):
    # Given a case of Haizhu waiting for its rating
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    before = org_scores(tree.haizhu).evaluation
    # When the youth rates it well
    case = rate(tree, case, GOOD)
    # Then it is closed, attributed to Haizhu and its handlers, and Haizhu's score rose
    assert case.state == CaseState.CLOSED
    assert set(ScoreShare.objects.filter(case=case).values_list("org_id", flat=True)) == {
        tree.haizhu.pk,
        None,
    }
    assert tree.handler.pk in ScoreShare.objects.filter(case=case).values_list("user_id", flat=True)
    assert org_scores(tree.haizhu).evaluation > before


def test_the_rating_can_be_edited_within_the_window_only(tree, settings):
    case = rate(tree, case_in(tree, CaseState.FEEDBACK_GIVEN), LOW)
    low_score = org_scores(tree.haizhu).evaluation
    # Within the window: the edit is on the timeline and the score moves by the difference
    services.rating_edit(case=case, actor=tree.youth, **GOOD)
    assert Rating.objects.get(case=case).outcome == 5
    assert kinds(case)[-1] == "rating_edited"
    assert org_scores(tree.haizhu).evaluation > low_score
    # Someone else may not
    with pytest.raises(NotPermitted):
        services.rating_edit(case=case, actor=tree.handler, **LOW)
    # After the window: refused
    later = timezone.now() + settings.CASEWORK_RATING_WINDOW + timedelta(minutes=1)
    with freeze_time(later), pytest.raises(InvalidTransition):
        services.rating_edit(case=case, actor=tree.youth, **LOW)


def test_a_low_rating_offers_a_dispute_that_reopens_the_case(tree):
    # Given a case the youth rated "not solved"
    case = rate(tree, case_in(tree, CaseState.FEEDBACK_GIVEN), LOW)
    assert services.dispute_offered(case, tree.youth)
    # When they dispute it
    case = services.case_dispute(case=case, actor=tree.youth, reason="问题没有解决")
    # Then it is back in coordination, reopened once, with an open flow task again
    assert case.state == CaseState.COORDINATING
    assert case.reopen_count == 1 and case.closed_at is None
    from workflows.models import OPEN_TASK_STATUSES, CaseTask

    assert CaseTask.objects.filter(case_id=case.pk, status__in=OPEN_TASK_STATUSES).count() == 1


def test_a_good_rating_offers_no_dispute(tree):
    case = rate(tree, case_in(tree, CaseState.FEEDBACK_GIVEN), GOOD)
    assert not services.dispute_offered(case, tree.youth)
    with pytest.raises(InvalidTransition):
        services.case_dispute(case=case, actor=tree.youth, reason="改主意了")


def test_no_dispute_after_the_window(tree, settings):
    case = rate(tree, case_in(tree, CaseState.FEEDBACK_GIVEN), LOW)
    later = timezone.now() + settings.CASEWORK_RATING_WINDOW + timedelta(minutes=1)
    with freeze_time(later):
        assert not services.dispute_offered(Case.objects.get(pk=case.pk), tree.youth)


def test_the_second_reopen_escalates_and_a_new_rating_replaces_the_first(tree):
    case = rate(tree, case_in(tree, CaseState.FEEDBACK_GIVEN), LOW)
    case = services.case_dispute(case=case, actor=tree.youth, reason="没解决")
    assert case.org_id == tree.haizhu.pk
    case = services.case_resolve(case=case, actor=tree.handler, outcome="partly", note="再协调")
    case = services.case_give_feedback(case=case, actor=tree.handler, message="再次反馈")
    case = rate(tree, case, LOW)
    assert Rating.objects.filter(case=case).count() == 1
    case = services.case_dispute(case=case, actor=tree.youth, reason="还是没解决")
    # The second reopen escalates to the city
    assert case.org_id == tree.city.pk
    case = services.case_resolve(case=case, actor=tree.city_handler, outcome="solved", note="解决")
    case = services.case_give_feedback(case=case, actor=tree.city_handler, message="已解决")
    case = rate(tree, case, GOOD)
    rating = Rating.objects.get(case=case)
    assert rating.solved == "solved"
    # The case is now attributed to both levels by the time they held it
    orgs = set(
        ScoreShare.objects.filter(case=case, org__isnull=False).values_list("org_id", flat=True)
    )
    assert orgs == {tree.haizhu.pk, tree.city.pk}


def test_an_auto_closed_case_cannot_be_disputed(tree):
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    case = services.case_auto_close(case=case)
    with pytest.raises(InvalidTransition):
        services.case_dispute(case=case, actor=tree.youth, reason="晚了")
