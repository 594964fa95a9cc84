"""``manage.py seed_demo``: the demo tree, people in every role, and cases in every state."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction

from casework import demo
from casework.models import (
    Case,
    CaseEvent,
    CoordinationTask,
    Membership,
    Organisation,
    Rating,
    Region,
    User,
    Verification,
)
from casework.states import CaseState

pytestmark = pytest.mark.django_db

MODELS = (Organisation, User, Membership, Case, CaseEvent, CoordinationTask, Verification, Rating)


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The demo seeded once for the read-only tests of this module (the seed takes seconds).

    Everything happens inside one transaction that is rolled back after the module;
    each test runs in a savepoint inside it.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed()
        transaction.set_rollback(True)


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def org(name: str) -> Organisation:
    return Organisation.objects.get(name=name)


def case_of(username: str) -> Case:
    return Case.objects.select_related("org").get(youth__username=username)


def test_seeding_twice_leaves_the_same_rows():
    # given a seeded database
    seed()
    first = counts()
    # when the seed runs again
    output = seed()
    # then nothing was added or duplicated
    assert counts() == first
    assert "none added" in output
    assert first["Case"] >= 36  # "a few dozen"


def test_cases_are_spread_over_every_state(seeded):
    states = set(Case.objects.values_list("state", flat=True))
    assert states == set(CaseState.values)


def test_verify_timeline_passes_on_the_seeded_database(seeded):
    out = StringIO()
    call_command("verify_timeline", stdout=out)  # raises CommandError (exit 1) if broken
    assert f"All {Case.objects.count()} case timelines verify" in out.getvalue()


def test_every_case_has_a_real_timeline(seeded):
    for case in Case.objects.all():
        kinds = list(case.events.order_by("seq").values_list("kind", flat=True))
        assert kinds[:2] == ["submitted", "routed"], case
        assert case.last_event_seq == len(kinds)


def test_tree_has_what_the_issue_lists(seeded):
    province = org("共青团广东省委员会")
    assert province.is_root()
    cities = Organisation.objects.get_children(province).filter(level=Organisation.Level.CITY)
    assert cities.count() >= 3
    guangzhou = org("共青团广州市委员会")
    under_gz = Organisation.objects.get_children(guangzhou)
    districts = under_gz.filter(kind="league", level=3, routes_by_region=True)
    assert {"440115", "440105", "440104", "440111"} <= set(
        districts.values_list("region_code", flat=True)
    )
    universities = under_gz.filter(kind="league", level=3, routes_by_region=False)
    assert set(universities.values_list("name", flat=True)) >= {"中山大学团委", "华南师范大学团委"}
    branches = Organisation.objects.filter(kind="league", level=Organisation.Level.BRANCH)
    assert branches.count() >= 2
    stations = Organisation.objects.filter(kind="station")
    assert stations.count() >= 6
    assert all(not s.routes_by_region and s.opening_hours for s in stations)
    assert org("南沙青年之家").opening_hours == {"24h": True}
    partners = set(Organisation.objects.filter(kind="partner").values_list("name", flat=True))
    assert {"海珠区教育局", "白云区人力资源和社会保障局", "越秀区公安分局"} <= partners
    social = Organisation.objects.filter(kind="social")
    assert "12355 青少年服务台" in set(social.values_list("name", flat=True))
    assert social.count() >= 2
    # League organisations handle every category; partner bodies none.
    assert all(o.categories.count() == 8 for o in Organisation.objects.filter(kind="league"))
    assert all(o.categories.count() == 0 for o in Organisation.objects.filter(kind="partner"))


def test_people_of_the_stories_have_their_roles(seeded):

    def has(username, org_name, role):
        return Membership.objects.filter(
            user__username=username, organisation__name=org_name, role=role
        ).exists()

    assert has("liu_laoshi", "海珠区团委", "handler")
    assert has("huang_shegong", "南沙青年之家", "verifier")
    assert has("zhou_shuji", "共青团广州市委员会", "supervisor")
    assert has("province_inspector", "共青团广东省委员会", "supervisor")
    assert has("haizhu_edu", "海珠区教育局", "partner")
    assert set(Membership.objects.values_list("role", flat=True)) == set(Membership.Role.values)
    assert User.objects.get(username="chen_xiaoyu").display_name == "陈小雨"
    assert User.objects.get(username="admin").is_superuser


def test_the_five_stories_are_told(seeded):
    bullying = case_of("chen_xiaoyu")
    assert (bullying.state, bullying.org.name) == ("closed", "海珠区团委")
    assert not bullying.is_public  # safety is a sensitive category
    rating = Rating.objects.get(case=bullying)
    assert (rating.timeliness, rating.attitude, rating.outcome, rating.solved) == (
        5,
        5,
        5,
        "solved",
    )
    assert bullying.coordination_tasks.get().partner.name == "海珠区教育局"

    wages = case_of("li_ming")
    assert (wages.state, wages.org.name) == ("coordinating", "共青团广东省委员会")
    assert (wages.escalation_count, wages.reopen_count) == (2, 2)
    reasons = [e.payload["reason"] for e in wages.events.filter(kind="escalated").order_by("seq")]
    assert reasons == ["sla_breach", "reopened"]

    hardship = case_of("wang_fang")
    assert (hardship.state, hardship.org.name) == ("feedback_given", "南沙青年之家")
    assert hardship.events.filter(kind="delegated").exists()

    stress = case_of("zhang_wei")
    assert (stress.state, stress.org.name) == ("awaiting_youth", "中山大学团委")
    assert stress.stage_due_at is None and stress.sla_paused_remaining is not None
    assert stress.coordination_tasks.get().partner.name == "12355 青少年服务台"

    fake = case_of("new_user_0417")
    assert (fake.state, fake.reject_reason) == ("rejected", "abuse")
    assert fake.events.get(kind="rejected").actor.username == "zhou_shuji"


def test_regions_cover_guangdong_and_its_cities():
    assert Region.objects.get(code="440000").level == Region.Level.PROVINCE
    assert Region.objects.filter(parent_id="440000", level=Region.Level.CITY).count() == 21
    assert Region.objects.filter(parent_id="440100").count() == 11
    assert Region.objects.get(code="440115").name_en == "Nansha District"
    assert Region.objects.filter(parent_id="440300").exists()
    assert Region.objects.filter(parent_id="440600").exists()
    # every organisation of the demo covers a known region
    demo_regions = set()

    def walk(spec):
        demo_regions.add(spec.region)
        for child in spec.children:
            walk(child)

    walk(demo.TREE)
    assert demo_regions <= set(Region.objects.values_list("code", flat=True))


def test_output_lists_every_user_with_the_password():
    output = seed(password="another-demo-pass")
    assert "another-demo-pass" in output
    for username, _, roles in demo.people_table():
        assert username in output
        assert roles in output
    assert authenticate(username="liu_laoshi", password="another-demo-pass") is not None
    assert authenticate(username="admin", password="another-demo-pass") is not None


def test_the_default_password_works(seeded):
    assert authenticate(username="chen_xiaoyu", password=demo.DEFAULT_PASSWORD) is not None


@pytest.mark.parametrize(
    "username",
    [
        "chen_xiaoyu",
        "liu_laoshi",
        "huang_shegong",
        "haizhu_edu",
        "zhou_shuji",
        "province_inspector",
    ],
)
def test_every_role_of_the_demo_has_an_inapp_inbox_with_items(seeded, client, username):
    # given the seeded demo, its outbox delivered as the demo's background loop does
    # (inside this module's rolled-back transaction nothing is delivered on commit)
    from notifications.models import InboxItem, Notification
    from notifications.services import deliver_many, fan_out_pending

    fan_out_pending()
    deliver_many(list(Notification.objects.values_list("pk", flat=True)))
    # when each role's demo person opens the in-app inbox
    user = User.objects.get(username=username)
    client.force_login(user)
    response = client.get("/notifications/")
    # then it works and shows what the demo's cases told them
    assert response.status_code == 200
    assert InboxItem.objects.filter(user=user).exists()
    assert response.context["page"].paginator.count == InboxItem.objects.filter(user=user).count()


def test_demo_stations_have_profiles_and_a_visit(seeded):
    from casework.models_stations import Appointment, StationException, StationProfile

    # every demo station is in the directory, with a point, hours, services and seats
    stations = Organisation.objects.filter(kind="station")
    profiles = StationProfile.objects.filter(station__in=stations)
    assert profiles.count() == stations.count() >= 6
    assert all(p.services.exists() and p.visits_per_hour > 0 for p in profiles)
    assert StationProfile.objects.get(station__name="南沙青年之家").opens_on_public_holidays
    assert StationException.objects.filter(station__name="海珠青年之家·江南西").exists()
    # a booked visit (and the deadline that follows it), and a proposal to confirm
    booked = Appointment.objects.get(case__youth__username="he_zixuan", status="confirmed")
    assert booked.station.name == "海珠青年之家·江南西"
    assert booked.case.stage_due_at > booked.slot.ends_at
    assert booked.case.events.filter(kind="visit_booked").exists()
    assert Appointment.objects.filter(status="proposed").exists()


def test_the_demo_has_a_phone_intake_and_a_handoff(seeded):
    from casework.models import Handoff, Intake, VisitRating

    phone = Case.objects.get(channel="phone")
    assert phone.events.get(kind="submitted").actor.username == "hotline_12355"
    assert Intake.objects.get(case=phone).claimed_at is None
    handoff = Handoff.objects.get(external_id="qa-demo-0001")
    assert handoff.case.channel == "handoff" and handoff.service.name == "青年之声·问答"
    visit = VisitRating.objects.get(case=case_of("chen_xiaoyu"))
    assert visit.station.name == "海珠青年之家·江南西" and visit.stars == 5
