"""casework.permissions: roles, authority down the tree, and the FSM conditions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from freezegun import freeze_time

from casework import permissions, services
from casework.states import CaseState
from tests.casework.steps import case_in, cast


@pytest.fixture
def people(tree):
    return cast(tree)


def test_roles_are_loaded_once_per_user_object(tree, django_assert_num_queries):
    user = type(tree.handler).objects.get(pk=tree.handler.pk)

    with django_assert_num_queries(1):
        first = permissions.roles_of(user)
        second = permissions.roles_of(user)

    assert first == second
    assert [(r.org_id, r.role) for r in first] == [(tree.haizhu.pk, "handler")]


def test_forget_roles_reloads_after_a_membership_change(tree):
    from tests.factories import MembershipFactory

    user = tree.handler
    assert not permissions.supervises_path(user, tree.haizhu.path)
    MembershipFactory(user=user, organisation=tree.haizhu, role="supervisor")
    assert not permissions.supervises_path(user, tree.haizhu.path)  # still cached

    permissions.forget_roles(user)

    assert permissions.supervises_path(user, tree.haizhu.path)


def test_no_roles_for_anonymous_or_none():
    assert permissions.roles_of(None) == ()
    assert permissions.roles_of(AnonymousUser()) == ()


@pytest.mark.parametrize(
    ("who", "path_of", "expected"),
    [
        ("city_supervisor", "haizhu", True),
        ("city_supervisor", "haizhu_branch", True),
        ("city_supervisor", "city", True),
        ("city_supervisor", "province", False),  # never up
        ("city_supervisor", "other_city", False),  # never sideways
        ("province_supervisor", "other_city", True),
        ("sibling_supervisor", "haizhu", False),
        ("child_supervisor", "haizhu", False),
        ("handler", "haizhu", False),  # a handler is not a supervisor
    ],
)
def test_supervision_flows_down_the_tree_only(tree, people, who, path_of, expected):
    assert permissions.supervises_path(people[who], getattr(tree, path_of).path) is expected


def test_sibling_paths_that_share_a_prefix_are_not_supervised(tree):
    """A path prefix is a whole step: supervising 0001 must not cover 00010 by string accident."""
    from tests.conftest import member

    boss = member(tree.haizhu, "supervisor", "haizhu_boss")

    assert permissions.supervises_path(boss, tree.haizhu_branch.path)
    assert not permissions.supervises_path(boss, tree.baiyun.path)
    assert len(tree.haizhu.path) % tree.haizhu.steplen == 0


@pytest.mark.parametrize(
    ("who", "handler", "verifier", "views"),
    [
        ("handler", True, False, True),
        ("handler2", True, False, True),
        ("org_verifier", False, True, True),
        ("verifier", False, True, True),  # the case's station
        ("other_verifier", False, False, False),
        ("sibling_handler", False, False, False),
        ("child_handler", False, False, False),
        ("parent_handler", False, False, False),
        ("city_supervisor", True, True, True),
        ("province_supervisor", True, True, True),
        ("sibling_supervisor", False, False, False),
        ("child_supervisor", False, False, False),
        ("partner", False, False, False),
        ("youth", False, False, True),
        ("other_youth", False, False, False),
        ("system", False, False, False),
    ],
)
def test_case_roles(tree, people, who, handler, verifier, views):
    case = case_in(tree, CaseState.VERIFYING)
    user = people[who]

    assert permissions.is_case_handler(case, user) is handler
    assert permissions.is_case_verifier(case, user) is verifier
    assert permissions.may_view_case(case, user) is views
    assert permissions.is_case_youth(case, user) is (who == "youth")
    assert permissions.is_system(case, user) is (who == "system")


def test_verifier_may_reject_only_while_verifying(tree, people):
    verifying = case_in(tree, CaseState.VERIFYING)
    accepted = case_in(tree, CaseState.ACCEPTED)
    accepted.station = tree.station

    assert permissions.may_reject(verifying, people["verifier"])
    assert not permissions.may_reject(accepted, people["verifier"])
    assert permissions.may_reject(accepted, people["handler"])


def test_appeal_available_once_and_within_the_window(tree, settings):
    case = case_in(tree, CaseState.REJECTED)
    assert permissions.appeal_available(case)

    with freeze_time(case.closed_at + settings.CASEWORK_APPEAL_WINDOW + timedelta(seconds=1)):
        assert not permissions.appeal_available(case)

    case.appealed = True
    assert not permissions.appeal_available(case)


def test_coordination_complete_condition(tree):
    case = case_in(tree, CaseState.COORDINATING)
    assert permissions.coordination_complete(case)

    optional = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="可选", required=False
    )
    assert permissions.coordination_complete(case)

    required = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="必需"
    )
    assert not permissions.coordination_complete(case)

    services.coordination_waive(task=required, actor=tree.handler, reason="不需要")
    assert permissions.coordination_complete(case)
    assert optional.status == "open"
