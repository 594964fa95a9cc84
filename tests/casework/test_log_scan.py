"""No personal data in application logs, error reports or messages to partner bodies.

The whole story of a minor's case runs with every logger at DEBUG (SQL too),
Celery eager, every notification delivered (in-app, e-mail, SMS); then every
captured log line, printed line, e-mail to a partner and error report is
scanned for the seeded personal values.
"""

from __future__ import annotations

import logging
import sys

import pytest
from celery import current_app
from django.core import mail
from django.db import connection
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from notifications.models import InboxItem, Preference
from tests.casework.privacy_story import SECRETS, run_story

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


@pytest.fixture
def everything_at_debug(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.db.backends", "django.request", "celery", "casework"):
        caplog.set_level(logging.DEBUG, logger=name)
    before = connection.force_debug_cursor
    connection.force_debug_cursor = True  # SQL statements and their parameters are logged
    yield caplog
    connection.force_debug_cursor = before


def leaks(text: str) -> list[str]:
    return sorted(name for name, value in SECRETS.items() if value in text)


def test_the_whole_story_logs_no_personal_value(
    tree, client, settings, eager, everything_at_debug, capsys, django_capture_on_commit_callbacks
):
    # given every channel on: partner staff and handler by e-mail and SMS too
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.sms.ConsoleSMSBackend"
    for person in (tree.partner_staff, tree.handler, tree.youth):
        person.email = f"{person.username}@example.org"
        person.phone = "13700000000"
        person.save()
        Preference.objects.update_or_create(user=person, defaults={"email": True, "sms": True})
    # when the story runs, pages included, with every on-commit delivery executed
    with django_capture_on_commit_callbacks(execute=True):
        case = run_story(tree, client)
    # then the logs are really there (SQL, services) ...
    records = everything_at_debug.records
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {getattr(r, 'sql', '')}" for r in records
    )
    assert any(r.name == "django.db.backends" for r in records)
    assert case.reference in text or str(case.pk) in text
    # ... and hold none of the personal values
    assert leaks(text) == []
    printed = capsys.readouterr()
    assert leaks(printed.out + printed.err) == []
    # and what partner bodies were sent carries none either
    to_partner = [m for m in mail.outbox if tree.partner_staff.email in m.to]
    assert to_partner, "the partner body was notified by e-mail"
    assert leaks("\n".join(f"{m.subject}\n{m.body}" for m in to_partner)) == []
    partner_inbox = InboxItem.objects.filter(user=tree.partner_staff)
    assert partner_inbox.exists()
    assert leaks("\n".join(f"{i.subject}\n{i.body}" for i in partner_inbox)) == []
    # (nor what staff are sent: messages name the case, the youth reads her words on the site)
    assert leaks("\n".join(f"{m.subject}\n{m.body}" for m in mail.outbox)) == []


def test_an_error_report_shows_no_form_data_or_local_values(settings):
    # given a request whose form and whose failing frame hold a youth's words
    request = RequestFactory().post(
        "/youth/ask/", {"description": SECRETS["description"], "phone": SECRETS["phone"]}
    )
    description = SECRETS["description"]  # a local variable in the failing frame
    try:
        raise ValueError("boom")
    except ValueError:
        report = ExceptionReporter(request, *sys.exc_info())
        text = report.get_traceback_text() + report.get_traceback_html()
    # then the report (what admins are e-mailed, what logs keep) has neither
    assert "boom" in text and "description" in text
    assert description not in text
    assert leaks(text) == []
