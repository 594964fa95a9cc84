"""The Django admin and the first pages, on the seeded demo."""

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from casework.models import Case, CaseEvent, Organisation, User
from casework.views.cases import CASES_PER_PAGE

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo, seeded once for this module inside a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        yield
        transaction.set_rollback(True)


def login(client, username):
    client.force_login(User.objects.get(username=username))
    return client


def casework_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "casework"
    ]


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_casework_admin_page_opens_for_a_superuser(seeded, client):
    # given the superuser of the demo
    login(client, "admin")
    registered = {model for model, _ in casework_admins()}
    assert {Organisation, Case, CaseEvent, User} <= registered
    for model in registered:
        # when the changelist and one object's page are opened, then both render
        assert client.get(admin_url(model, "changelist")).status_code == 200, model
        obj = model.objects.order_by("pk").first()
        assert obj is not None, model
        assert client.get(admin_url(model, "change", obj.pk)).status_code == 200, model
    assert client.get(admin_url(Organisation, "add")).status_code == 200
    assert client.get(admin_url(Case, "changelist"), {"state": "closed"}).status_code == 200


def test_cases_and_their_timeline_cannot_be_written_in_the_admin(seeded, client):
    login(client, "admin")
    case = Case.objects.filter(state="submitted").first()
    event = CaseEvent.objects.first()
    assert client.get(admin_url(Case, "add")).status_code == 403
    assert client.get(admin_url(CaseEvent, "add")).status_code == 403
    assert client.post(admin_url(Case, "delete", case.pk), {"post": "yes"}).status_code == 403
    assert client.post(admin_url(CaseEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    # a forged change form is refused and the case stays as it was
    response = client.post(admin_url(Case, "change", case.pk), {"state": "closed"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.state == "submitted"
    page = client.get(admin_url(Case, "change", case.pk)).content.decode()
    form = page.split('id="case_form"', 1)[1]
    assert 'name="state"' not in form and 'type="submit"' not in form


def test_case_list_shows_the_handlers_cases_and_not_another_districts(seeded, client):
    # given 刘老师, handler at 海珠区团委
    login(client, "liu_laoshi")
    own = Case.objects.filter(org__name="海珠区团委")
    elsewhere = Case.objects.filter(org__kind="league", org__level=3).exclude(
        org__name="海珠区团委"
    )
    assert own.exists() and elsewhere.exists()
    # when the case list is opened
    response = client.get(reverse("casework:case_list"))
    # then it shows Haizhu's cases (the bullying story among them) and no other district's
    assert response.status_code == 200
    page = response.content.decode()
    for case in own:
        assert case.reference in page
    for case in elsewhere:
        assert case.reference not in page
    assert Case.objects.get(youth__username="chen_xiaoyu").reference in page
    assert response.context["page"].paginator.per_page == CASES_PER_PAGE


def test_supervisor_sees_the_whole_city_and_can_filter_by_state(seeded, client):
    login(client, "zhou_shuji")
    response = client.get(reverse("casework:case_list"))
    total = Case.objects.filter(
        org__path__startswith=Organisation.objects.get(name="共青团广州市委员会").path
    ).count()
    assert response.context["page"].paginator.count == total
    closed = client.get(reverse("casework:case_list"), {"state": "closed"})
    rows = [case for case, _ in closed.context["rows"]]
    assert rows and all(case.state == "closed" for case in rows)
    # an unknown state is ignored, not an error
    bogus = client.get(reverse("casework:case_list"), {"state": "nonsense", "page": "x"})
    assert bogus.status_code == 200
    assert bogus.context["page"].paginator.count == total


def test_case_list_needs_a_login(client):
    response = client.get(reverse("casework:case_list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_case_detail_shows_the_timeline_to_the_handler(seeded, client):
    case = Case.objects.get(youth__username="chen_xiaoyu")
    login(client, "liu_laoshi")
    response = client.get(reverse("casework:case_detail", args=[case.reference]))
    assert response.status_code == 200
    events = response.context["events"]
    assert len(events) == case.events.count()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    page = response.content.decode()
    assert "刘老师" in page and "林社工" in page
    # and to the youth whose case it is
    login(client, "chen_xiaoyu")
    assert client.get(reverse("casework:case_detail", args=[case.reference])).status_code == 200


def test_case_detail_is_404_for_an_unrelated_user(seeded, client):
    case = Case.objects.get(youth__username="chen_xiaoyu")
    url = reverse("casework:case_detail", args=[case.reference])
    # another youth, another district's handler, a verifier of another station
    for stranger in ("li_ming", "baiyun_handler", "huang_shegong"):
        login(client, stranger)
        assert client.get(url).status_code == 404, stranger
    login(client, "liu_laoshi")
    assert client.get(reverse("casework:case_detail", args=["YV-NOSUCH00"])).status_code == 404


def test_language_switch_sets_english(seeded, client):
    login(client, "liu_laoshi")
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("casework:case_list")}
    )
    assert response.status_code == 302
    page = client.get(reverse("casework:case_list")).content.decode()
    assert '<html lang="en">' in page


def test_case_list_costs_the_same_queries_for_few_or_many_rows(seeded, client):
    def queries_for(username):
        login(client, username)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse("casework:case_list"))
        return len(response.context["rows"]), len(ctx)

    few_rows, few_queries = queries_for("liu_laoshi")
    many_rows, many_queries = queries_for("province_inspector")
    assert many_rows > few_rows
    assert many_queries == few_queries


@pytest.mark.parametrize(
    ("who", "landing"),
    [
        ("youth", "/my/"),
        ("handler", "/work/"),
        ("verifier", "/work/"),
        ("partner_staff", "/work/"),
        ("city_supervisor", "/supervise/"),
    ],
)
def test_home_sends_each_person_to_their_work(tree, client, who, landing):
    client.force_login(getattr(tree, who))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == landing


def test_home_sends_anonymous_visitors_to_the_public_statistics(db, client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/stats/"
