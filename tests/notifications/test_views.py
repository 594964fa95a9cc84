"""The inbox pages for every role, and the preferences page."""

import pytest
from django.urls import reverse

from casework.services import cases, routing
from notifications import services
from notifications.models import InboxItem, Preference

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(tree):
    case = cases.case_submit(
        youth=tree.youth,
        category=tree.category("study"),
        region_code="440105",
        title="t",
        description="d",
    )
    routing.case_escalate(case=case, actor=tree.handler, reason="manual")
    services.deliver_many(services.fan_out_pending())
    return case


@pytest.mark.parametrize(
    "who", ["youth", "handler", "city_handler", "city_supervisor", "province_supervisor"]
)
def test_each_role_sees_its_inbox_with_the_unread_count(client, tree, delivered, who):
    user = getattr(tree, who)
    client.force_login(user)
    page = client.get(reverse("notifications:inbox"))
    assert page.status_code == 200
    count = InboxItem.objects.filter(user=user).count()
    assert count >= 1
    assert page.context["unread"] == count
    assert delivered.reference in page.content.decode()
    assert client.get(reverse("notifications:unread")).json() == {"unread": count}


def test_mark_read_and_mark_all_read(client, tree, delivered):
    client.force_login(tree.youth)
    first = InboxItem.objects.filter(user=tree.youth).first()
    client.post(reverse("notifications:mark_read"), {"item": [first.pk, "x"]})
    first.refresh_from_db()
    assert first.is_read
    client.post(reverse("notifications:mark_all_read"))
    assert not InboxItem.objects.filter(user=tree.youth, read_at__isnull=True).exists()


@pytest.mark.parametrize("item", ["²", "9" * 40, "-1", "\x00"])
def test_odd_item_ids_are_ignored(client, tree, delivered, item):
    client.force_login(tree.youth)
    response = client.post(reverse("notifications:mark_read"), {"item": [item]})
    assert response.status_code == 302
    assert InboxItem.objects.filter(user=tree.youth, read_at__isnull=True).exists()


def test_mark_read_goes_back_only_to_this_site(client, tree, delivered):
    client.force_login(tree.youth)
    url = reverse("notifications:mark_read")
    assert client.post(url, {"next": "/my/"}).url == "/my/"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        assert client.post(url, {"next": elsewhere}).url == reverse("notifications:inbox")


def test_someone_elses_item_cannot_be_marked(client, tree, delivered):
    client.force_login(tree.youth)
    other = InboxItem.objects.filter(user=tree.handler).first()
    client.post(reverse("notifications:mark_read"), {"item": [other.pk]})
    other.refresh_from_db()
    assert not other.is_read


def test_preferences_are_saved(client, tree):
    client.force_login(tree.youth)
    assert client.get(reverse("notifications:preferences")).status_code == 200
    response = client.post(
        reverse("notifications:preferences"),
        {
            "inapp": "on",
            "sms": "on",
            "language": "en",
            "quiet_start": "22:00",
            "quiet_end": "08:00",
        },
    )
    assert response.status_code == 302
    pref = Preference.objects.get(user=tree.youth)
    assert (pref.sms, pref.email, pref.language) == (True, False, "en")


def test_half_quiet_hours_are_refused(client, tree):
    client.force_login(tree.youth)
    response = client.post(
        reverse("notifications:preferences"),
        {"inapp": "on", "language": "en", "quiet_start": "22:00"},
    )
    assert response.status_code == 200
    assert not Preference.objects.filter(user=tree.youth).exists()


def test_the_inbox_needs_a_login(client):
    assert client.get(reverse("notifications:inbox")).status_code == 302
