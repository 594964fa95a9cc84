"""Browser tests: Playwright for Python driving Debian's headless Chromium.

Every test in this folder runs against pytest-django's ``live_server`` with a
transactional database (the categories and regions of the data migrations are
kept by ``serialized_rollback``). No browser is downloaded: the tests use the
Chromium at ``CHROMIUM`` (default ``/usr/bin/chromium``, Debian's ``chromium``
package). Without it, or without the ``playwright`` package, the tests skip on a
developer's machine and fail in CI (``CI=true``).

Fixtures: ``browser`` (a Chromium for the test), ``open_page(username=None)``
(a fresh page with its own cookies, at phone width in zh-Hans, signed in through
the login page when a username is given) and ``page`` (an anonymous one).
Notifications are delivered in-process (eager Celery), as ``make demo`` does.
Helpers (``zh``, ``login``, ``submit``, ``shot``, ``assert_fits``): tests/browser/harness.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

from .harness import CHROMIUM, CHROMIUM_ARGS, IN_CI, PASSWORD, PHONE, TIMEOUT_MS, login

# Playwright's sync API runs an event loop in the test thread; the ORM calls made from
# that thread (seeding, assertions) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Every browser test: a transactional database that keeps the migrations' data."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.django_db(transaction=True, serialized_rollback=True))


def _missing() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(autouse=True)
def _notifications_in_process():
    """Deliver notifications in the server process, as ``make demo`` does (no worker here)."""
    from celery import current_app

    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


@pytest.fixture
def browser():
    """A Chromium for this test.

    Per test, not per session: while Playwright's sync API is running, its event loop
    runs in this thread, and Django then gives the thread's ORM calls a connection of
    their own (asgiref's Local). Started after the test database is set up and stopped
    before it is flushed, the browser leaves those steps to the thread's usual
    connection, which is the one that restores the data migrations' rows.
    """
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            connections.close_all()  # the connections opened while the loop ran


@pytest.fixture
def open_page(browser, live_server):
    """``open_page(username=None)``: a new page with its own cookies, signed in if asked."""
    contexts = []

    def _open(username: str | None = None, *, password: str = PASSWORD):
        context = browser.new_context(
            base_url=live_server.url,
            viewport=PHONE,
            device_scale_factor=1,
            locale="zh-CN",
            extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"},
            timezone_id="Asia/Shanghai",
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        if username:
            login(page, username, password)
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page):
    return open_page()
