"""casework.public.public_view: the one redaction rule of every public surface."""

import json

import pytest

from casework import services
from casework.public import (
    coarse_region_code,
    public_queryset,
    public_view,
    region_names_for,
)
from casework.states import CaseState
from tests.casework.steps import DESCRIPTION, case_in, submit

pytestmark = pytest.mark.django_db

PUBLIC_KEYS = {
    "reference",
    "private",
    "in_progress",
    "state",
    "stage",
    "category",
    "category_name",
    "region_code",
    "region",
    "handling_level",
    "submitted_on",
    "closed_on",
    "last_update",
    "escalations",
    "escalation_count",
    "outcome",
    "rating",
    "timeline",
}


def test_coarse_region_is_the_city():
    assert coarse_region_code("440105") == "440100"
    assert coarse_region_code("440100") == "440100"
    assert coarse_region_code("440000") == "440000"
    assert coarse_region_code("bad") == ""


def test_public_case_shows_progress_and_nothing_identifying(tree):
    # given a closed, rated case with a personal description and a youth with a name
    tree.youth.display_name = "陈小雨"
    tree.youth.phone = "13800000000"
    tree.youth.save()
    case = case_in(tree, CaseState.CLOSED, title="我叫陈小雨，在某某中学")
    # when
    view = public_view(case)
    # then the public fields are there
    assert set(view) == PUBLIC_KEYS
    assert view["private"] is False and view["in_progress"] is False
    assert view["stage"] == "closed"
    assert view["category"] == "study"
    assert view["region_code"] == "440100"
    assert view["handling_level"] == tree.haizhu.level
    assert view["outcome"] == "solved"
    assert view["rating"] == {"timeliness": 5, "attitude": 5, "outcome": 4, "solved": "solved"}
    assert len(view["submitted_on"]) == 10  # a day, not a time
    assert [e["kind"] for e in view["timeline"]][:2] == ["submitted", "accepted"]
    # and nothing identifying
    blob = json.dumps(view, ensure_ascii=False)
    for secret in (
        "陈小雨",
        "13800000000",
        DESCRIPTION,
        "某某中学",
        tree.youth.username,
        tree.handler.username,
        "440105",
        "情况属实",
        "问题已解决",
        case.public_token,
    ):
        assert secret not in blob


def test_escalations_are_listed_with_reason_and_day(tree):
    case = submit(tree)
    case = services.case_escalate(case=case, actor=tree.handler, reason="manual", note="私人备注")
    view = public_view(case)
    assert view["escalation_count"] == 1
    assert view["escalations"][0]["reason"] == "manual"
    assert view["handling_level"] == tree.city.level
    assert "私人备注" not in json.dumps(view, ensure_ascii=False)


@pytest.mark.parametrize("category", ["psychological", "safety", "legal"])
def test_sensitive_case_shows_only_that_it_is_in_progress(tree, category):
    case = submit(tree, category=category)
    assert public_view(case) == {"reference": case.reference, "private": True, "in_progress": True}


def test_case_kept_private_by_the_youth_shows_only_progress(tree):
    case = submit(tree, is_public=False)
    services.case_withdraw(case=case, actor=tree.youth)
    case.refresh_from_db()
    assert public_view(case) == {"reference": case.reference, "private": True, "in_progress": False}


def test_internal_comments_stay_off_the_public_timeline(tree):
    case = submit(tree)
    services.case_comment(case=case, actor=tree.handler, body="内部备注")
    kinds = [e["kind"] for e in public_view(case)["timeline"]]
    assert "comment" not in kinds and "routed" not in kinds


def test_many_cases_in_a_fixed_number_of_queries(tree, django_assert_num_queries):
    for _ in range(3):
        case_in(tree, CaseState.CLOSED)
    cases = list(public_queryset().filter(youth=tree.youth))
    names = region_names_for(cases)
    with django_assert_num_queries(0):
        views = [public_view(c, region_names=names) for c in cases]
    assert len(views) == 3 and all(v["rating"] for v in views)
    with django_assert_num_queries(3):  # cases + events + region names
        cases = list(public_queryset().filter(youth=tree.youth))
        region_names_for(cases)


def test_public_reads_leave_the_youths_words_unread(tree, django_assert_num_queries):
    """The public surfaces never read (nor decrypt) the title, description or outcome note."""
    from casework.public import PUBLIC_UNREAD

    case_in(tree, CaseState.CLOSED)
    (case,) = public_queryset().filter(youth=tree.youth)
    assert set(PUBLIC_UNREAD) <= case.get_deferred_fields()
    with django_assert_num_queries(1):  # region names; nothing deferred is loaded
        view = public_view(case, region_names=region_names_for([case]))
    assert view["reference"] == case.reference and not view["private"]
