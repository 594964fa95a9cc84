"""Story 1 in a real browser, through the pages only.

A youth asks for help; the district handler accepts it and sends it to a service
station; the station's verifier confirms the facts; the handler refers a task to
the education bureau, which reports it done; the handler records the outcome and
tells the youth, who rates it. A supervisor's audit view shows the hash chain
verified, and an anonymous visitor's public page shows none of the youth's
personal data. Only the organisation tree and the accounts are seeded.
"""

from __future__ import annotations

import re

import pytest

from casework.models import Case, User

from .harness import assert_fits, shot, submit, zh

NAME = "陈晓雨"
PHONE = "13912345678"
EMAIL = "xiaoyu.chen@example.cn"
TITLE = "实习单位拖欠实习补贴"
DESCRIPTION = "我在海珠区一家公司实习三个月，公司一直没有发放约定的实习补贴，联系人电话也打不通。"


@pytest.fixture
def youth(tree) -> User:
    """The tree's youth, with the personal data that must never reach a public page."""
    user = tree.youth
    user.display_name, user.phone, user.email = NAME, PHONE, EMAIL
    user.save()
    return user


def open_action(page, name: str) -> str:
    """Unfold one action of the workbench case page; return its form's selector."""
    page.click(f"#action-{name} summary")
    return f"#action-{name} form"


def test_youth_request_is_verified_coordinated_resolved_rated_and_audited(open_page, tree, youth):
    # --- the youth asks for help: the empty form first, with its errors --------------------
    me = open_page(youth.username)
    me.goto("/")
    assert me.url.endswith("/my/")
    shot(me, "youth-home")
    me.goto("/my/new/")
    submit(me, "#request-form", "button.btn--primary")
    assert me.locator("#form-errors").is_visible()
    assert me.locator(".errorlist").count() >= 3  # category, title, description at least
    assert_fits(me)
    shot(me, "youth-new-request-errors")

    me.select_option("#id_category", label="就业与实习")
    # the region picker: choosing the city loads its districts (static/js/request-form.js)
    me.select_option("#id_city", value="440100")
    me.select_option("#id_district", value="440105")
    me.fill("#id_title", TITLE)
    me.fill("#id_description", DESCRIPTION)
    me.check("input[name=urgency][value=high]")
    submit(me, "#request-form", "button.btn--primary")
    match = re.search(r"/my/cases/([A-Z0-9-]+)/$", me.url)
    assert match, me.url
    reference = match.group(1)
    case = Case.objects.get(reference=reference)
    assert case.youth == youth and case.org == tree.haizhu
    assert DESCRIPTION in me.inner_text("main")
    public_url = me.get_attribute("a[href^='/p/']", "href")
    assert_fits(me)
    shot(me, "youth-case")

    # --- the district handler finds it in the inbox, accepts it, sends it to the station ---
    handler = open_page(tree.handler.username)
    handler.goto("/tasks/")
    assert_fits(handler)
    shot(handler, "workbench-inbox")
    handler.click(f"a[href='/work/cases/{reference}/']")
    assert DESCRIPTION in handler.inner_text("main")
    submit(handler, open_action(handler, "accept"))
    assert Case.objects.get(pk=case.pk).state == "accepted"
    form = open_action(handler, "schedule")
    handler.select_option("#id_schedule-station", label=tree.station.name)
    assert_fits(handler)
    shot(handler, "workbench-case-actions")
    submit(handler, form)
    assert Case.objects.get(pk=case.pk).station == tree.station

    # --- the station's verifier confirms the facts ------------------------------------------
    verifier = open_page(tree.verifier.username)
    verifier.goto("/tasks/")
    verifier.click(f"a[href='/work/cases/{reference}/']")
    form = open_action(verifier, "record")
    verifier.check("input[name=record-confirmed][value=yes]")
    verifier.fill("#id_record-findings", "已与青年及公司人事核实：补贴确未发放。")
    submit(verifier, form)
    assert Case.objects.get(pk=case.pk).state == "coordinating"

    # --- the handler refers a task to the education bureau, which reports it done ------------
    handler.goto(f"/work/cases/{reference}/")
    form = open_action(handler, "refer")
    handler.select_option("#id_refer-partner", label=tree.partner.name)
    handler.fill("#id_refer-instructions", "请督促实习单位按协议发放补贴。")
    submit(handler, form)
    assert case.coordination_tasks.get().partner == tree.partner

    partner = open_page(tree.partner_staff.username)
    partner.goto("/work/coordination/")
    assert DESCRIPTION not in partner.inner_text("main")  # partners never see the youth's words
    assert_fits(partner)
    shot(partner, "workbench-coordination")
    partner.fill("textarea[name$='-result']", "已约谈实习单位，补贴将于本周发放。")
    submit(partner, "form[action*='/complete/']")
    assert case.coordination_tasks.get().status == "done"

    # --- the handler records the outcome and tells the youth --------------------------------
    handler.goto(f"/work/cases/{reference}/")
    form = open_action(handler, "resolve")
    handler.select_option("#id_resolve-outcome", value="solved")
    handler.fill("#id_resolve-note", "补贴已发放。")
    submit(handler, form)
    form = open_action(handler, "give_feedback")
    handler.fill("#id_give_feedback-message", "你好，公司已发放全部实习补贴，请查收。")
    submit(handler, form)
    assert Case.objects.get(pk=case.pk).state == "feedback_given"

    # --- the youth is told, and rates ----------------------------------------------------------
    me.goto("/notifications/")
    assert me.locator("main li, main tr").count() > 0
    assert_fits(me)
    shot(me, "youth-notifications")
    me.goto(f"/my/cases/{reference}/")
    me.click(f"a[href='/my/cases/{reference}/rate/']")
    for stars in ("timeliness", "attitude", "outcome"):
        me.check(f"input[name={stars}][value='5']")
    me.check("input[name=solved][value=solved]")
    me.fill("#id_comment", "处理很及时，谢谢！")
    assert_fits(me)
    shot(me, "youth-rate", top=True)
    submit(me, f"form[action='/my/cases/{reference}/rate/']")
    assert Case.objects.get(pk=case.pk).state == "closed"
    me.goto("/my/")
    assert reference in me.inner_text("main")
    assert_fits(me)
    shot(me, "youth-my-cases")

    # --- a supervisor sees the timeline verified ---------------------------------------------
    supervisor = open_page(tree.city_supervisor.username)
    supervisor.goto("/")
    assert supervisor.url.endswith("/supervise/")
    assert_fits(supervisor)
    shot(supervisor, "supervisor-dashboard")
    supervisor.goto(f"/supervise/cases/{reference}/audit/")
    verdict = supervisor.locator(".chain--ok")
    assert verdict.is_visible()
    assert zh("Verified") in verdict.inner_text()
    assert supervisor.locator(".chain--broken").count() == 0
    assert_fits(supervisor)
    shot(supervisor, "supervisor-audit")

    # --- an anonymous visitor: progress, but nothing personal --------------------------------
    visitor = open_page()
    response = visitor.goto(public_url)
    assert response.status == 200
    assert visitor.get_attribute("meta[name=robots]", "content").startswith("noindex")
    assert visitor.get_attribute("meta[name=referrer]", "content") == "no-referrer"
    text = visitor.content()
    for secret in (NAME, PHONE, EMAIL, DESCRIPTION, youth.username):
        assert secret not in text
    assert reference in text
    assert_fits(visitor)
    shot(visitor, "public-progress")
    visitor.goto("/stats/")
    assert_fits(visitor)
    shot(visitor, "public-stats")
