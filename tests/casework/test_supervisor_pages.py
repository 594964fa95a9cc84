"""The supervisor console: dashboard numbers and queries, the audit view, the CSV exports."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casework import selectors, services
from casework.models import Case, CaseEvent, User
from casework.services.dashboard_rollup import refresh_dashboard_rollup
from casework.states import CaseState
from casework.views.supervisor import bar_chart, line_chart
from tests.casework.steps import DESCRIPTION, case_in, submit

pytestmark = pytest.mark.django_db

DASHBOARD = "casework:supervisor"


def fresh(user) -> User:
    return User.objects.get(pk=user.pk)


def overdue(case, hours=5):
    # The stage clock ran out without the sweep having acted yet.
    Case.objects.filter(pk=case.pk).update(stage_due_at=timezone.now() - timedelta(hours=hours))


def audit_url(case) -> str:
    return reverse("casework:supervisor_audit", args=[case.reference])


def read_csv(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


# --- who may open the console -------------------------------------------------------------


def test_only_supervisors_open_the_console(client, tree):
    submit(tree)
    for url in (
        reverse(DASHBOARD),
        reverse("casework:supervisor_export_cases"),
        reverse("casework:supervisor_export_timelines"),
    ):
        for person in (tree.handler, tree.verifier, tree.partner_staff, tree.youth):
            client.force_login(person)
            assert client.get(url).status_code == 403, (url, person)
        client.force_login(tree.city_supervisor)
        assert client.get(url).status_code == 200
        client.logout()
        assert client.get(url).status_code == 302


# --- the dashboard ---------------------------------------------------------------------------


def test_dashboard_counts_the_subtree(client, tree):
    # given two open cases at Haizhu (one overdue), one at Baiyun escalated to the city,
    # a closed case, and a case in another city
    waiting = submit(tree)
    overdue(waiting)
    case_in(tree, CaseState.VERIFYING)
    escalated = submit(tree, region="440111")
    services.case_escalate(case=escalated, actor=tree.baiyun_handler, reason="manual")
    case_in(tree, CaseState.CLOSED)
    elsewhere = submit(tree, region="440300")
    assert elsewhere.org == tree.other_city
    # the dashboard's figures are as of the last refresh of its rollup (every minute)
    refresh_dashboard_rollup()

    client.force_login(tree.city_supervisor)
    response = client.get(reverse(DASHBOARD))
    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats.open_total == 3 and stats.overdue_total == 1
    assert stats.escalations_total == 1 and stats.escalations_sla == 0
    open_by_state = {state: n for state, n, _ in stats.open_by_state}
    assert open_by_state["submitted"] == 2 and open_by_state["verifying"] == 1
    rows = {row["name"]: row["stats"] for row in response.context["branches"]}
    haizhu = rows[tree.haizhu.name]
    assert (haizhu.total, haizhu.open, haizhu.overdue, haizhu.finished) == (3, 2, 1, 1)
    assert haizhu.on_time_rate == 1.0 and haizhu.reopen_rate == 0.0
    assert rows[tree.city.name].open == 1  # held at the city itself after the escalation
    assert tree.other_city.name not in rows
    assert sum(stats.submitted_per_week) == 4 and sum(stats.closed_per_week) == 1
    body = response.content.decode()
    assert "<svg" in body and "<title" in body and waiting.reference in body

    # the province supervisor sees the other city too; a filter narrows to Baiyun
    client.force_login(tree.province_supervisor)
    stats = client.get(reverse(DASHBOARD)).context["stats"]
    assert stats.open_total == 4
    response = client.get(reverse(DASHBOARD), {"org": tree.baiyun.pk})
    assert response.context["scope"].root == tree.baiyun
    assert response.context["stats"].open_total == 0  # the Baiyun case went up to the city


def test_sla_breaches_count_against_on_time(client, tree):
    late = case_in(tree, CaseState.COORDINATING)
    # the sweep finds the stage deadline passed and escalates the case to the city
    overdue(late)
    services.sla_sweep(now=timezone.now())
    late = Case.objects.get(pk=late.pk)
    assert late.org == tree.city
    late = services.case_resolve(case=late, actor=tree.city_handler, outcome="solved", note="好")
    case_in(tree, CaseState.RESOLVED)
    refresh_dashboard_rollup()

    client.force_login(tree.city_supervisor)
    response = client.get(reverse(DASHBOARD))
    stats = response.context["stats"]
    assert stats.escalations_total == 1 and stats.escalations_sla == 1
    rows = {row["name"]: row["stats"] for row in response.context["branches"]}
    assert rows[tree.city.name].finished == 1 and rows[tree.city.name].on_time == 0
    assert rows[tree.haizhu.name].on_time_rate == 1.0


def test_filters_never_fail_and_stay_inside_the_subtree(client, tree):
    submit(tree)
    client.force_login(tree.city_supervisor)
    for params in (
        {"org": tree.other_city.pk},  # not supervised: falls back to the own subtree
        {"org": "abc", "weeks": "1000", "category": "x"},
        {"weeks": "4", "category": tree.category("study").pk},
        {"org": 999999},
        {"org": "99999999999999999999", "category": "99999999999999999999", "weeks": "-1"},
    ):
        response = client.get(reverse(DASHBOARD), params)
        assert response.status_code == 200, params
        assert response.context["scope"].root.path.startswith(tree.city.path)
    response = client.get(reverse(DASHBOARD), {"category": tree.category("legal").pk})
    assert response.context["stats"].open_total == 0


def test_dashboard_queries_do_not_grow_with_the_subtree(client, tree):
    def count() -> int:
        client.force_login(tree.city_supervisor)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(DASHBOARD)).status_code == 200
        return len(queries)

    submit(tree)
    few = count()
    for region in ("440105", "440111", "440105"):
        case = submit(tree, region=region)
        overdue(case)
    case_in(tree, CaseState.CLOSED)
    services.case_escalate(case=submit(tree), actor=tree.handler, reason="manual")
    refresh_dashboard_rollup()
    many = count()
    assert few == many
    # and the dashboard itself is a fixed handful: the rollup's run, the organisations,
    # three sums over the rollup's rows of the root and its children, the live overdue list
    supervisor = fresh(tree.city_supervisor)
    with CaptureQueriesContext(connection) as queries:
        selectors.dashboard(tree.city, weeks=12, now=timezone.now())
    assert len(queries) == 6
    assert selectors.supervised_paths(supervisor) == [tree.city.path]


# --- the audit view ---------------------------------------------------------------------------


def test_audit_shows_stages_breaches_and_a_verified_chain(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    overdue(case)
    client.force_login(tree.city_supervisor)
    response = client.get(audit_url(case))
    assert response.status_code == 200
    spans = [row["span"] for row in response.context["spans"]]
    assert [s.state for s in spans] == ["submitted", "accepted", "verifying", "coordinating"]
    assert spans[-1].ended_at is None and spans[-1].overdue_now and spans[-1].breached
    assert not any(s.breached for s in spans[:-1])
    assert response.context["chain_break"] is None
    assert response.context["event_count"] == CaseEvent.objects.filter(case=case).count()
    assert DESCRIPTION not in response.content.decode()


def test_audit_marks_sla_escalations(client, tree):
    case = submit(tree)
    overdue(case)
    services.sla_sweep(now=timezone.now())
    client.force_login(tree.city_supervisor)
    response = client.get(audit_url(case))
    breaches = [row for row in response.context["events"] if row["breach"]]
    assert len(breaches) == 1 and breaches[0]["event"].kind == "escalated"
    assert response.context["spans"][0]["span"].breach_seqs == [breaches[0]["event"].seq]


def test_audit_reports_a_broken_chain(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    # the recorded head no longer matches the events (as if the last events were removed)
    Case.objects.filter(pk=case.pk).update(last_event_hash="0" * 64)
    client.force_login(tree.province_supervisor)
    response = client.get(audit_url(case))
    assert response.status_code == 200
    broken = response.context["chain_break"]
    assert broken is not None and broken.seq == case.last_event_seq
    assert 'role="alert"' in response.content.decode()


def test_audit_is_for_supervisors_above_the_case(client, tree):
    case = submit(tree)
    for person in (tree.handler, tree.youth, tree.partner_staff, tree.baiyun_handler):
        client.force_login(person)
        assert client.get(audit_url(case)).status_code == 404
    other = submit(tree, region="440300")
    client.force_login(tree.city_supervisor)
    assert client.get(audit_url(other)).status_code == 404
    assert client.get(reverse("casework:supervisor_audit", args=["YV-NONE"])).status_code == 404


# --- CSV exports ------------------------------------------------------------------------------


def test_csv_exports_hold_the_cases_in_view_and_no_personal_data(client, tree):
    mine = case_in(tree, CaseState.ACCEPTED, title="张三的学业困难")
    services.case_comment(case=mine, actor=tree.handler, body="家长电话13800000000")
    elsewhere = submit(tree, region="440300")
    client.force_login(tree.city_supervisor)

    response = client.get(reverse("casework:supervisor_export_cases"))
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert [row["reference"] for row in rows] == [mine.reference]
    assert rows[0]["state"] == "accepted" and rows[0]["category"] == "study"

    response = client.get(reverse("casework:supervisor_export_timelines"))
    events = read_csv(response)
    assert [int(e["seq"]) for e in events] == list(range(1, mine.last_event_seq + 2))
    assert {e["reference"] for e in events} == {mine.reference}
    assert events[0]["kind"] == "submitted" and events[0]["actor_id"] == str(tree.youth.pk)

    everything = b"".join(
        b"".join(client.get(reverse(name)).streaming_content)
        for name in ("casework:supervisor_export_cases", "casework:supervisor_export_timelines")
    ).decode()
    for personal in (
        "张三",
        mine.title,
        DESCRIPTION,
        "13800000000",
        tree.youth.username,
        tree.youth.display_name,
        elsewhere.reference,
    ):
        assert personal not in everything

    # the filter of the dashboard applies: another category is empty
    response = client.get(
        reverse("casework:supervisor_export_cases"), {"category": tree.category("legal").pk}
    )
    assert read_csv(response) == []


# --- chart geometry -----------------------------------------------------------------------------


def test_bar_chart_scales_to_the_largest_value():
    chart = bar_chart([("a", 5), ("b", 10), ("c", 0)], width=100)
    assert [bar.width for bar in chart["bars"]] == [50, 100, 0]
    assert [bar.y for bar in chart["bars"]] == [0, 26, 52]
    assert bar_chart([])["bars"] == []


def test_line_chart_points():
    chart = line_chart(["w1", "w2", "w3"], {"s": [0, 5, 10]}, width=100, height=50)
    assert chart["lines"][0]["points"] == "0,50 50,25 100,0"
    assert chart["top"] == 10
    empty = line_chart([], {"s": []})
    assert empty["lines"][0]["points"] == ""
