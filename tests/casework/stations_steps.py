"""Helpers of the station tests: a station profile, and a case waiting for its visit."""

from __future__ import annotations

from datetime import datetime

from casework import services
from casework.models import Case, Organisation
from casework.models_stations import StationProfile, StationService
from casework.services.stations import station_slots
from casework.states import CaseState
from tests.casework.steps import case_in

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = {day: [["09:00", "12:00"], ["14:00", "18:00"]] for day in WEEK}


def station_profile(station: Organisation, *, seats=2, hours=None, **kw) -> StationProfile:
    station.opening_hours = HOURS if hours is None else hours
    station.save(update_fields=["opening_hours"])
    services_offered = kw.pop("services", ["tutoring"])
    profile = StationProfile.objects.create(
        station=station,
        address=kw.pop("address", "广州市海珠区江南西路 1 号"),
        latitude=kw.pop("latitude", "23.097000"),
        longitude=kw.pop("longitude", "113.270000"),
        visits_per_hour=seats,
        **kw,
    )
    for code in services_offered:
        service, _ = StationService.objects.get_or_create(
            code=code, defaults={"name": {"tutoring": "学业辅导"}.get(code, code), "name_en": code}
        )
        profile.services.add(service)
    return profile


def visiting_case(tree) -> Case:
    """A case sent to tree.station for verification (the station needs a profile)."""
    case = case_in(tree, CaseState.VERIFYING)
    assert case.station_id == tree.station.pk
    return case


def free_starts(station, *, skip: int = 0, now: datetime | None = None) -> list[datetime]:
    return [s.starts_at for s in station_slots(station, now=now) if s.free][skip:]


def book(tree, case, starts_at=None):
    starts_at = starts_at or free_starts(tree.station)[0]
    return services.visit_book(case=case.pk, actor=tree.youth, starts_at=starts_at)
