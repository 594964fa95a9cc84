"""Every main page at a phone's width: nothing wider than the screen, every form control
labelled, and the keyboard reaches the content (WCAG 2.1 basics: 1.3.1, 1.4.10, 2.1.1,
2.4.1, 2.4.7, 4.1.2). The cases here are made by the services; the stories use the pages."""

from __future__ import annotations

import pytest

from casework import services
from casework.states import CaseState
from tests.casework.steps import case_in

from .harness import assert_fits, login, shot, zh

# Controls with no accessible name: no <label for>, no wrapping label, no aria-label(ledby).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.offsetParent !== null)
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby') && !e.title)
  .map(e => e.outerHTML.slice(0, 120))"""

# The focused element draws a visible focus indicator (outline or box-shadow).
FOCUS_VISIBLE = """() => {
  const s = getComputedStyle(document.activeElement);
  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
}"""


def check_page(page, url: str) -> None:
    response = page.goto(url)
    assert response.status < 400, f"{url}: {response.status}"
    assert_fits(page)
    assert page.evaluate(UNLABELLED) == [], url
    if page.evaluate("() => document.activeElement !== document.body"):
        # an autofocus field (the login form's username) already holds the focus, in main
        assert page.evaluate("() => !!document.activeElement.closest('main')"), url
        return
    # the first Tab lands on the skip link, visibly; following it moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link", url
    assert page.evaluate(FOCUS_VISIBLE), url
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main", url


def test_login_page_signs_in_in_chinese_at_phone_width(open_page, tree):
    page = open_page()
    page.goto("/accounts/login/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("h1").inner_text() == zh("Log in")
    assert_fits(page)
    shot(page, "login")

    login(page, tree.handler.username)
    assert page.locator("form[action='/accounts/logout/']").count() == 1


@pytest.fixture
def cases(tree):
    """A case waiting at each step that has a page of its own."""
    coordinating = case_in(tree, CaseState.COORDINATING)
    services.case_refer(
        case=coordinating, actor=tree.handler, partner=tree.partner, instructions="请协助核实"
    )
    return {
        "submitted": case_in(tree, CaseState.SUBMITTED),
        "coordinating": coordinating,
        "feedback": case_in(tree, CaseState.FEEDBACK_GIVEN),
        "closed": case_in(tree, CaseState.CLOSED),
    }


def test_main_pages_fit_a_phone_and_are_labelled_and_keyboard_usable(open_page, tree, cases):
    anonymous = open_page()
    for url in ("/accounts/login/", "/register/", "/stats/", f"/p/{cases['closed'].public_token}/"):
        check_page(anonymous, url)

    youth = open_page(tree.youth.username)
    closed, feedback = cases["closed"].reference, cases["feedback"].reference
    for url in (
        "/my/",
        "/my/new/",
        f"/my/cases/{closed}/",
        f"/my/cases/{closed}/rerate/",
        f"/my/cases/{feedback}/rate/",
        f"/my/cases/{feedback}/dispute/",
        f"/my/cases/{feedback}/complain/",
        "/notifications/",
        "/notifications/preferences/",
        "/my/data/",
    ):
        check_page(youth, url)
    shot(youth, "youth-data", top=True)
    youth.goto(f"/my/cases/{closed}/rerate/")
    shot(youth, "youth-rerate")

    reader = open_page(tree.other_youth.username)
    check_page(reader, f"/p/{cases['closed'].public_token}/report/")
    shot(reader, "public-report", top=True)

    handler = open_page(tree.handler.username)
    for url in (
        "/work/",
        "/tasks/",
        f"/work/cases/{cases['submitted'].reference}/",
        f"/work/cases/{cases['coordinating'].reference}/",
        "/cases/",
    ):
        check_page(handler, url)

    partner = open_page(tree.partner_staff.username)
    check_page(partner, "/work/coordination/")

    supervisor = open_page(tree.city_supervisor.username)
    for url in ("/supervise/", f"/supervise/cases/{closed}/audit/"):
        check_page(supervisor, url)
