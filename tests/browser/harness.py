"""Helpers of the browser tests (the fixtures are in conftest.py).

- ``zh(text)``: the Chinese of an English message id, to find a button by its label;
- ``login(page, username)``: sign in through the login page;
- ``shot(page, name)``: a screenshot to ``docs/screenshots/<name>.png``, only when
  ``SCREENSHOTS=1`` (so ordinary runs never touch the tree);
- ``assert_fits(page)``: nothing is wider than the phone's screen;
- ``submit(page, form_selector)``: press a form's submit button and wait for the answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home from a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
PASSWORD = "pass-1234"  # tests.factories.UserFactory's password
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# A page must answer well within this; a hung page fails the test instead of CI.
TIMEOUT_MS = 15_000


def zh(message: str) -> str:
    """The zh-Hans translation of an English message id (the site's default language)."""
    with translation.override("zh-hans"):
        return translation.gettext(message)


def login(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login page, as a person would."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    submit(page, "form[action='/accounts/login/']")
    assert "/accounts/login/" not in page.url, f"login as {username} failed"


def submit(page, form: str, button: str = "button[type=submit]") -> None:
    """Press the submit button of the form matching ``form`` and wait for the next page."""
    with page.expect_navigation():
        page.locator(form).locator(button).first.click()


def screenshots_wanted() -> bool:
    return os.environ.get("SCREENSHOTS", "") not in ("", "0")


def shot(page, name: str, *, full_page: bool = False, top: bool = False) -> Path | None:
    """Save ``docs/screenshots/<name>.png`` when SCREENSHOTS=1; otherwise do nothing.

    The phone's screen as it is (``top``: scrolled to the top first; ``full_page``: all of it).
    """
    if not screenshots_wanted():
        return None
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    if top:
        page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    # A 256-colour palette keeps the committed images small (apt-get install pngquant).
    pngquant = shutil.which("pngquant")
    if pngquant:
        command = [pngquant, "--force", "--skip-if-larger", "--quality", "65-90"]
        subprocess.run([*command, "--output", str(path), str(path)], check=False)
    return path


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: it fits)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def assert_fits(page) -> None:
    """Nothing overflows the phone's width (names the widest culprits when something does)."""
    extra = overflow(page)
    if extra > 0:
        culprits = page.evaluate(
            """() => {
                const w = document.documentElement.clientWidth;
                return [...document.querySelectorAll('body *')]
                  .filter(e => e.getBoundingClientRect().right > w + 1)
                  .slice(0, 5)
                  .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
            }"""
        )
        pytest.fail(f"{page.url} is {extra}px wider than the phone: {culprits}", pytrace=False)
