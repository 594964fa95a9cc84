"""The youth's page to change a rating, and the page to report a case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from casework.events import EventKind
from casework.models import Case, Rating, Report
from casework.states import CaseState
from tests.factories import UserFactory

from .steps import case_in, kinds

pytestmark = pytest.mark.django_db


def rerate_url(case):
    return reverse("casework:youth_action", args=[case.reference, "rerate"])


def report_url(case):
    return reverse("casework:public_report", args=[case.public_token])


def stars(case, **values):
    data = {"version": case.version, "timeliness": "2", "attitude": "3", "outcome": "1"}
    return data | {"solved": "not_solved", "comment": "补贴只发了一半"} | values


# --- changing a rating ------------------------------------------------------------------------


def test_the_case_page_offers_to_change_a_fresh_rating(client, tree):
    case = case_in(tree, CaseState.CLOSED)
    client.force_login(tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert rerate_url(case) in page
    form = client.get(rerate_url(case)).context["form"]
    # the form opens on the rating given: 5, 5, 4, solved (tests/casework/steps.py)
    assert (form["timeliness"].value(), form["outcome"].value()) == ("5", "4")
    assert form["solved"].value() == "solved"


def test_changing_the_rating_within_the_window(client, tree):
    case = case_in(tree, CaseState.CLOSED)
    client.force_login(tree.youth)
    response = client.post(rerate_url(case), stars(case))
    assert response.status_code == 302
    rating = Rating.objects.get(case=case)
    assert (rating.timeliness, rating.attitude, rating.outcome) == (2, 3, 1)
    assert rating.solved == "not_solved" and rating.comment == "补贴只发了一半"
    assert kinds(case)[-1] == EventKind.RATING_EDITED


def test_after_the_window_the_page_is_not_offered_and_a_post_is_a_clear_error(client, tree):
    case = case_in(tree, CaseState.CLOSED)
    Rating.objects.filter(case=case).update(created_at=timezone.now() - timedelta(days=8))
    client.force_login(tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert rerate_url(case) not in page
    response = client.post(rerate_url(case), stars(case))
    assert response.status_code == 400
    assert "7 days" in str(response.context["form"].non_field_errors())
    assert Rating.objects.get(case=case).timeliness == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"timeliness": "0"},
        {"attitude": "six"},
        {"solved": "maybe"},
        {"comment": "x" * 6000},
        {"version": "-3"},
        {"version": "9" * 40},
    ],
)
def test_bad_ratings_are_form_errors(client, tree, bad):
    case = case_in(tree, CaseState.CLOSED)
    client.force_login(tree.youth)
    response = client.post(rerate_url(case), stars(case, **bad))
    assert response.status_code == 400
    assert Rating.objects.get(case=case).timeliness == 5


def test_only_the_youth_changes_their_rating(client, tree):
    case = case_in(tree, CaseState.CLOSED)
    client.force_login(tree.other_youth)
    assert client.post(rerate_url(case), stars(case)).status_code == 404


def test_an_open_case_has_no_rating_to_change(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    client.force_login(tree.youth)
    response = client.post(rerate_url(case), stars(case))
    assert response.status_code == 400
    assert not Rating.objects.filter(case=case).exists()


# --- reporting a case ---------------------------------------------------------------------


def test_the_public_page_links_to_the_report_form(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    public = reverse("casework:public_case", args=[case.public_token])
    assert "login/?next=" + report_url(case) in client.get(public).content.decode()
    client.force_login(tree.other_youth)
    assert f'href="{report_url(case)}"' in client.get(public).content.decode()
    client.force_login(tree.youth)  # the youth complains instead
    assert report_url(case) not in client.get(public).content.decode()


def test_a_signed_in_stranger_reports_a_public_case_once(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    client.force_login(tree.other_youth)
    assert client.get(report_url(case)).status_code == 200
    response = client.post(report_url(case), {"kind": "fake"})
    assert response.status_code == 302
    assert Report.objects.get(case=case).kind == "fake"
    again = client.post(report_url(case), {"kind": "abusive"})
    assert again.status_code == 400
    assert "already reported" in str(again.context["form"].non_field_errors())


def test_reports_from_three_people_hide_the_case(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    for n in range(3):
        client.force_login(UserFactory(username=f"reader{n}"))
        assert client.post(report_url(case), {"kind": "untrue"}).status_code == 302
    assert Case.objects.get(pk=case.pk).hidden_from_public


def test_the_youth_cannot_report_their_own_case(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    client.force_login(tree.youth)
    response = client.post(report_url(case), {"kind": "fake"})
    assert response.status_code == 403
    assert "complain" in str(response.context["form"].non_field_errors())
    assert not Report.objects.exists()


def test_a_private_case_is_reported_only_by_who_may_see_it(client, tree):
    case = case_in(tree, CaseState.ACCEPTED, is_public=False)
    client.force_login(tree.other_youth)
    assert client.post(report_url(case), {"kind": "fake"}).status_code == 404
    client.force_login(tree.handler)
    assert client.post(report_url(case), {"kind": "fake"}).status_code == 302


@pytest.mark.parametrize("kind", ["", "nonsense", "x" * 5000, "真"])
def test_a_bad_kind_is_a_form_error(client, tree, kind):
    case = case_in(tree, CaseState.ACCEPTED)
    client.force_login(tree.other_youth)
    assert client.post(report_url(case), {"kind": kind}).status_code == 400


def test_the_report_page_needs_sign_in_and_a_real_token(client, tree):
    case = case_in(tree, CaseState.ACCEPTED)
    assert client.get(report_url(case)).status_code == 302
    client.force_login(tree.other_youth)
    for token in ("nope", "a" * 65, "bad%00token"):
        assert client.get(f"/p/{token}/report/").status_code == 404
