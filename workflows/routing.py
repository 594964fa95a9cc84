"""Routing: which organisation should hold a new case.

``choose_org`` is a pure function over plain data so that the rules can be
tested table by table without a database; ``route_for`` loads that data in two
queries and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def region_prefix(code: str) -> str:
    """The significant prefix of a GB/T 2260 code: 440000 → 44, 440100 → 4401."""
    code = code.strip()
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def region_ancestors(code: str) -> list[str]:
    """The codes of a region and the regions containing it: 440105 → 440000, 440100, 440105."""
    prefix = region_prefix(code)
    return [prefix[:n].ljust(6, "0") for n in range(2, len(prefix) + 1, 2)]


def covers(org_region: str, case_region: str) -> bool:
    return case_region.startswith(region_prefix(org_region))


@dataclass(frozen=True)
class OrgInfo:
    id: int
    name: str
    path: str
    level: int
    kind: str
    region_code: str
    categories: frozenset[str]
    capacity: int
    open_cases: int
    active: bool = True
    routes_by_region: bool = True

    @property
    def has_capacity(self) -> bool:
        return self.open_cases < self.capacity


@dataclass
class RouteDecision:
    org_id: int
    rule: str  # "named", "region" or "fallback"
    considered: list[dict] = field(default_factory=list)

    def as_payload(self) -> dict:
        return {"org": self.org_id, "rule": self.rule, "considered": self.considered}


HANDLING_KINDS = ("league", "station", "social")


def _why_not(org: OrgInfo, category: str, region: str) -> str | None:
    if not org.active:
        return "inactive"
    if org.kind not in HANDLING_KINDS:
        return "not_a_handling_org"
    if category not in org.categories:
        return "category_not_handled"
    if not covers(org.region_code, region):
        return "region_not_covered"
    if not org.has_capacity:
        return "at_capacity"
    return None


def choose_org(
    *, region: str, category: str, named: OrgInfo | None, orgs: Iterable[OrgInfo]
) -> RouteDecision:
    """Pick the handling organisation and say why each candidate was passed over.

    The named organisation wins if it handles the category, covers the region
    and has capacity. Otherwise the deepest league organisation that covers the
    region and handles the category, then its parent, and so on up the tree.
    When every candidate is full, the case goes to the top-most one (the
    province), which is never left without a handler.
    """
    considered: list[dict] = []
    if named is not None:
        reason = _why_not(named, category, region)
        if reason is None:
            considered.append({"org": named.id, "result": "chosen"})
            return RouteDecision(named.id, "named", considered)
        considered.append({"org": named.id, "result": reason})

    candidates = sorted(
        (
            o
            for o in orgs
            if o.kind == "league"
            and o.routes_by_region
            and o.active
            and covers(o.region_code, region)
            and (named is None or o.id != named.id)
        ),
        key=lambda o: (-o.level, -len(o.path), o.open_cases / max(o.capacity, 1), o.id),
    )
    for org in candidates:
        reason = _why_not(org, category, region)
        if reason is None:
            considered.append({"org": org.id, "result": "chosen"})
            return RouteDecision(org.id, "region", considered)
        considered.append({"org": org.id, "result": reason})

    # The named organisation was left out of the candidates above, but it still counts
    # when looking for the top-most fallback (a youth may name the province itself).
    pool = list(candidates)
    if (
        named is not None
        and named.kind == "league"
        and named.active
        and covers(named.region_code, region)
    ):
        pool.append(named)
    top = min(pool, key=lambda o: (o.level, len(o.path), o.id), default=None)
    if top is None:
        raise LookupError(f"no organisation covers region {region}")
    considered.append({"org": top.id, "result": "fallback"})
    return RouteDecision(top.id, "fallback", considered)


def load_org_infos(org_ids: Iterable[int] | None = None, region: str | None = None):
    """OrgInfo rows for the given ids and/or the league organisations covering ``region``."""
    from django.db.models import Count, Q

    from casework.models import Organisation
    from casework.states import OPEN_STATES

    query = Q(pk__in=list(org_ids or []))
    if region:
        query |= Q(region_code__in=region_ancestors(region), kind="league")
    orgs = list(
        Organisation.objects.filter(query).annotate(
            open_cases=Count("cases", filter=Q(cases__state__in=list(OPEN_STATES)))
        )
    )
    through = Organisation.categories.through
    cats: dict[int, set[str]] = {}
    for org_id, code in through.objects.filter(
        organisation_id__in=[o.pk for o in orgs]
    ).values_list("organisation_id", "category__code"):
        cats.setdefault(org_id, set()).add(code)
    return {
        o.pk: OrgInfo(
            id=o.pk,
            name=o.name,
            path=o.path,
            level=o.level,
            kind=o.kind,
            region_code=o.region_code,
            categories=frozenset(cats.get(o.pk, ())),
            capacity=o.capacity,
            open_cases=o.open_cases,
            active=o.is_active,
            routes_by_region=o.routes_by_region,
        )
        for o in orgs
    }


def route_for(*, region: str, category: str, named_org_id: int | None) -> RouteDecision:
    infos = load_org_infos([named_org_id] if named_org_id else [], region)
    named = infos.get(named_org_id) if named_org_id else None
    others = [info for org_id, info in infos.items() if org_id != named_org_id]
    return choose_org(region=region, category=category, named=named, orgs=others)
