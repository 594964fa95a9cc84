"""The intake pages: staff enter a case, the youth claims it and rates the station visit."""

from __future__ import annotations

import pytest
from django.urls import reverse

from casework.models import Case, Intake, VisitRating
from casework.services.dashboard_rollup import refresh_dashboard_rollup
from casework.states import CaseState
from notifications.models import Notification
from notifications.rendering import render
from tests.casework.steps import case_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FORM = {
    "channel": "walk_in",
    "youth_name": "小林",
    "youth_phone": "13800001111",
    "birth_date": "2004-05-01",
    "consent_by": "youth",
    "consent_method": "",
    "region_code": "440105",
    "title": "想咨询助学金",
    "description": "家里困难，想了解助学金怎么申请",
    "urgency": "normal",
}


def form_for(tree, **kw):
    return {**FORM, "desk": tree.station.pk, "category": tree.category("study").pk, **kw}


def test_staff_enter_a_case_at_the_desk(client, tree):
    client.force_login(tree.verifier)
    page = client.get(reverse("casework:staff_intake"))
    assert page.status_code == 200
    assert "Enter a case for a youth" in page.content.decode()
    response = client.post(reverse("casework:staff_intake"), form_for(tree))
    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:staff_intake_done", args=[case.reference])
    done = client.get(response["Location"]).content.decode()
    assert case.reference in done and "walk-in at a desk" in done
    assert case.channel == "walk_in" and Intake.objects.get(case=case).entered_by == tree.verifier
    # the workbench links to the form
    assert (
        reverse("casework:staff_intake")
        in client.get(reverse("casework:workbench")).content.decode()
    )


def test_the_intake_form_shows_errors_beside_the_fields(client, tree):
    client.force_login(tree.handler)
    response = client.post(
        reverse("casework:staff_intake"),
        form_for(tree, desk=tree.haizhu.pk, birth_date="2020-01-01", youth_phone="x"),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "consent_by" in form.errors and "youth_phone" in form.errors
    assert not Case.objects.exists()
    assert "小林" in response.content.decode()  # what was typed is kept


def test_youth_and_partners_cannot_open_the_intake_form(client, tree):
    for user in (tree.youth, tree.partner_staff):
        client.force_login(user)
        assert client.get(reverse("casework:staff_intake")).status_code == 403


def test_the_youth_claims_the_case_on_the_page(client, tree):
    client.force_login(tree.verifier)
    client.post(reverse("casework:staff_intake"), form_for(tree))
    case = Case.objects.get()
    row = Notification.objects.get(case=case, kind="claim_code")
    code = render(row, "en").body.split("code ")[1][:8]
    youth = UserFactory(username="xiaolin")
    client.force_login(youth)
    assert (
        "Claim a case entered for you"
        in client.get(reverse("casework:youth_cases")).content.decode()
    )
    wrong = "00000000" if code != "00000000" else "11111111"
    response = client.post(
        reverse("casework:youth_claim"), {"reference": case.reference, "code": wrong}
    )
    assert response.status_code == 400
    assert "The code is not right. 4 tries left." in response.content.decode()
    response = client.post(
        reverse("casework:youth_claim"), {"reference": case.reference.lower(), "code": code}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:youth_case", args=[case.reference])
    assert Case.objects.get(pk=case.pk).youth == youth


def test_the_youth_rates_the_station_visit_on_the_page(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    client.force_login(tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    url = reverse("casework:youth_rate_visit", args=[case.reference])
    assert url in page
    assert client.post(url, {"version": case.version, "stars": "9"}).status_code == 400
    response = client.post(url, {"version": case.version, "stars": "4", "comment": "很好"})
    assert response.status_code == 302
    assert VisitRating.objects.get(case=case).stars == 4
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert url not in page  # once only
    assert "There is no station visit to rate" in client.get(url).content.decode()
    # someone else's case does not exist for them
    client.force_login(tree.other_youth)
    assert client.get(url).status_code == 404


# --- channels in the statistics ----------------------------------------------------------


def _mixed_channels(tree):
    from casework import services
    from tests.casework.steps import submit

    submit(tree)  # online
    client_form = {
        "actor": tree.handler,
        "channel": "phone",
        "youth_name": "小周",
        "youth_phone": "13700003333",
        "birth_date": __import__("datetime").date(2006, 1, 2),
        "consent_by": "youth",
        "category": tree.category("study"),
        "region_code": "440105",
        "title": "电话求助",
        "description": "12355 来电",
    }
    services.intake_enter(**client_form)
    services.intake_enter(**{**client_form, "channel": "walk_in", "actor": tree.verifier})


def test_the_supervisor_dashboard_counts_cases_by_channel(client, tree):
    _mixed_channels(tree)
    refresh_dashboard_rollup()  # the dashboard's counts are as of the rollup's last rebuild
    client.force_login(tree.city_supervisor)
    response = client.get(reverse("casework:supervisor"))
    assert response.status_code == 200
    rows = {label: (n, still_open) for label, n, still_open in response.context["channel_rows"]}
    assert rows["online"] == (1, 1)
    assert rows["phone (12355)"] == (1, 1)
    assert rows["walk-in at a desk"] == (1, 1)
    assert rows["partner hand-off"] == (0, 0)
    assert "Intake channels" in response.content.decode()


def test_the_public_statistics_count_cases_by_channel(client, tree):
    _mixed_channels(tree)
    response = client.get(reverse("casework:public_stats"))
    assert dict(response.context["stats"].by_channel) == {"online": 1, "phone": 1, "walk_in": 1}
    page = response.content.decode()
    assert "By intake channel" in page and "phone (12355)" in page
    assert "小周" not in page and "13700003333" not in page


def test_the_youth_reads_who_entered_the_request(client, tree):
    client.force_login(tree.verifier)
    client.post(reverse("casework:staff_intake"), form_for(tree, channel="phone"))
    case = Case.objects.get()
    row = Notification.objects.get(case=case, kind="claim_code")
    youth = UserFactory(username="xiaolin")
    client.force_login(youth)
    client.post(
        reverse("casework:youth_claim"),
        {"reference": case.reference, "code": render(row, "en").body.split("code ")[1][:8]},
    )
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert "Your request was taken on the 12355 line and entered for you." in page
    assert "You took this request into your account." in page
