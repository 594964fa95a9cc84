"""Inboxes and task pages: who sees which step, and finishing a step through its page."""

import pytest
from django.urls import reverse

from casework import services
from casework.models import Case, User
from casework.states import CaseState
from tests.conftest import member
from tests.workflows.test_flow import assert_flow_agrees, case_in, open_task, submit
from workflows.flows import CaseFlow
from workflows.selectors import inbox_for

pytestmark = pytest.mark.django_db


def fresh(user) -> User:
    """The same person without cached memberships, as a new request would load them."""
    return User.objects.get(pk=user.pk)


def page(task) -> str:
    return reverse("workflows:task", args=[task.pk])


# --- inbox_for -------------------------------------------------------------------


def test_each_role_sees_its_own_steps(tree):
    # given one case waiting for intake and one waiting for verification at the station
    waiting = submit(tree)
    verifying = case_in(tree, "verifying")

    def cases(user):
        return [t.case_id for t in inbox_for(user)]

    # then handlers see intake, verifiers verification, supervisors everything below
    assert cases(tree.handler) == [waiting.pk]
    assert cases(tree.verifier) == [verifying.pk]
    assert sorted(cases(tree.city_supervisor)) == sorted([waiting.pk, verifying.pk])
    assert sorted(cases(tree.province_supervisor)) == sorted([waiting.pk, verifying.pk])
    # and nobody elsewhere, nor the youth or a partner, sees them
    for outsider in (tree.baiyun_handler, tree.branch_handler, tree.city_handler):
        assert cases(outsider) == []
    assert cases(tree.youth) == [] and cases(tree.partner_staff) == []


def test_a_district_supervisor_sees_the_steps_held_in_the_district_and_its_stations(tree):
    # given a case waiting for intake at the district, one being verified at its
    # station, and one escalated out of the district to the city
    waiting = submit(tree)
    verifying = case_in(tree, "verifying")
    escalated = submit(tree)
    services.case_escalate(case=escalated, actor=tree.handler, reason="beyond_capacity")
    haizhu_supervisor = member(tree.haizhu, "supervisor", "haizhu_supervisor")
    baiyun_supervisor = member(tree.baiyun, "supervisor", "baiyun_supervisor")

    def cases(user):
        return sorted(t.case_id for t in inbox_for(fresh(user)))

    # then the district's supervisor sees the two held in the district (the station is
    # below it), not the one the city holds now; a neighbouring district's sees none
    assert cases(haizhu_supervisor) == sorted([waiting.pk, verifying.pk])
    assert cases(baiyun_supervisor) == []
    assert cases(tree.city_supervisor) == sorted([waiting.pk, verifying.pk, escalated.pk])


def test_inbox_loads_case_category_and_org_up_front(tree, django_assert_num_queries):
    # given a few cases, then more of them
    for _ in range(2):
        submit(tree)
    handler = fresh(tree.handler)
    with django_assert_num_queries(2):  # memberships, then the tasks with their rows
        tasks = inbox_for(handler)
        labels = [(t.case.reference, t.case.category.name, t.org.name, t.title) for t in tasks]
    assert len(labels) == 2

    for _ in range(5):
        submit(tree)
    supervisor = fresh(tree.city_supervisor)
    with django_assert_num_queries(2):
        tasks = inbox_for(supervisor, limit=5)
        labels = [(t.case.reference, t.case.category.name, t.org.name) for t in tasks]
    assert len(labels) == 5


def test_inbox_puts_the_most_urgent_stage_first(tree):
    later = submit(tree)
    sooner = submit(tree, urgency=Case.Urgency.URGENT)
    assert [t.case_id for t in inbox_for(tree.handler)] == [sooner.pk, later.pk]


def test_inbox_page_lists_the_tasks(client, tree):
    case = submit(tree)
    client.force_login(tree.handler)
    response = client.get(reverse("workflows:inbox"))
    assert response.status_code == 200
    assert case.reference in response.content.decode()
    assert page(open_task(case)) in response.content.decode()


def test_inbox_page_needs_a_login(client, tree):
    response = client.get(reverse("workflows:inbox"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


# --- task pages -------------------------------------------------------------------


def test_handler_accepts_through_the_intake_page(client, tree):
    # given a case waiting for intake, and its handler signed in
    case = submit(tree)
    task = open_task(case)
    client.force_login(tree.handler)
    assert client.get(page(task)).status_code == 200

    # when the handler accepts it on the task's page
    response = client.post(page(task), {"action": "accept", "accept-version": case.version})

    # then the service ran and the flow moved on to scheduling the verification
    assert response.status_code == 302
    assert response["Location"] == reverse("workflows:inbox")
    case = assert_flow_agrees(case)
    assert case.state == CaseState.ACCEPTED
    assert case.assignee == tree.handler
    task.refresh_from_db()
    assert task.status == "DONE" and task.owner == tree.handler
    assert open_task(case).flow_task is CaseFlow.schedule_verification


def test_handler_rejects_through_the_intake_page(client, tree):
    case = submit(tree)
    client.force_login(tree.handler)
    response = client.post(
        page(open_task(case)),
        {"action": "reject", "reject-version": case.version, "reject-reason": "duplicate"},
    )
    assert response.status_code == 302
    case = assert_flow_agrees(case)
    assert case.state == CaseState.REJECTED and case.reject_reason == "duplicate"


def test_each_step_can_be_finished_through_its_page(client, tree):
    case = submit(tree)

    def post(user, action, **fields):
        client.force_login(user)
        current = Case.objects.get(pk=case.pk)
        data = {"action": action, f"{action}-version": current.version}
        data.update({f"{action}-{name}": value for name, value in fields.items()})
        response = client.post(page(open_task(case)), data)
        assert response.status_code == 302, response.content.decode()
        return assert_flow_agrees(case)

    post(tree.handler, "accept")
    assert post(tree.handler, "schedule", station=tree.station.pk).station == tree.station
    assert post(tree.verifier, "record", confirmed="yes", findings="属实").state == "coordinating"
    assert post(tree.handler, "refer", partner=tree.partner.pk, instructions="请协助").state == (
        "coordinating"
    )
    referral = case.coordination_tasks.get()
    services.coordination_complete(task=referral, actor=tree.partner_staff, result="已完成")
    assert post(tree.handler, "resolve", outcome="solved", note="已解决").state == "resolved"
    assert post(tree.handler, "give_feedback", message="已解决").state == "feedback_given"


def test_a_wrong_or_missing_field_shows_the_error_and_changes_nothing(client, tree):
    case = case_in(tree, "coordinating")
    services.case_refer(case=case, actor=tree.handler, partner=tree.partner, instructions="请协助")
    case.refresh_from_db()
    client.force_login(tree.handler)

    # the service refuses: a required referral is still open
    response = client.post(
        page(open_task(case)),
        {
            "action": "resolve",
            "resolve-version": case.version,
            "resolve-outcome": "solved",
            "resolve-note": "已解决",
        },
    )
    assert response.status_code == 400
    assert Case.objects.get(pk=case.pk).state == CaseState.COORDINATING
    assert_flow_agrees(case)

    # the form refuses: no note
    response = client.post(
        page(open_task(case)),
        {"action": "resolve", "resolve-version": case.version, "resolve-outcome": "solved"},
    )
    assert response.status_code == 400


def test_a_stale_page_does_not_overwrite_a_newer_case(client, tree):
    case = submit(tree)
    task = open_task(case)
    services.case_comment(case=case, actor=tree.handler, body="先看一下")  # version moves on
    client.force_login(tree.handler)
    response = client.post(page(task), {"action": "accept", "accept-version": case.version})
    assert response.status_code == 400
    assert Case.objects.get(pk=case.pk).state == CaseState.SUBMITTED


def test_someone_from_another_organisation_cannot_open_or_finish_the_step(client, tree):
    case = submit(tree)
    task = open_task(case)
    for outsider in (tree.baiyun_handler, tree.verifier, tree.youth, tree.partner_staff):
        client.force_login(outsider)
        assert client.get(page(task)).status_code == 404
        response = client.post(page(task), {"action": "accept", "accept-version": case.version})
        assert response.status_code == 404
    assert Case.objects.get(pk=case.pk).state == CaseState.SUBMITTED
    assert_flow_agrees(case)


def test_a_supervisor_may_finish_a_step_below(client, tree):
    case = submit(tree)
    client.force_login(tree.city_supervisor)
    response = client.post(
        page(open_task(case)), {"action": "accept", "accept-version": case.version}
    )
    assert response.status_code == 302
    assert assert_flow_agrees(case).state == CaseState.ACCEPTED


def test_a_moved_task_leaves_the_old_holders_pages(client, tree):
    case = submit(tree)
    task = open_task(case)
    services.case_escalate(case=case, actor=tree.handler, reason="manual")
    client.force_login(tree.handler)
    assert client.get(page(task)).status_code == 404
    client.force_login(tree.city_handler)
    assert client.get(page(task)).status_code == 200


def test_a_finished_step_offers_no_actions(client, tree):
    case = submit(tree)
    task = open_task(case)
    services.case_accept(case=case, actor=tree.handler)
    case.refresh_from_db()
    client.force_login(tree.handler)
    response = client.get(page(task))
    assert response.status_code == 200
    assert 'name="action"' not in response.content.decode()
    response = client.post(page(task), {"action": "accept", "accept-version": case.version})
    assert response.status_code == 409
    assert_flow_agrees(case)


def test_an_unknown_action_is_refused(client, tree):
    case = submit(tree)
    client.force_login(tree.handler)
    response = client.post(page(open_task(case)), {"action": "resolve"})
    assert response.status_code == 400
    assert Case.objects.get(pk=case.pk).state == CaseState.SUBMITTED
