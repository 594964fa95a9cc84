"""Whole journeys of a case: the happy path and every side path of section 3."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from casework import services
from casework.errors import InvalidTransition, NotPermitted
from casework.events import verify_case
from casework.models import Case, CaseMessage, Rating, Verification
from casework.states import CaseState
from tests.casework.steps import case_in, kinds, snapshot, submit

S = CaseState


def test_happy_path_from_submit_to_closed(tree):
    # Given a youth in Haizhu asking for help with school
    case = submit(tree)
    assert (case.state, case.org_id) == (S.SUBMITTED, tree.haizhu.pk)

    # When the Haizhu handler takes it through every stage and the youth rates it
    case = services.case_accept(case=case, actor=tree.handler)
    assert case.assignee_id == tree.handler.pk
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    assert case.station_id == tree.station.pk
    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings="面谈核实"
    )
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请学校配合"
    )
    services.coordination_complete(task=task, actor=tree.partner_staff, result="学校已处理")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="已解决")
    case = services.case_give_feedback(case=case, actor=tree.handler, message="问题已解决")
    case = services.case_rate(
        case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=4, solved="solved"
    )

    # Then it is closed, rated, and its timeline tells the whole story in order
    assert case.state == S.CLOSED
    assert case.closed_at is not None
    assert case.outcome == "solved"
    assert Rating.objects.get(case=case).outcome == 4
    assert Verification.objects.get(case=case).confirmed is True
    assert kinds(case) == [
        "submitted",
        "routed",
        "accepted",
        "verification_scheduled",
        "verification_confirmed",
        "referred",
        "referral_done",
        "resolved",
        "feedback_given",
        "rated",
    ]
    assert case.version == 8
    assert verify_case(case) is None


def test_verification_by_the_orgs_own_verifiers_without_a_station(tree):
    from tests.conftest import member

    own = member(tree.haizhu, "verifier", "haizhu_own_verifier")
    case = case_in(tree, S.ACCEPTED)

    case = services.case_schedule_verification(case=case, actor=tree.handler, station=None)
    case = services.case_record_verification(case=case, actor=own, confirmed=True, findings="属实")

    assert case.state == S.COORDINATING
    with pytest.raises(NotPermitted):
        services.case_record_verification(
            case=case_in(tree, S.VERIFYING), actor=tree.partner_staff, confirmed=True, findings="x"
        )


# --- reject and appeal ------------------------------------------------------------


def test_reject_then_appeal_starts_again_at_the_parent(tree):
    # Given a case the district rejected
    case = submit(tree)
    case = services.case_reject(case=case, actor=tree.handler, reason="out_of_scope", note="不属")
    assert (case.state, case.reject_reason) == (S.REJECTED, "out_of_scope")
    assert case.closed_at is not None

    # When the youth appeals
    case = services.case_appeal(case=case, actor=tree.youth, statement="属于学习问题")

    # Then it is submitted again, one level up, with a fresh start
    assert (case.state, case.org_id) == (S.SUBMITTED, tree.city.pk)
    assert case.appealed is True
    assert (case.reject_reason, case.closed_at, case.assignee_id) == ("", None, None)
    assert case.escalation_count == 1
    assert kinds(case)[-3:] == ["rejected", "appealed", "escalated"]
    # and the city, not the district, handles it now
    with pytest.raises(NotPermitted):
        services.case_accept(case=case, actor=tree.handler)
    case = services.case_accept(case=case, actor=tree.city_handler)
    assert case.state == S.ACCEPTED


def test_appeal_at_the_province_stays_at_the_province(tree):
    case = submit(tree)
    case = services.case_escalate(case=case, actor=tree.handler, reason="manual")
    case = services.case_escalate(case=case, actor=tree.city_handler, reason="manual")
    case = services.case_reject(case=case, actor=tree.province_handler, reason="duplicate")

    case = services.case_appeal(case=case, actor=tree.youth)

    assert (case.state, case.org_id) == (S.SUBMITTED, tree.province.pk)
    assert kinds(case)[-1] == "appealed"


def test_verifier_disconfirmation_rejects_and_can_be_appealed(tree):
    case = case_in(tree, S.VERIFYING)

    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=False, findings="未能核实"
    )

    assert (case.state, case.reject_reason) == (S.REJECTED, "not_confirmed")
    assert Verification.objects.get(case=case).confirmed is False
    case = services.case_appeal(case=case, actor=tree.youth)
    assert case.state == S.SUBMITTED


def test_appeal_within_the_window_is_allowed_at_its_last_minute(tree, settings):
    case = case_in(tree, S.REJECTED)

    with freeze_time(case.closed_at + settings.CASEWORK_APPEAL_WINDOW - timedelta(minutes=1)):
        case = services.case_appeal(case=case, actor=tree.youth)

    assert case.state == S.SUBMITTED


# --- request_info and provide_info --------------------------------------------------


@pytest.mark.parametrize("state", [S.ACCEPTED, S.VERIFYING, S.COORDINATING])
def test_request_info_pauses_and_provide_info_returns_to_where_it_was(tree, state):
    case = case_in(tree, state)
    org, station = case.org_id, case.station_id

    case = services.case_request_info(case=case, actor=tree.handler, question="请提供证明")
    assert (case.state, case.resume_state) == (S.AWAITING_YOUTH, state)
    assert case.stage_due_at is None

    case = services.case_provide_info(case=case, actor=tree.youth, answer="证明已上传")

    assert case.state == state
    assert case.resume_state == ""
    assert (case.org_id, case.station_id) == (org, station)
    assert case.stage_due_at is not None
    assert kinds(case)[-2:] == ["info_requested", "info_provided"]
    kinds_of_messages = list(case.messages.values_list("kind", flat=True))
    assert kinds_of_messages[-2:] == [CaseMessage.Kind.QUESTION, CaseMessage.Kind.ANSWER]


def test_asking_twice_before_an_answer_is_refused(tree):
    case = case_in(tree, S.AWAITING_YOUTH)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_request_info(case=case, actor=tree.handler, question="还有吗")

    assert snapshot(case) == before


def test_escalating_while_awaiting_the_youth_keeps_the_pause(tree):
    case = case_in(tree, S.AWAITING_YOUTH)

    case = services.case_escalate(case=case, actor=tree.handler, reason="manual")
    assert (case.state, case.org_id, case.stage_due_at) == (S.AWAITING_YOUTH, tree.city.pk, None)
    case = services.case_provide_info(case=case, actor=tree.youth, answer="补充")

    assert case.state == S.COORDINATING
    assert case.stage_due_at is not None


# --- dispute and reopen -----------------------------------------------------------


def test_first_dispute_reopens_at_the_same_org_second_escalates(tree):
    case = case_in(tree, S.FEEDBACK_GIVEN)

    case = services.case_dispute(case=case, actor=tree.youth, reason="没解决")
    assert (case.state, case.org_id, case.reopen_count) == (S.COORDINATING, tree.haizhu.pk, 1)
    assert case.outcome == ""

    case = services.case_resolve(case=case, actor=tree.handler, outcome="partly", note="再处理")
    case = services.case_give_feedback(case=case, actor=tree.handler, message="再次说明")
    case = services.case_dispute(case=case, actor=tree.youth, reason="仍未解决")

    assert (case.state, case.org_id, case.reopen_count) == (S.COORDINATING, tree.city.pk, 2)
    assert case.escalation_count == 1
    assert kinds(case)[-2:] == ["disputed", "escalated"]
    # The city takes it from there and the case can still close.
    case = services.case_resolve(case=case, actor=tree.city_handler, outcome="solved", note="市级")
    case = services.case_give_feedback(case=case, actor=tree.city_handler, message="结果")
    case = services.case_rate(
        case=case, actor=tree.youth, timeliness=3, attitude=4, outcome=4, solved="solved"
    )
    assert case.state == S.CLOSED
    assert verify_case(case) is None


# --- withdraw, auto_close -------------------------------------------------------------


def test_withdraw_keeps_the_reason_out_of_the_timeline(tree):
    case = case_in(tree, S.VERIFYING)

    case = services.case_withdraw(case=case, actor=tree.youth, reason="已自行解决")

    assert case.state == S.WITHDRAWN
    assert case.stage_due_at is None
    assert "message" in case.events.order_by("-seq").first().payload
    assert not case.is_open


def test_withdrawn_case_accepts_nothing_more(tree):
    case = case_in(tree, S.WITHDRAWN)
    before = snapshot(case)

    for call in (
        lambda: services.case_accept(case=case, actor=tree.handler),
        lambda: services.case_withdraw(case=case, actor=tree.youth),
        lambda: services.case_appeal(case=case, actor=tree.youth),
    ):
        with pytest.raises(InvalidTransition):
            call()

    assert snapshot(case) == before


def test_auto_close_when_the_rating_window_ends(tree):
    case = case_in(tree, S.FEEDBACK_GIVEN)

    case = services.case_auto_close(case=case)

    assert case.state == S.CLOSED
    assert case.closed_at is not None
    assert not Rating.objects.filter(case=case).exists()
    last = case.events.order_by("-seq").first()
    assert (last.kind, last.actor_id) == ("auto_closed", None)
    with pytest.raises(InvalidTransition):
        services.case_rate(
            case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=5, solved="solved"
        )


def test_sensitive_categories_are_never_public(tree):
    case = submit(tree, category="psychological", is_public=True)

    assert case.is_public is False
    assert submit(tree, category="study", is_public=True).is_public is True


def test_named_organisation_gets_the_case(tree):
    case = submit(tree, requested_org=tree.haizhu_branch)

    assert case.org_id == tree.haizhu_branch.pk
    assert case.requested_org_id == tree.haizhu_branch.pk
    accepted = services.case_accept(case=case, actor=tree.branch_handler)
    assert accepted.state == S.ACCEPTED


def test_a_case_is_unchanged_in_the_database_after_a_refusal_even_for_stale_objects(tree):
    """Services reload and lock the row: a stale object in the caller's hands changes nothing."""
    case = case_in(tree, S.SUBMITTED)
    stale = Case.objects.get(pk=case.pk)
    services.case_accept(case=case, actor=tree.handler)

    with pytest.raises(InvalidTransition):
        services.case_accept(case=stale, actor=tree.city_supervisor)

    assert Case.objects.get(pk=case.pk).assignee_id == tree.handler.pk
