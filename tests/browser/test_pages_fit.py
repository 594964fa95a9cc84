"""The harness itself, and the public pages at a phone's width."""

from .harness import assert_fits, login, shot, zh


def test_login_page_signs_in_in_chinese_at_phone_width(open_page, tree):
    page = open_page()
    page.goto("/accounts/login/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("h1").inner_text() == zh("Log in")
    assert_fits(page)
    shot(page, "login")

    login(page, tree.handler.username)
    assert page.locator("form[action='/accounts/logout/']").count() == 1
