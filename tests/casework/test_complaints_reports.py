"""Complaints (吐槽) to the supervisors, reports that hide a case, and their review."""

import pytest
from django.utils import timezone

from casework import services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.models import Case, CaseEvent, Complaint, Report
from casework.selectors_scores import complaints_for, hidden_cases_for
from casework.states import CaseState
from notifications.services import fan_out_pending
from tests.casework.steps import case_in, kinds
from tests.conftest import member

pytestmark = pytest.mark.django_db


def test_a_complaint_goes_to_the_supervisors_with_a_deadline_and_on_the_timeline(tree, settings):
    from notifications.models import Notification

    case = case_in(tree, CaseState.COORDINATING)
    before = timezone.now()
    complaint = services.complaint_submit(
        case=case, actor=tree.youth, body="处理太慢了，态度也不好"
    )
    assert complaint.org_id == tree.haizhu.pk
    assert complaint.due_at >= before + settings.CASEWORK_COMPLAINT_RESPONSE_TIME
    event = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    assert event.kind == "complaint" and event.payload["complaint"] == complaint.pk
    assert "态度" not in str(event.payload)
    # The supervisors above Haizhu are told (once the worker fans the event out)
    fan_out_pending()
    told = set(Notification.objects.filter(event=event).values_list("recipient_id", flat=True))
    assert {tree.city_supervisor.pk, tree.province_supervisor.pk} <= told
    # and see it in their list; others do not
    assert list(complaints_for(tree.city_supervisor)) == [complaint]
    assert list(complaints_for(member(tree.other_city, "supervisor", "sz_sup"))) == []
    assert list(complaints_for(tree.handler)) == []


def test_only_the_cases_youth_complains_and_only_a_supervisor_answers(tree):
    case = case_in(tree, CaseState.COORDINATING)
    with pytest.raises(NotPermitted):
        services.complaint_submit(case=case, actor=tree.other_youth, body="x")
    with pytest.raises(ValidationFailed):
        services.complaint_submit(case=case, actor=tree.youth, body="  ")
    complaint = services.complaint_submit(case=case, actor=tree.youth, body="太慢")
    with pytest.raises(NotPermitted):
        services.complaint_answer(complaint=complaint, actor=tree.handler, answer="好的")
    answered = services.complaint_answer(
        complaint=complaint, actor=tree.city_supervisor, answer="已约谈经办人"
    )
    assert answered.status == Complaint.Status.ANSWERED
    assert kinds(case)[-1] == "complaint_answered"
    with pytest.raises(InvalidTransition):
        services.complaint_answer(complaint=complaint, actor=tree.city_supervisor, answer="again")


def reporters(tree, n):
    from tests.factories import UserFactory

    return [UserFactory(username=f"reporter{i}") for i in range(n)]


def test_independent_reports_past_the_threshold_hide_the_case_until_review(tree, settings):
    settings.CASEWORK_REPORTS_TO_HIDE = 3
    case = case_in(tree, CaseState.COORDINATING)
    people = reporters(tree, 3)
    # One person cannot report twice, and the youth cannot report their own case
    services.report_submit(case=case, actor=people[0], kind=Report.Kind.FAKE)
    with pytest.raises(ValidationFailed):
        services.report_submit(case=case, actor=people[0], kind=Report.Kind.ABUSIVE)
    with pytest.raises(NotPermitted):
        services.report_submit(case=case, actor=tree.youth, kind=Report.Kind.FAKE)
    # "True" feedback does not count towards hiding
    services.report_submit(case=case, actor=tree.other_youth, kind=Report.Kind.TRUE)
    services.report_submit(case=case, actor=people[1], kind=Report.Kind.UNTRUE)
    assert not Case.objects.get(pk=case.pk).hidden_from_public
    services.report_submit(case=case, actor=people[2], kind=Report.Kind.ABUSIVE)
    case = Case.objects.get(pk=case.pk)
    assert case.hidden_from_public
    assert kinds(case)[-1] == "hidden_pending_review"
    assert list(hidden_cases_for(tree.city_supervisor)) == [case]
    # The review restores it; the decision is on the timeline
    with pytest.raises(NotPermitted):
        services.review_decide(case=case, actor=tree.handler, decision="restore")
    services.review_decide(
        case=case, actor=tree.city_supervisor, decision="restore", note="核实无误"
    )
    case = Case.objects.get(pk=case.pk)
    assert not case.hidden_from_public
    event = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    assert event.kind == "reviewed" and event.payload["decision"] == "restore"
    assert list(hidden_cases_for(tree.city_supervisor)) == []
    with pytest.raises(InvalidTransition):
        services.review_decide(case=case, actor=tree.city_supervisor, decision="restore")


def test_an_upheld_review_keeps_the_case_hidden(tree, settings):
    settings.CASEWORK_REPORTS_TO_HIDE = 1
    case = case_in(tree, CaseState.SUBMITTED)
    services.report_submit(case=case, actor=tree.other_youth, kind=Report.Kind.FAKE)
    services.review_decide(case=case, actor=tree.province_supervisor, decision="keep_hidden")
    assert Case.objects.get(pk=case.pk).hidden_from_public
