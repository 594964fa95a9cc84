"""Public pages without login: the progress page by token and the statistics page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from casework import services
from casework.models import Case
from casework.public_stats import public_stats
from casework.states import CaseState

from .steps import advance, case_in, submit

pytestmark = pytest.mark.django_db


def progress_url(case):
    return reverse("casework:public_case", args=[case.public_token])


def test_progress_page_shows_the_redacted_case_without_personal_data(client, tree):
    # given a public case the youth answered questions on and rated
    case = case_in(tree, CaseState.AWAITING_YOUTH, title="秘密标题", description="秘密描述")
    services.case_provide_info(case=case, actor=tree.youth, answer="秘密回答")
    case = advance(tree, Case.objects.get(pk=case.pk), CaseState.CLOSED)
    # when anyone opens the progress page
    response = client.get(progress_url(case))
    # then it shows the stage and timeline, and nothing that identifies the youth
    assert response.status_code == 200
    page = response.content.decode()
    assert case.reference in page
    for secret in (
        tree.youth.username,
        tree.youth.display_name,
        "秘密标题",
        "秘密描述",
        "秘密回答",
        tree.handler.username,
    ):
        assert secret not in page
    assert response.context["view"]["private"] is False
    assert "5/5" in page  # the rating


def test_progress_page_is_not_indexed_and_sends_no_referrer(client, tree):
    case = submit(tree)
    response = client.get(progress_url(case))
    page = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert '<meta name="referrer" content="no-referrer">' in page
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_private_case_shows_only_that_it_is_in_progress(client, tree):
    case = submit(tree, is_public=False, title="私密标题")
    sensitive = submit(tree, category="psychological", title="心理标题")
    for c in (case, sensitive):
        response = client.get(progress_url(c))
        assert response.status_code == 200
        view = response.context["view"]
        assert view["private"] is True
        page = response.content.decode()
        assert "私密标题" not in page and "心理标题" not in page
        assert c.category.name not in page


def test_a_case_hidden_pending_review_shows_nothing(client, tree):
    case = submit(tree)
    Case.objects.filter(pk=case.pk).update(hidden_from_public=True)
    response = client.get(progress_url(case))
    assert response.status_code == 200
    assert response.context["view"]["private"] is True
    assert case.category.name not in response.content.decode()


@pytest.mark.parametrize("token", ["nope", "x" * 500, "%00", "../../etc"])
def test_unknown_tokens_are_404(client, tree, token):
    submit(tree)
    assert client.get(f"/p/{token}/").status_code == 404


def test_progress_page_is_read_only(client, tree):
    case = submit(tree)
    assert client.post(progress_url(case)).status_code == 405


def test_statistics_page(client, tree):
    # given cases in several stages, one rated, one escalated by a missed deadline
    submit(tree)
    rated = advance(tree, submit(tree, title="a"), CaseState.CLOSED)
    late = case_in(tree, CaseState.COORDINATING)
    services.case_escalate(case=late, actor=tree.city_supervisor, reason="sla_breach")
    late = Case.objects.get(pk=late.pk)
    late = services.case_resolve(
        case=late, actor=tree.city_handler, outcome="solved", note="已处理"
    )
    # when anyone opens the statistics page
    response = client.get(reverse("casework:public_stats"))
    # then the figures add up
    assert response.status_code == 200
    stats = response.context["stats"]
    assert stats.total == 3
    assert stats.resolved == 2 and stats.on_time == 1
    assert stats.on_time_rate == 0.5
    assert stats.ratings == 1
    assert stats.avg_rating == pytest.approx((5 + 5 + 4) / 3)
    assert dict(response.context["by_stage"])
    assert sum(n for _c, n in stats.by_category) == 3
    assert [(code, n) for code, _name, n in stats.by_region] == [("440100", 3)]
    assert rated.reference not in response.content.decode()


def test_statistics_use_a_fixed_number_of_queries(tree):
    submit(tree)
    with CaptureQueriesContext(connection) as few:
        public_stats()
    for _ in range(5):
        submit(tree, region="440111")
    with CaptureQueriesContext(connection) as many:
        public_stats()
    assert len(many) == len(few) <= 8


def test_statistics_with_no_cases(client, db):
    response = client.get(reverse("casework:public_stats"))
    assert response.status_code == 200
    assert response.context["stats"].on_time_rate is None


def test_security_headers_on_every_page(client, tree):
    for url in (reverse("casework:public_stats"), reverse("login")):
        response = client.get(url)
        csp = response["Content-Security-Policy"]
        script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        assert "default-src 'self'" in csp
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_scripts(client, tree):
    client.force_login(tree.youth)
    for url in (
        reverse("casework:youth_new"),
        reverse("casework:youth_cases"),
        reverse("casework:public_stats"),
    ):
        page = client.get(url).content.decode()
        assert "<script>" not in page
        assert " onclick=" not in page and " onchange=" not in page
        for chunk in page.split("<script")[1:]:
            assert chunk.lstrip().startswith("src=")


def test_forms_are_csrf_protected(tree):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(tree.youth)
    response = strict.post(reverse("casework:youth_new"), {"title": "x"})
    assert response.status_code == 403
