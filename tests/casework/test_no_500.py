"""No page answers 500, whatever a form or a query string is given.

Every scenario signs someone in, opens the form pages of one step of the main
flows, finds every POST form on each page (by parsing the HTML, so a new form
is covered without touching this file) and submits hostile and edge values:
empty, NUL, very long, emoji, markup, SQL, numbers out of any range, wrong types,
lists where one value is expected. Hidden fields (the case version) are kept,
so that the services behind the forms are reached too, and once replaced. The
answer must be below 500. The GET pages with filters get the same values in
their query strings.
"""

from __future__ import annotations

import datetime
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from casework import services
from casework.models import CoordinationTask
from casework.states import CaseState
from tests.factories import UserFactory
from workflows.models import OPEN_TASK_STATUSES, CaseTask

from .steps import case_in

pytestmark = pytest.mark.django_db

HOSTILE = [
    "",
    "\x00",
    "x" * 6_000,  # above every field's limit
    "😀<script>alert(1)</script>' OR 1=1 --\u202e",
    "9" * 40,  # no integer, date or id is that long
    ["1", "2"],  # several values for one field
]
# Also sent in place of the hidden fields (the case version), the rest kept.
HIDDEN_HOSTILE = ["-1"]
# Forms whose submission ends the session or the account of the person testing.
SKIP_ACTIONS = ("/accounts/logout/",)


class Forms(HTMLParser):
    """The POST forms of a page: action and field names, with the values the page gave."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._form = {"action": attrs.get("action") or "", "fields": {}, "hidden": set()}
            self._form["multipart"] = "multipart" in (attrs.get("enctype") or "")
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "select", "textarea", "button"):
            name = attrs.get("name")
            if not name or name == "csrfmiddlewaretoken":
                return
            self._form["fields"].setdefault(name, attrs.get("value") or "")
            if attrs.get("type") == "hidden":
                self._form["hidden"].add(name)
            if attrs.get("type") == "file":
                self._form.setdefault("files", set()).add(name)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def forms_on(client: Client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code < 500, f"GET {url}: {response.status_code}"
    if response.status_code != 200:
        return []
    parser = Forms()
    parser.feed(response.content.decode())
    return [f for f in parser.forms if not f["action"].startswith(SKIP_ACTIONS)]


def payloads(form: dict):
    names = list(form["fields"])
    files = form.get("files", set())

    def fill(value, hidden_value=None):
        data = {}
        for name in names:
            if name in files:
                data[name] = SimpleUploadedFile("x.png", b"\x89PNG" + b"\x00" * 50)
            elif name in form["hidden"]:
                data[name] = form["fields"][name] if hidden_value is None else hidden_value
            else:
                data[name] = value
        return data

    for value in HOSTILE:
        yield fill(value)
    for value in HIDDEN_HOSTILE:
        yield fill("1", hidden_value=value)
    yield {}  # nothing at all


def hammer(client: Client, url: str, *, only: str = "", seen: set | None = None) -> int:
    """Submit hostile values to the POST forms of the page at ``url``; return the posts made.

    ``only``: just the forms whose action contains it. ``seen``: actions already
    done in this test (the language switch is on every page), skipped.
    """
    posts = 0
    seen = set() if seen is None else seen
    for form in forms_on(client, url):
        action = form["action"] or url
        if (only and only not in action) or action in seen:
            continue
        seen.add(action)
        for data in payloads(form):
            response = client.post(action, data)
            posts += 1
            assert response.status_code < 500, (
                f"POST {action} from {url}: {response.status_code} with "
                f"{ {k: str(v)[:40] for k, v in data.items()} }"
            )
    return posts


def query_hammer(client: Client, url: str, params: list[str]) -> None:
    for value in HOSTILE:
        query = urlencode({p: value for p in params}, doseq=True)
        response = client.get(f"{url}?{query}")
        assert response.status_code < 500, f"GET {url}?{query[:80]}: {response.status_code}"


def signed_in(user) -> Client:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


# --- scenarios ------------------------------------------------------------------------------


def test_anonymous_forms(tree):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    case = case_in(tree, CaseState.ACCEPTED)
    assert hammer(client, "/register/") > 0
    assert hammer(client, "/accounts/login/") > 0
    hammer(client, f"/p/{case.public_token}/")
    query_hammer(client, "/stats/", ["region", "category"])


@pytest.mark.parametrize(
    ("state", "actions"),
    [
        (CaseState.AWAITING_YOUTH, ("answer", "withdraw", "complain")),
        (CaseState.REJECTED, ("appeal",)),
        (CaseState.FEEDBACK_GIVEN, ("rate", "dispute")),
        (CaseState.CLOSED, ("rerate",)),
    ],
)
def test_youth_action_forms(tree, state, actions):
    case = case_in(tree, state)
    client = signed_in(tree.youth)
    seen = set()
    hammer(client, f"/my/cases/{case.reference}/", seen=seen)
    for action in actions:
        assert hammer(client, f"/my/cases/{case.reference}/{action}/", seen=seen) > 0


def test_youth_request_and_inbox_forms(tree):
    client = signed_in(tree.youth)
    assert hammer(client, "/my/new/") > 0
    hammer(client, "/notifications/preferences/")
    case_in(tree, CaseState.ACCEPTED)  # something in the inbox
    hammer(client, "/notifications/")
    query_hammer(client, "/my/", ["page"])
    query_hammer(client, "/notifications/", ["page", "unread"])
    query_hammer(client, "/my/regions/", ["parent"])
    query_hammer(client, "/my/organisations/", ["q", "category"])


def test_young_youth_consent_and_birth_date_forms(tree):
    today = datetime.date.today()
    young = UserFactory(username="xiaoming", region_code="440105")
    young.birth_date = today.replace(year=today.year - 12)
    young.save()
    hammer(signed_in(young), "/my/new/consent/")
    unknown = UserFactory(username="no_birth_date", region_code="440105")
    hammer(signed_in(unknown), "/my/new/birth-date/")


def test_report_form(tree):
    case = case_in(tree, CaseState.ACCEPTED)
    assert hammer(signed_in(tree.other_youth), f"/p/{case.public_token}/report/") > 0


@pytest.mark.parametrize(
    ("state", "who", "only"),
    [
        (CaseState.SUBMITTED, ("handler", "city_supervisor"), ""),  # routing, reassign, pull up
        (CaseState.ACCEPTED, ("handler",), "/schedule/"),
        (CaseState.VERIFYING, ("verifier",), ""),
        (CaseState.COORDINATING, ("handler",), ""),  # refer, coordination tasks, evidence
        (CaseState.RESOLVED, ("handler",), "/give_feedback/"),
    ],
)
def test_workbench_case_forms(tree, state, who, only):
    case = case_in(tree, state)
    if state == CaseState.COORDINATING:
        services.case_refer(
            case=case, actor=tree.handler, partner=tree.partner, instructions="请协助"
        )
    seen = set()
    for name in who:
        client = signed_in(getattr(tree, name))
        assert hammer(client, f"/work/cases/{case.reference}/", only=only, seen=seen) > 0
    task = CaseTask.objects.filter(case=case, status__in=OPEN_TASK_STATUSES).first()
    if task is not None and state == CaseState.SUBMITTED:
        hammer(signed_in(tree.handler), f"/tasks/{task.pk}/", seen=seen)


def test_partner_coordination_forms(tree):
    case = case_in(tree, CaseState.COORDINATING)
    services.case_refer(case=case, actor=tree.handler, partner=tree.partner, instructions="请协助")
    assert CoordinationTask.objects.filter(case=case).exists()
    assert hammer(signed_in(tree.partner_staff), "/work/coordination/") > 0


def test_filters_and_exports(tree):
    case_in(tree, CaseState.ACCEPTED)
    handler = signed_in(tree.handler)
    query_hammer(handler, "/tasks/", ["stage", "category", "overdue", "q", "page"])
    query_hammer(handler, "/cases/", ["state", "page"])
    supervisor = signed_in(tree.city_supervisor)
    params = ["root", "since", "until", "category", "state", "page", "org"]
    query_hammer(supervisor, "/supervise/", params)
    query_hammer(supervisor, "/supervise/export/cases.csv", params)
    query_hammer(supervisor, "/supervise/export/timelines.csv", params)


def test_privacy_forms(tree):
    case_in(tree, CaseState.ACCEPTED)
    hammer(signed_in(tree.youth), "/my/data/")
