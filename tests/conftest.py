"""Shared fixtures: a small organisation tree with a person in every role.

Tests that need PostgreSQL are marked ``postgres``: they skip on SQLite in a
developer's run, and fail in CI (CI=true), where PostgreSQL must be there.
"""

import os
from dataclasses import dataclass

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connections
from django.test import TransactionTestCase
from django.utils import translation

from casework.models import Category, Organisation, User
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    if connections["default"].vendor == "postgresql":
        return
    for item in items:
        if "postgres" in item.keywords:
            if IN_CI:
                item.add_marker(pytest.mark.usefixtures("_require_postgres_in_ci"))
            else:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


@pytest.fixture
def _require_postgres_in_ci():
    pytest.fail("CI=true but DATABASE_URL is not a PostgreSQL database", pytrace=False)


# The append-only triggers refuse TRUNCATE, which is how Django empties the
# database after a transactional test. Let that flush (and only that) run as
# a replica session, which skips ordinary triggers; it needs a superuser, as
# any bypass of the triggers does.
_original_teardown = TransactionTestCase._fixture_teardown


def _fixture_teardown_past_triggers(self):
    pg = [c for c in connections.all() if c.vendor == "postgresql"]
    for conn in pg:
        with conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
    try:
        _original_teardown(self)
    finally:
        for conn in pg:
            with conn.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")


TransactionTestCase._fixture_teardown = _fixture_teardown_past_triggers


# The catalogues are compiled, and the site speaks Chinese by default. Tests compare
# messages in English: code outside a request runs in English, and the test client asks
# for English pages. tests/test_i18n.py checks the Chinese default with a bare Client.
@pytest.fixture(autouse=True)
def _english_messages():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with nothing counted against the API's rate limits: they count per
    client IP, and every test client is 127.0.0.1, so counts would carry over between tests
    and make the outcome depend on their order. Only the in-process cache is cleared (a
    Redis cache's clear() would flush its whole database, which may hold a broker's queues)."""
    throttle = caches["throttle"]
    if isinstance(throttle, LocMemCache):
        throttle.clear()
    yield


@pytest.fixture
def client(client):
    client.defaults.setdefault("HTTP_ACCEPT_LANGUAGE", "en")
    return client


@dataclass
class Tree:
    province: Organisation
    city: Organisation
    haizhu: Organisation
    baiyun: Organisation
    haizhu_branch: Organisation
    station: Organisation
    partner: Organisation
    other_city: Organisation
    youth: User
    other_youth: User
    handler: User
    baiyun_handler: User
    branch_handler: User
    verifier: User
    partner_staff: User
    city_supervisor: User
    province_supervisor: User
    city_handler: User
    province_handler: User

    def category(self, code="study") -> Category:
        return Category.objects.get(code=code)


def member(org, role, username):
    user = UserFactory(username=username)
    MembershipFactory(user=user, organisation=org, role=role)
    return user


@pytest.fixture
def tree(db) -> Tree:
    province = OrganisationFactory(name="共青团广东省委员会", level=1, region_code="440000")
    city = OrganisationFactory(
        parent=province, name="共青团广州市委员会", level=2, region_code="440100"
    )
    other_city = OrganisationFactory(
        parent=province, name="共青团深圳市委员会", level=2, region_code="440300"
    )
    haizhu = OrganisationFactory(parent=city, name="海珠区团委", level=3, region_code="440105")
    baiyun = OrganisationFactory(parent=city, name="白云区团委", level=3, region_code="440111")
    haizhu_branch = OrganisationFactory(
        parent=haizhu,
        name="海珠某街道团工委",
        level=4,
        region_code="440105",
        routes_by_region=False,
    )
    station = OrganisationFactory(
        parent=haizhu,
        name="海珠青年之家·江南西",
        level=4,
        region_code="440105",
        kind=Organisation.Kind.STATION,
        routes_by_region=False,
    )
    partner = OrganisationFactory(
        parent=haizhu,
        name="海珠区教育局",
        level=4,
        region_code="440105",
        kind=Organisation.Kind.PARTNER,
        routes_by_region=False,
        categories=[],
    )
    return Tree(
        province=province,
        city=city,
        haizhu=haizhu,
        baiyun=baiyun,
        haizhu_branch=haizhu_branch,
        station=station,
        partner=partner,
        other_city=other_city,
        youth=UserFactory(username="chenxiaoyu", region_code="440105"),
        other_youth=UserFactory(username="liming", region_code="440111"),
        handler=member(haizhu, "handler", "liu"),
        baiyun_handler=member(baiyun, "handler", "baiyun_handler"),
        branch_handler=member(haizhu_branch, "handler", "branch_handler"),
        verifier=member(station, "verifier", "huang"),
        partner_staff=member(partner, "partner", "edu_staff"),
        city_supervisor=member(city, "supervisor", "zhou"),
        province_supervisor=member(province, "supervisor", "inspector"),
        city_handler=member(city, "handler", "city_handler"),
        province_handler=member(province, "handler", "province_handler"),
    )
