"""The workbench inbox: filters, search, pages, SLA badges, fixed queries; the workbench home."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casework.models import Case
from casework.states import CaseState
from tests.casework.steps import case_in, submit

pytestmark = pytest.mark.django_db

INBOX = "workflows:inbox"


def references(response) -> list[str]:
    return [task.case.reference for task, _badge in response.context["rows"]]


def overdue(case, hours=3):
    Case.objects.filter(pk=case.pk).update(stage_due_at=timezone.now() - timedelta(hours=hours))


def test_filters_by_stage_category_overdue_and_reference(client, tree):
    intake = submit(tree)
    legal = submit(tree, category="legal")
    scheduling = case_in(tree, CaseState.ACCEPTED)
    overdue(legal)
    client.force_login(tree.handler)

    everything = references(client.get(reverse(INBOX)))
    assert sorted(everything) == sorted([intake.reference, legal.reference, scheduling.reference])
    assert everything[0] == legal.reference  # the overdue one first

    assert references(client.get(reverse(INBOX), {"stage": "accepted"})) == [scheduling.reference]
    assert references(client.get(reverse(INBOX), {"category": "legal"})) == [legal.reference]
    assert references(client.get(reverse(INBOX), {"overdue": "on"})) == [legal.reference]
    assert references(client.get(reverse(INBOX), {"q": intake.reference[-5:].lower()})) == [
        intake.reference
    ]
    assert references(client.get(reverse(INBOX), {"stage": "submitted", "category": "study"})) == [
        intake.reference
    ]


def test_unknown_filter_values_filter_nothing_and_never_fail(client, tree):
    submit(tree)
    client.force_login(tree.handler)
    for params in (
        {"stage": "exploded"},
        {"category": "nope"},
        {"q": "x" * 500},
        {"page": "abc"},
        {"page": "-3"},
        {"page": "99999"},
        {"overdue": "maybe"},
    ):
        response = client.get(reverse(INBOX), params)
        assert response.status_code == 200, params


def test_badges_say_overdue_in_words_with_the_absolute_time(client, tree):
    late = submit(tree)
    overdue(late, hours=5)
    submit(tree)
    client.force_login(tree.handler)
    response = client.get(reverse(INBOX))
    body = response.content.decode()
    badges = [badge for _task, badge in response.context["rows"]]
    assert badges[0].level == "overdue" and badges[1].level in ("ok", "soon")
    assert badges[0].text in body and "badge--bad" in body
    due = timezone.localtime(Case.objects.get(pk=late.pk).stage_due_at)
    assert f'<time class="muted" datetime="{due.isoformat()}">' in body


def test_pages(client, tree, monkeypatch):
    monkeypatch.setattr("workflows.views.TASKS_PER_PAGE", 2)
    made = [submit(tree) for _ in range(5)]
    client.force_login(tree.handler)
    first = client.get(reverse(INBOX))
    assert len(first.context["rows"]) == 2 and first.context["page"].paginator.num_pages == 3
    third = client.get(reverse(INBOX), {"page": 3})
    assert len(third.context["rows"]) == 1
    seen = set()
    for number in (1, 2, 3):
        seen |= set(references(client.get(reverse(INBOX), {"page": number})))
    assert seen == {case.reference for case in made}
    # the filters ride along on the page links
    body = client.get(reverse(INBOX), {"category": "study"}).content.decode()
    assert "category=study&amp;page=2" in body


def test_inbox_queries_do_not_grow_with_the_tasks(client, tree):
    def count() -> int:
        client.force_login(tree.city_supervisor)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(INBOX), {"category": "study"}).status_code == 200
        return len(queries)

    submit(tree)
    few = count()
    for _ in range(6):
        case = submit(tree)
        overdue(case)
    case_in(tree, CaseState.VERIFYING)
    many = count()
    assert few == many


def test_partners_and_youth_have_empty_inboxes(client, tree):
    submit(tree)
    client.force_login(tree.partner_staff)
    response = client.get(reverse(INBOX))
    assert response.status_code == 200 and response.context["rows"] == []
    assert reverse("casework:coordination_list") in response.content.decode()
    client.force_login(tree.youth)
    response = client.get(reverse(INBOX))
    assert response.status_code == 200 and response.context["rows"] == []


def test_workbench_home(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)  # accepting assigns the handler
    client.force_login(tree.handler)
    response = client.get(reverse("casework:workbench"))
    assert response.status_code == 200
    assert [c.reference for c, _badge in response.context["assigned"]] == [case.reference]
    client.force_login(tree.youth)
    assert client.get(reverse("casework:workbench")).status_code == 403
