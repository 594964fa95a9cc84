"""cases_visible_to: the one scoping rule for listing cases."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from casework import services
from casework.selectors import cases_visible_to
from casework.states import CaseState
from tests.casework.steps import case_in, cast, submit
from tests.factories import UserFactory


@pytest.fixture
def world(tree):
    """A Haizhu case in coordination with a task for the education bureau, and a Baiyun case."""
    people = cast(tree)
    haizhu_case = case_in(tree, CaseState.COORDINATING)
    services.case_refer(
        case=haizhu_case, actor=tree.handler, partner=tree.partner, instructions="请协助"
    )
    baiyun_case = submit(tree, youth=tree.other_youth, region="440111")
    assert baiyun_case.org_id == tree.baiyun.pk
    return people, haizhu_case, baiyun_case


def visible(user) -> set[int]:
    return set(cases_visible_to(user).values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("who", "sees_haizhu", "sees_baiyun"),
    [
        ("youth", True, False),
        ("other_youth", False, True),
        ("handler", True, False),
        ("handler2", True, False),
        ("org_verifier", True, False),
        ("verifier", True, False),  # the station verifying the Haizhu case
        ("sibling_handler", False, True),
        ("child_handler", False, False),
        ("child_supervisor", False, False),
        ("parent_handler", False, False),
        ("city_supervisor", True, True),
        ("province_supervisor", True, True),
        ("sibling_supervisor", False, True),
        ("other_city_supervisor", False, False),
        ("other_verifier", False, False),
        ("partner", True, False),  # has a coordination task on it
    ],
)
def test_who_sees_which_case(world, who, sees_haizhu, sees_baiyun):
    people, haizhu_case, baiyun_case = world

    seen = visible(people[who])

    assert (haizhu_case.pk in seen) is sees_haizhu
    assert (baiyun_case.pk in seen) is sees_baiyun


def test_partner_without_a_task_sees_nothing(world, tree):
    from tests.conftest import member

    other_partner_org = tree.partner.add_sibling(
        name="海珠区公安分局", level=4, region_code="440105", kind="partner"
    )
    police = member(other_partner_org, "partner", "police_staff")

    assert visible(police) == set()


def test_anonymous_and_none_see_nothing(world):
    assert visible(AnonymousUser()) == set()
    assert visible(None) == set()


def test_a_stranger_sees_nothing(world):
    assert visible(UserFactory(username="stranger")) == set()


def test_superuser_sees_everything(world):
    _, haizhu_case, baiyun_case = world
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert visible(admin) == {haizhu_case.pk, baiyun_case.pk}


def test_visibility_follows_the_case_when_it_moves(world, tree):
    people, haizhu_case, _ = world

    services.case_escalate(case=haizhu_case, actor=tree.handler, reason="manual")

    assert haizhu_case.pk not in visible(people["handler"])
    assert haizhu_case.pk in visible(people["parent_handler"])
    assert haizhu_case.pk in visible(people["youth"])


def test_no_duplicates_for_people_with_several_roles(world, tree):
    from tests.conftest import member

    _, haizhu_case, _ = world
    many = member(tree.haizhu, "handler", "many_hats")
    member(tree.city, "supervisor", "many_hats")
    member(tree.station, "verifier", "many_hats")

    pks = list(cases_visible_to(many).values_list("pk", flat=True))

    assert pks.count(haizhu_case.pk) == 1


def test_listing_costs_a_fixed_number_of_queries(world, tree, django_assert_num_queries):
    people, *_ = world
    for _i in range(3):
        submit(tree)
    supervisor = type(people["city_supervisor"]).objects.get(pk=people["city_supervisor"].pk)

    # one for the memberships (then cached on the user), one for the cases and their joins
    with django_assert_num_queries(2):
        rows = list(cases_visible_to(supervisor))
        for case in rows:
            _ = (case.org.name, case.category.code, case.assignee)
    assert len(rows) == 5


# --- the API's one-statement case reads (casework.api.selectors._CaseRead) ---------------


def _orm_case_for(user, reference):
    from casework.api.selectors import api_cases

    return api_cases(user).filter(reference=reference).first()


def _same_case(read, expected) -> None:
    """The same row with the same joined rows loaded as ``api_cases`` loads them."""
    from casework.api.selectors import CASE_RELATED

    assert read.pk == expected.pk
    for field in type(read)._meta.concrete_fields:
        if field.attname in read.get_deferred_fields():
            continue
        assert getattr(read, field.attname) == getattr(expected, field.attname), field.name
    assert read.get_deferred_fields() == expected.get_deferred_fields()
    for name in CASE_RELATED:
        assert type(read)._meta.get_field(name).is_cached(read), name
        assert getattr(read, name) == getattr(expected, name), name
    for who in ("youth", "assignee"):
        person, other = getattr(read, who), getattr(expected, who)
        if person is not None:
            assert person.get_deferred_fields() == other.get_deferred_fields()
            assert person.display_name == other.display_name


@pytest.mark.parametrize(
    "who",
    [
        "youth",
        "other_youth",
        "handler",
        "org_verifier",
        "verifier",
        "sibling_handler",
        "child_handler",
        "parent_handler",
        "city_supervisor",
        "province_supervisor",
        "sibling_supervisor",
        "other_city_supervisor",
        "other_verifier",
        "partner",
    ],
)
def test_api_case_reads_agree_with_the_scoping_rule(world, who):
    from casework import permissions
    from casework.api.selectors import case_for, cases_by_ids

    people, haizhu_case, baiyun_case = world
    user = people[who]
    seen = visible(user)
    for case in (haizhu_case, baiyun_case):
        permissions.forget_roles(user)
        read = case_for(user, case.reference)
        if case.pk in seen:
            _same_case(read, _orm_case_for(user, case.reference))
        else:
            assert read is None
        # The memberships came with the read (or the ORM's query) and are the same.
        assert set(permissions.roles_of(user)) == {
            permissions.Role(m.organisation_id, m.organisation.path, m.role)
            for m in user.memberships.select_related("organisation")
        }
    permissions.forget_roles(user)
    by_id = cases_by_ids(user, [haizhu_case.pk, baiyun_case.pk, -1])
    assert set(by_id) == seen & {haizhu_case.pk, baiyun_case.pk}
    for pk, read in by_id.items():
        assert read.pk == pk
        _same_case(read, _orm_case_for(user, read.reference))
    assert case_for(user, "YV-NOSUCH") is None


def test_api_case_reads_for_superusers_strangers_and_anonymous(world):
    from casework.api.selectors import case_for, cases_by_ids

    _people, haizhu_case, baiyun_case = world
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert case_for(admin, baiyun_case.reference).pk == baiyun_case.pk
    assert set(cases_by_ids(admin, [haizhu_case.pk, baiyun_case.pk])) == {
        haizhu_case.pk,
        baiyun_case.pk,
    }
    stranger = UserFactory(username="stranger")
    assert case_for(stranger, haizhu_case.reference) is None
    assert cases_by_ids(stranger, [haizhu_case.pk, baiyun_case.pk]) == {}
    assert case_for(AnonymousUser(), haizhu_case.reference) is None
    assert cases_by_ids(AnonymousUser(), [haizhu_case.pk]) == {}
    assert cases_by_ids(admin, []) == {}


def test_api_case_reads_are_one_prepared_statement_on_postgresql(world, django_assert_num_queries):
    from django.db import connection

    from casework import permissions
    from casework.api.selectors import case_for, cases_by_ids

    if connection.vendor != "postgresql":
        pytest.skip("the one-statement read is PostgreSQL's")
    people, haizhu_case, baiyun_case = world
    handler = people["handler"]
    permissions.forget_roles(handler)
    with django_assert_num_queries(1):  # the case, its joins and the memberships
        assert case_for(handler, haizhu_case.reference).pk == haizhu_case.pk
        assert permissions.roles_of(handler)
    with django_assert_num_queries(1):
        assert set(cases_by_ids(handler, [haizhu_case.pk, baiyun_case.pk])) == {haizhu_case.pk}
