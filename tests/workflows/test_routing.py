"""Routing rules (workflows.routing): pure, table by table, plus one check through case_submit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workflows.routing import OrgInfo, choose_org, covers, region_ancestors, region_prefix

ALL = frozenset({"study", "legal", "psychological", "safety"})


def org(id, path, level, region, *, kind="league", cats=ALL, capacity=10, open_cases=0, **kw):
    return OrgInfo(
        id=id,
        name=f"org{id}",
        path=path,
        level=level,
        kind=kind,
        region_code=region,
        categories=frozenset(cats),
        capacity=capacity,
        open_cases=open_cases,
        **kw,
    )


PROVINCE = org(1, "0001", 1, "440000")
CITY = org(2, "00010001", 2, "440100")
HAIZHU = org(3, "000100010001", 3, "440105")
BAIYUN = org(4, "000100010002", 3, "440111")
SHENZHEN = org(5, "00010002", 2, "440300")
STATION = org(6, "0001000100010001", 4, "440105", kind="station", routes_by_region=False)
PARTNER = org(7, "0001000100010002", 4, "440105", kind="partner", routes_by_region=False)
BRANCH = org(8, "0001000100010003", 4, "440105", routes_by_region=False)
TREE = [PROVINCE, CITY, HAIZHU, BAIYUN, SHENZHEN, STATION, PARTNER, BRANCH]


def route(region="440105", category="study", named=None, orgs=None):
    orgs = TREE if orgs is None else orgs
    others = [o for o in orgs if named is None or o.id != named.id]
    return choose_org(region=region, category=category, named=named, orgs=others)


# --- region codes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "prefix"),
    [
        ("440000", "44"),
        ("440100", "4401"),
        ("440105", "440105"),
        (" 440100 ", "4401"),
        ("110000", "11"),
        ("44", "44"),
        ("000000", "00"),
    ],
)
def test_region_prefix(code, prefix):
    assert region_prefix(code) == prefix


@pytest.mark.parametrize(
    ("code", "ancestors"),
    [
        ("440105", ["440000", "440100", "440105"]),
        ("440100", ["440000", "440100"]),
        ("440000", ["440000"]),
        ("4401", ["440000", "440100"]),
    ],
)
def test_region_ancestors(code, ancestors):
    assert region_ancestors(code) == ancestors


@pytest.mark.parametrize(
    ("org_region", "case_region", "expected"),
    [
        ("440000", "440105", True),  # province covers its districts
        ("440100", "440105", True),  # city covers its districts
        ("440105", "440105", True),  # a district covers itself
        ("440100", "440100", True),
        ("440105", "440100", False),  # a district does not cover its whole city
        ("440111", "440105", False),  # nor a sibling district
        ("440300", "440105", False),  # nor another city's district
        ("450000", "440105", False),  # nor another province
        ("440100", "441001", False),  # 4401 is not a prefix that 4410 matches by accident
    ],
)
def test_covers(org_region, case_region, expected):
    assert covers(org_region, case_region) is expected


# --- choosing the organisation ---------------------------------------------------


def test_named_org_is_chosen_when_it_fits():
    decision = route(named=BAIYUN, region="440111")

    assert (decision.org_id, decision.rule) == (BAIYUN.id, "named")
    assert decision.considered == [{"org": BAIYUN.id, "result": "chosen"}]


def test_named_station_that_fits_is_chosen():
    decision = route(named=STATION)

    assert (decision.org_id, decision.rule) == (STATION.id, "named")


@pytest.mark.parametrize(
    ("named", "region", "category", "why"),
    [
        (
            replace(BAIYUN, categories=frozenset({"legal"})),
            "440111",
            "study",
            "category_not_handled",
        ),
        (BAIYUN, "440105", "study", "region_not_covered"),
        (replace(BAIYUN, open_cases=10), "440111", "study", "at_capacity"),
        (replace(BAIYUN, open_cases=11), "440111", "study", "at_capacity"),
        (replace(BAIYUN, active=False), "440111", "study", "inactive"),
        (PARTNER, "440105", "study", "not_a_handling_org"),
    ],
    ids=["category", "region", "capacity", "over-capacity", "inactive", "partner-kind"],
)
def test_named_org_passed_over_records_why(named, region, category, why):
    decision = route(named=named, region=region, category=category)

    assert decision.org_id != named.id
    assert decision.rule == "region"
    assert decision.considered[0] == {"org": named.id, "result": why}
    assert decision.considered[-1] == {"org": decision.org_id, "result": "chosen"}


def test_without_a_named_org_the_deepest_covering_league_org_is_chosen():
    decision = route(region="440105")

    assert (decision.org_id, decision.rule) == (HAIZHU.id, "region")
    # Branches and stations only take cases named or delegated to them.
    assert BRANCH.id not in {c["org"] for c in decision.considered}
    assert STATION.id not in {c["org"] for c in decision.considered}


def test_city_level_case_goes_to_the_city():
    assert route(region="440100").org_id == CITY.id


def test_other_city_case_goes_to_that_city():
    assert route(region="440305").org_id == SHENZHEN.id


def test_full_district_falls_back_to_its_parent():
    full = replace(HAIZHU, open_cases=10)

    decision = route(orgs=[PROVINCE, CITY, full, BAIYUN])

    assert decision.org_id == CITY.id
    assert decision.considered == [
        {"org": HAIZHU.id, "result": "at_capacity"},
        {"org": CITY.id, "result": "chosen"},
    ]


def test_district_not_handling_the_category_passes_to_the_parent():
    decision = route(orgs=[PROVINCE, CITY, replace(HAIZHU, categories=frozenset())])

    assert decision.org_id == CITY.id
    assert decision.considered[0] == {"org": HAIZHU.id, "result": "category_not_handled"}


def test_inactive_district_is_skipped():
    decision = route(orgs=[PROVINCE, CITY, replace(HAIZHU, active=False)])

    assert decision.org_id == CITY.id


def test_everything_full_falls_back_to_the_province():
    orgs = [replace(o, open_cases=o.capacity) for o in (PROVINCE, CITY, HAIZHU)]

    decision = route(orgs=orgs)

    assert (decision.org_id, decision.rule) == (PROVINCE.id, "fallback")
    assert [c["result"] for c in decision.considered] == [
        "at_capacity",
        "at_capacity",
        "at_capacity",
        "fallback",
    ]


def test_named_org_full_and_everything_full_still_lands_at_the_province():
    orgs = [replace(o, open_cases=o.capacity) for o in (PROVINCE, CITY, HAIZHU)]
    named = replace(BAIYUN, region_code="440105", open_cases=10)

    decision = route(named=named, orgs=orgs)

    assert decision.org_id == PROVINCE.id
    assert decision.considered[0] == {"org": named.id, "result": "at_capacity"}


def test_same_level_candidates_prefer_the_less_loaded_one():
    busy = replace(HAIZHU, open_cases=8)
    quiet = org(9, "000100010009", 3, "440105", open_cases=1)

    assert route(orgs=[PROVINCE, CITY, busy, quiet]).org_id == quiet.id


def test_no_organisation_covers_the_region():
    with pytest.raises(LookupError):
        route(region="110105")


def test_decision_payload_is_plain_data():
    decision = route(named=replace(BAIYUN, open_cases=10), region="440111")

    payload = decision.as_payload()

    assert payload == {"org": decision.org_id, "rule": "region", "considered": decision.considered}
    assert all(set(c) == {"org", "result"} for c in payload["considered"])


# --- through the database ---------------------------------------------------------


def test_submit_records_the_candidates_considered_on_the_routed_event(tree):
    from casework.events import EventKind
    from casework.models import CaseEvent
    from tests.casework.steps import submit

    tree.haizhu.capacity = 0
    tree.haizhu.save()

    case = submit(tree, requested_org=tree.baiyun)

    routed = CaseEvent.objects.get(case=case, kind=EventKind.ROUTED)
    assert case.org_id == tree.city.pk
    assert routed.payload == {
        "org": tree.city.pk,
        "rule": "region",
        "considered": [
            {"org": tree.baiyun.pk, "result": "region_not_covered"},
            {"org": tree.haizhu.pk, "result": "at_capacity"},
            {"org": tree.city.pk, "result": "chosen"},
        ],
    }
    assert routed.org_id == tree.city.pk


def test_named_province_full_and_everything_full_still_falls_back_to_the_province():
    full = [replace(o, open_cases=o.capacity) for o in (PROVINCE, CITY, HAIZHU)]

    decision = route(named=full[0], orgs=full)

    assert (decision.org_id, decision.rule) == (PROVINCE.id, "fallback")
