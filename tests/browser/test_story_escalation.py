"""Story 2 in a real browser: an SLA breach escalates a case, and the level above handles it.

The youth asks for help and the district lets the deadline pass. The real SLA
sweep (``casework.services.sla_sweep``) runs with its clock moved past the
deadline, as Celery beat would run it then; it escalates the case to the city.
The city's handler finds it in their inbox, accepts it and delegates it to a
branch with a reason; the district no longer sees it, the branch does, and the
supervisor's audit view marks the missed deadline.
"""

from __future__ import annotations

import re
from datetime import timedelta

from casework import services
from casework.models import Case

from .harness import assert_fits, shot, submit, zh
from .test_story_case import open_action


def inbox_references(page) -> str:
    page.goto("/tasks/")
    return page.inner_text("main table")


def test_sla_breach_escalates_to_the_city_which_handles_it_through_the_pages(open_page, tree):
    # the youth asks for help; the case lands at the district
    me = open_page(tree.youth.username)
    me.goto("/my/new/")
    me.select_option("#id_category", label="困难帮扶")
    # the form opens on the youth's own district (its choices drawn by the server)
    assert me.input_value("#id_district") == "440105"
    me.fill("#id_title", "家庭困难需要助学帮扶")
    me.fill("#id_description", "父亲生病住院，下学期学费没有着落，希望了解助学金申请。")
    submit(me, "#request-form", "button.btn--primary")
    reference = re.search(r"/my/cases/([A-Z0-9-]+)/$", me.url).group(1)
    case = Case.objects.get(reference=reference)
    assert case.org == tree.haizhu and case.state == "submitted"

    district = open_page(tree.handler.username)
    assert reference in inbox_references(district)
    city = open_page(tree.city_handler.username)
    assert reference not in inbox_references(city)

    # nobody at the district acts; the sweep runs after the deadline has passed
    result = services.sla_sweep(now=case.stage_due_at + timedelta(minutes=1))
    assert result.escalated == 1
    case.refresh_from_db()
    assert case.org == tree.city and case.escalation_count == 1

    # the district's inbox no longer has it; the city's does
    assert reference not in inbox_references(district)
    assert reference in inbox_references(city)
    city.click(f"a[href='/work/cases/{reference}/']")
    assert zh("Escalated") in city.inner_text("main .timeline")
    assert_fits(city)

    # the city accepts it and delegates it to a branch, with a reason
    submit(city, open_action(city, "accept"))
    form = open_action(city, "delegate")
    city.select_option("#id_delegate-to_org", label=tree.haizhu_branch.name)
    city.fill("#id_delegate-reason", "由街道团工委就近联系学校资助中心。")
    submit(city, form)
    case.refresh_from_db()
    assert case.state == "accepted" and case.org == tree.haizhu_branch

    branch = open_page(tree.branch_handler.username)
    assert reference in inbox_references(branch)
    assert reference not in inbox_references(city)

    # the youth's case page tells what happened in plain words
    me.goto(f"/my/cases/{reference}/")
    assert tree.haizhu_branch.name in me.inner_text("main")

    # the supervisor's audit view marks the missed deadline, and the chain is intact
    supervisor = open_page(tree.city_supervisor.username)
    supervisor.goto(f"/supervise/cases/{reference}/audit/")
    assert supervisor.locator(".chain--ok").is_visible()
    assert supervisor.locator("tr.breach").count() >= 1
    assert zh("deadline missed") in supervisor.inner_text("main")
    assert_fits(supervisor)
    shot(supervisor, "supervisor-audit-breach")
