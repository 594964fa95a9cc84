"""The supervisor dashboard's rollup: after a refresh it equals the live aggregate."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casework import selectors, services
from casework.models import Case, DashboardRollup, Organisation
from casework.services.dashboard_rollup import period_start, refresh_dashboard_rollup
from casework.states import CaseState
from tests.casework.steps import case_in, submit

pytestmark = pytest.mark.django_db


def overdue(case, hours=5):
    Case.objects.filter(pk=case.pk).update(stage_due_at=timezone.now() - timedelta(hours=hours))


def a_busy_tree(tree):
    """Cases in every kind of state and place: overdue, escalated (by hand and by the sweep),
    finished on time and late, reopened, rejected, old, in another city, another category."""
    overdue(submit(tree))
    case_in(tree, CaseState.VERIFYING)
    case_in(tree, CaseState.CLOSED)
    case_in(tree, CaseState.RESOLVED, category="legal")
    case_in(tree, CaseState.FEEDBACK_GIVEN)
    escalated = submit(tree, region="440111")
    services.case_escalate(case=escalated, actor=tree.baiyun_handler, reason="manual")
    late = case_in(tree, CaseState.COORDINATING)
    overdue(late)
    services.sla_sweep(now=timezone.now())
    late = Case.objects.get(pk=late.pk)
    services.case_resolve(case=late, actor=tree.city_handler, outcome="solved", note="好")
    reopened = case_in(tree, CaseState.CLOSED)
    Case.objects.filter(pk=reopened.pk).update(reopen_count=1)
    case_in(tree, CaseState.REJECTED)
    # submitted long ago: outside the shorter periods, still open or closed since
    old_open = submit(tree)
    old_closed = case_in(tree, CaseState.CLOSED)
    long_ago = timezone.now() - timedelta(weeks=30)
    Case.objects.filter(pk__in=[old_open.pk, old_closed.pk]).update(submitted_at=long_ago)
    Case.objects.filter(pk=old_closed.pk).update(closed_at=long_ago + timedelta(days=3))
    walk_in = submit(tree, region="440300")
    Case.objects.filter(pk=walk_in.pk).update(channel=Case.Channel.WALK_IN)


def figures(stats) -> dict:
    return {
        "open_by_state": stats.open_by_state,
        "open_total": stats.open_total,
        "overdue_total": stats.overdue_total,
        "escalations": (stats.escalations_total, stats.escalations_sla),
        "branches": [
            (b.path, b.total, b.open, b.overdue, b.finished, b.on_time, b.reopened)
            for b in stats.branches
        ],
        "weeks": [str(week) for week in stats.weeks],
        "submitted": stats.submitted_per_week,
        "closed": stats.closed_per_week,
        "escalated": stats.escalations_per_week,
        "channels": list(stats.channels),
    }


def test_the_rollup_equals_the_live_aggregate(tree):
    a_busy_tree(tree)
    result = refresh_dashboard_rollup()
    assert result is not None and result.open_rows and result.week_rows
    run = DashboardRollup.objects.get(pk=1)
    as_of = run.as_of
    checked = 0
    roots = [
        Organisation.objects.get(pk=org.pk)
        for org in (tree.province, tree.city, tree.haizhu, tree.baiyun, tree.other_city)
    ]
    # organisations with children (an all-category row each) and leaves (none) alike
    assert {bool(root.numchild) for root in roots} == {True, False}
    for root in roots:
        for category_id in (None, tree.category("study").pk, tree.category("legal").pk):
            for weeks in (4, 12, 52):
                rolled = selectors.dashboard(
                    root, weeks=weeks, category_id=category_id, now=timezone.now()
                )
                live = selectors.live_dashboard(
                    root,
                    since=period_start(as_of, weeks),
                    now=as_of,
                    category_id=category_id,
                )
                assert rolled.as_of == as_of
                assert figures(rolled) == figures(live), (root.name, category_id, weeks)
                checked += bool(live.open_total or live.branches)
    assert checked > 10  # the comparison saw real numbers, not only zeros
    province = selectors.dashboard(tree.province, weeks=52, now=timezone.now())
    # by hand at Baiyun, and the sweep for the two overdue cases
    assert province.escalations_total == 3 and province.escalations_sla == 2
    assert dict((c, n) for c, n, _ in province.channels)["walk_in"] == 1
    # the case submitted 30 weeks ago counts in the 52-week view only, unless it is open
    four = selectors.dashboard(tree.province, weeks=4, now=timezone.now())
    assert sum(b.total for b in province.branches) == sum(b.total for b in four.branches) + 1


def test_figures_wait_for_the_next_refresh_and_say_when_they_were_taken(client, tree):
    submit(tree)
    client.force_login(tree.city_supervisor)
    body = client.get(reverse("casework:supervisor")).content.decode()
    assert 'id="as-of"' in body
    refresh_dashboard_rollup()
    assert client.get(reverse("casework:supervisor")).context["stats"].open_total == 1
    submit(tree)  # not counted until the rollup is rebuilt
    response = client.get(reverse("casework:supervisor"))
    assert response.context["stats"].open_total == 1
    as_of = timezone.localtime(response.context["stats"].as_of).strftime("%Y-%m-%d %H:%M")
    assert as_of in response.content.decode()
    refresh_dashboard_rollup()
    assert client.get(reverse("casework:supervisor")).context["stats"].open_total == 2


def test_a_supervisor_sees_only_their_subtree(client, tree):
    submit(tree)
    submit(tree, region="440300")  # the other city
    refresh_dashboard_rollup()
    client.force_login(tree.city_supervisor)
    stats = client.get(reverse("casework:supervisor")).context["stats"]
    assert stats.open_total == 1
    assert all(b.path.startswith(tree.city.path) for b in stats.branches)
    # asking for the other city falls back to the own subtree
    response = client.get(reverse("casework:supervisor"), {"org": tree.other_city.pk})
    assert response.context["scope"].root == tree.city
    assert response.context["stats"].open_total == 1
    client.force_login(tree.province_supervisor)
    assert client.get(reverse("casework:supervisor")).context["stats"].open_total == 2


def test_the_page_reads_a_fixed_number_of_queries(client, tree):
    def count(**params) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("casework:supervisor"), params).status_code == 200
        return len(queries)

    client.force_login(tree.province_supervisor)
    submit(tree)
    refresh_dashboard_rollup()
    few = count()
    for _ in range(3):
        overdue(submit(tree, region="440111"))
        case_in(tree, CaseState.CLOSED)
        submit(tree, region="440300")
    refresh_dashboard_rollup()
    assert count() == few
    assert count(org=tree.haizhu.pk, weeks=52) == few


def test_the_command_and_the_task_rebuild_it(tree):
    from django.core.management import call_command

    from casework.tasks import refresh_dashboard_task

    submit(tree)
    call_command("refresh_dashboard")
    first = DashboardRollup.objects.get(pk=1).as_of
    assert refresh_dashboard_task.apply().get() > 0
    assert DashboardRollup.objects.get(pk=1).as_of >= first


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_refresh_running_elsewhere_makes_this_one_a_no_op(tree, django_db_blocker):
    import psycopg2

    from casework.services.dashboard_rollup import ADVISORY_LOCK

    submit(tree)
    settings = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK])
        assert refresh_dashboard_rollup() is None
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK])
        assert refresh_dashboard_rollup() is not None
    finally:
        other.close()
